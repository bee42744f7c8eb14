"""The assistant reply routes (docs/api.md): ``POST /v1/messages/{mid}/stop`` stops a
streaming reply (:meth:`chat_tui.server.assistant.AssistantService.stop_reply`);
``POST /v1/messages/{mid}/regenerate`` asks for a new reply to the same question."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import Response

from chat_tui.server.routes.context import BODY_ERRORS, Caller, Context, errors, json_response
from chat_tui.wire.models import Message, RegenerateRequest

router = APIRouter(tags=["messages"])


@router.post("/messages/{mid}/stop", response_model=Message,
             responses=errors(401, 404, 409, 422))
async def stop_reply(mid: uuid.UUID, p: Caller, ctx: Context) -> Response:
    """Stop the assistant reply ``mid`` while it streams; answers it as it ends (the text
    so far, then the stop note, ``streaming: false``). A reply that is no longer streaming
    is answered unchanged, so a repeat is harmless."""
    message = await ctx.run(ctx.db.assistant_jobs.replies.reply_to_stop, p.user_id, str(mid))
    if message.streaming and await ctx.assistant.stop_reply(str(mid)):
        message = await ctx.run(ctx.db.assistant_jobs.replies.reply_to_stop, p.user_id, str(mid))
    return json_response(message)


@router.post(
    "/messages/{mid}/regenerate",
    response_model=Message,
    status_code=201,
    responses={
        200: {"model": Message, "description": "repeat: the reply made the first time"},
        **errors(*BODY_ERRORS, 401, 404, 409, 429),
    },
)
async def regenerate_reply(
    mid: uuid.UUID, req: RegenerateRequest, p: Caller, ctx: Context
) -> Response:
    """A new reply ``reply_id`` to the question the assistant reply ``mid`` answers
    (201, empty and streaming; the assistant writes it); the earlier reply stays until
    the new one is written in full. A repeat of ``reply_id`` answers that reply (200)."""
    ctx.check_rate(p)
    write = await ctx.run(
        ctx.db.assistant_jobs.regenerations.regenerate, p.user_id, str(mid), str(req.reply_id)
    )
    return ctx.answer(write, p)

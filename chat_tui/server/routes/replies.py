"""The assistant reply routes (docs/api.md): ``POST /v1/messages/{mid}/stop`` stops a
streaming reply (:meth:`chat_tui.server.assistant.AssistantService.stop_reply`)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import Response

from chat_tui.server.routes.context import Caller, Context, errors, json_response
from chat_tui.wire.models import Message

router = APIRouter(tags=["messages"])


@router.post("/messages/{mid}/stop", response_model=Message,
             responses=errors(401, 404, 409, 422))
async def stop_reply(mid: uuid.UUID, p: Caller, ctx: Context) -> Response:
    """Stop the assistant reply ``mid`` while it streams; answers it as it ends (the text
    so far, then the stop note, ``streaming: false``). A reply that is no longer streaming
    is answered unchanged, so a repeat is harmless."""
    message = await ctx.run(ctx.db.assistant_jobs.reply_to_stop, p.user_id, str(mid))
    if message.streaming and await ctx.assistant.stop_reply(str(mid)):
        message = await ctx.run(ctx.db.assistant_jobs.reply_to_stop, p.user_id, str(mid))
    return json_response(message)

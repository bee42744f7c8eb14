"""Conversation routes (docs/api.md): ``PUT``, ``PATCH`` and ``DELETE
/v1/conversations/{cid}``, ``GET /v1/conversations``, ``POST /v1/conversations/{cid}/read``
and the members (``PUT`` and ``DELETE /v1/conversations/{cid}/members/{username}``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import Response

from chat_tui.server.routes.context import BODY_ERRORS, Caller, Context, errors, json_response
from chat_tui.wire.models import (
    Conversation,
    ConversationList,
    ConversationPatch,
    ConversationPut,
    ReadMarker,
    ReadRequest,
)

router = APIRouter(tags=["conversations"])


@router.put(
    "/conversations/{cid}",
    response_model=Conversation,
    status_code=201,
    responses={
        200: {"model": Conversation, "description": "exists; caller is creator"},
        **errors(*BODY_ERRORS, 401, 404, 409),
    },
)
async def put_conversation(
    cid: uuid.UUID, req: ConversationPut, p: Caller, ctx: Context
) -> Response:
    """Create a conversation (201) or return the caller's existing one (200)."""
    write = await ctx.run(
        ctx.db.conversations.put, p, str(cid), req.title, req.members, req.assistant,
        req.model, req.system_prompt,
    )
    return ctx.answer(write, p)


@router.patch(
    "/conversations/{cid}",
    response_model=Conversation,
    responses=errors(*BODY_ERRORS, 401, 404, 429),
)
async def patch_conversation(
    cid: uuid.UUID, req: ConversationPatch, p: Caller, ctx: Context
) -> Response:
    """Change the title, model or system prompt (any member; the fields the body names,
    last write wins per field); the same values again change nothing."""
    ctx.check_rate(p)
    write = await ctx.run(ctx.db.conversations.update, p, str(cid), req.changes())
    return ctx.answer(write, p)


@router.get("/conversations", response_model=ConversationList, responses=errors(401))
async def list_conversations(p: Caller, ctx: Context) -> Response:
    """The caller's conversations, most recently updated first."""
    return json_response(await ctx.run(ctx.db.conversations.list_for, p))


@router.post(
    "/conversations/{cid}/read", response_model=ReadMarker, responses=errors(*BODY_ERRORS, 401, 404)
)
async def mark_read(cid: uuid.UUID, req: ReadRequest, p: Caller, ctx: Context) -> Response:
    """Move the caller's read marker forward; answers the marker in force."""
    write = await ctx.write(ctx.db.messages.mark_read, p, str(cid), str(req.message_id))
    return ctx.answer(write, p)


@router.delete(
    "/conversations/{cid}",
    status_code=204,
    response_class=Response,
    responses=errors(401, 404, 422, 429),
)
async def leave_conversation(cid: uuid.UUID, p: Caller, ctx: Context) -> Response:
    """Leave the conversation (with no person left: gone for everyone); 204, also when
    the caller left it before."""
    ctx.check_rate(p)
    write = await ctx.run(ctx.db.memberships.leave, p, str(cid))
    if write.affected:
        ctx.notifier.notify(write.affected, origin_device=p.device_id)
    return Response(status_code=204)


MemberName = Annotated[str, Path(max_length=64, description="a username")]


@router.put(
    "/conversations/{cid}/members/{username}",
    response_model=Conversation,
    responses=errors(401, 403, 404, 422, 429),
)
async def add_member(cid: uuid.UUID, username: MemberName, p: Caller, ctx: Context) -> Response:
    """Add a member (the creator only); a member already: unchanged."""
    ctx.check_rate(p)
    return ctx.answer(await ctx.run(ctx.db.memberships.add_member, p, str(cid), username), p)


@router.delete(
    "/conversations/{cid}/members/{username}",
    response_model=Conversation,
    responses=errors(401, 403, 404, 409, 422, 429),
)
async def remove_member(
    cid: uuid.UUID, username: MemberName, p: Caller, ctx: Context
) -> Response:
    """Remove a member (the creator only; not itself: leave instead); not a member:
    unchanged."""
    ctx.check_rate(p)
    return ctx.answer(
        await ctx.run(ctx.db.memberships.remove_member, p, str(cid), username), p
    )

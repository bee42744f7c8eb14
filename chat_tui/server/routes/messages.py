"""Message routes (docs/api.md): the page of ``GET /v1/conversations/{cid}/messages``,
send (``PUT …/messages/{mid}``), edit (``PATCH /v1/messages/{mid}``) and delete."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from chat_tui.server.routes.context import BODY_ERRORS, Caller, Context, errors, json_response
from chat_tui.wire.limits import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, MIN_PAGE_LIMIT
from chat_tui.wire.models import Message, MessagePatch, MessagePut, MessagesPage

router = APIRouter(tags=["messages"])


@router.get(
    "/conversations/{cid}/messages",
    response_model=MessagesPage,
    responses=errors(401, 404, 422),
)
async def messages_page(
    cid: uuid.UUID,
    p: Caller,
    ctx: Context,
    before: Annotated[uuid.UUID | None, Query(description="page ends before this message")] = None,
    limit: Annotated[int, Query(ge=MIN_PAGE_LIMIT, le=MAX_PAGE_LIMIT)] = DEFAULT_PAGE_LIMIT,
) -> Response:
    """A page of messages, ascending by seq, older than ``before`` (newest when absent)."""
    page = await ctx.run(
        ctx.db.messages.page, p, str(cid), str(before) if before else None, limit
    )
    return json_response(page)


@router.put(
    "/conversations/{cid}/messages/{mid}",
    response_model=Message,
    status_code=201,
    responses={
        200: {"model": Message, "description": "repeat: the stored message"},
        **errors(*BODY_ERRORS, 401, 404, 409, 429),
    },
)
async def put_message(
    cid: uuid.UUID, mid: uuid.UUID, req: MessagePut, p: Caller, ctx: Context
) -> Response:
    """Send a message; ``mid`` is its idempotency key."""
    ctx.check_rate(p)
    return ctx.answer(await ctx.write(ctx.db.messages.put, p, str(cid), str(mid), req.body), p)


@router.patch(
    "/messages/{mid}",
    response_model=Message,
    responses=errors(*BODY_ERRORS, 401, 403, 404, 409, 429),
)
async def edit_message(mid: uuid.UUID, req: MessagePatch, p: Caller, ctx: Context) -> Response:
    """Edit (author only); bumps ``version``."""
    ctx.check_rate(p)
    return ctx.answer(await ctx.write(ctx.db.messages.edit, p, str(mid), req.body), p)


@router.delete("/messages/{mid}", response_model=Message, responses=errors(401, 403, 404, 422, 429))
async def delete_message(mid: uuid.UUID, p: Caller, ctx: Context) -> Response:
    """Leave a tombstone (author only); bumps ``version``."""
    ctx.check_rate(p)
    return ctx.answer(await ctx.write(ctx.db.messages.delete, p, str(mid)), p)

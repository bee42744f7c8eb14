"""``GET /v1/users/{username}`` (docs/api.md): whether a username exists, so a client can
check member names before it creates a conversation."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from chat_tui.server.errors import not_found
from chat_tui.server.routes.context import Caller, Context, errors, json_response
from chat_tui.wire.models import UserInfo

router = APIRouter(tags=["users"])


@router.get("/users/{username}", response_model=UserInfo, responses=errors(401, 404, 422))
async def get_user(username: str, p: Caller, ctx: Context) -> Response:
    """``200 {"username": str}`` when the user exists (the assistant included), ``404``
    otherwise (a malformed name too); only for authenticated callers."""
    found = await ctx.run(ctx.db.users.find, username)
    if found is None:
        raise not_found(f"no user {username!r}")
    return json_response(UserInfo.construct(username=found))

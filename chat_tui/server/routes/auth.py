"""``POST /v1/login`` and ``POST /v1/logout`` (docs/api.md)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.security.utils import get_authorization_scheme_param

from chat_tui.server.errors import ApiError
from chat_tui.server.routes.context import (
    BODY_ERRORS,
    Caller,
    Context,
    errors,
    json_response,
)
from chat_tui.server.security import token_hash
from chat_tui.wire.models import Login, LoginRequest

log = logging.getLogger("chat_tui.server")

router = APIRouter(tags=["auth"])


@router.post("/login", response_model=Login, responses=errors(*BODY_ERRORS, 401, 429))
async def login(req: LoginRequest, request: Request, ctx: Context) -> Response:
    """A new device with its own token (docs/api.md, POST /v1/login); failed logins are
    throttled per name and per client address, and each is logged with both (never the
    password)."""
    address = request.client.host if request.client else ""
    try:
        answer = await ctx.run(
            ctx.db.users.login, req.username, req.password, req.device_name, address,
            ctx.login_limits,
        )
    except ApiError as exc:
        if exc.status in (401, 429):
            log.warning(
                "login %s user=%r address=%s",
                "failed" if exc.status == 401 else "throttled", req.username[:64], address,
            )
        raise
    log.info("login user=%s device=%s", answer.username, answer.device_id)
    return json_response(answer)


@router.post("/logout", status_code=204, responses=errors(401))
async def logout(p: Caller, request: Request, ctx: Context) -> Response:
    """Revoke the calling token; it answers 401 afterwards."""
    await ctx.run(ctx.db.users.logout, p)
    _, token = get_authorization_scheme_param(request.headers.get("Authorization"))
    ctx.tokens.drop(token_hash(token))  # the token that named the caller ``p``
    log.info("logout user=%s device=%s", p.username, p.device_id)
    return Response(status_code=204)

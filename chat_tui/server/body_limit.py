"""The 1 MiB request limit of every route (docs/api.md, Errors: 413 ``too_large``), with
or without ``Content-Length``, and the body's read timeout (408 ``request_timeout``): an
ASGI middleware that refuses before the framework parses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fastapi.responses import JSONResponse

from chat_tui.server.errors import ApiError, too_large
from chat_tui.wire.limits import MAX_REQUEST_BYTES


class BodyLimitMiddleware:
    """Answer 413 ``too_large`` to requests over ``max_bytes`` (Content-Length or streamed),
    and 408 ``request_timeout`` (closing the connection) when the body has not fully
    arrived ``body_timeout`` seconds after the request head.

    Args:
        app: the ASGI application it wraps; max_bytes: the limit in bytes;
        body_timeout: seconds.
    """

    def __init__(
        self, app: Any, max_bytes: int = MAX_REQUEST_BYTES, body_timeout: float = 30.0
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout = body_timeout

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await _too_large()(scope, receive, send)
                    return
        # Read the whole body first (at most max_bytes are buffered), so an oversized
        # streamed body is refused with 413 before the framework starts parsing it.
        parts: list[bytes] = []
        seen = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                await _timed_out()(scope, receive, send)
                return
            if message["type"] != "http.request":
                await self.app(scope, _replay([], message, receive), send)
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await _too_large()(scope, receive, send)
                return
            parts.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(parts, None, receive), send)


def _replay(parts: list[bytes], pending: dict | None, receive: Callable) -> Callable:
    """A ``receive`` that first returns the buffered body (or ``pending``), then delegates."""
    first = (
        pending
        if pending is not None
        else {"type": "http.request", "body": b"".join(parts), "more_body": False}
    )
    used = False

    async def replay_receive() -> dict:
        nonlocal used
        if not used:
            used = True
            return first
        return await receive()

    return replay_receive


def _timed_out() -> JSONResponse:
    err = ApiError(408, "request_timeout", "the request body did not arrive in time")
    return JSONResponse(err.body(), status_code=408, headers={"Connection": "close"})


def _too_large() -> JSONResponse:
    err = too_large("request is larger than 1 MiB")
    return JSONResponse(err.body(), status_code=413)

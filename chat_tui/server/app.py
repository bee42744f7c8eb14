"""The FastAPI application of the wire API v1 (docs/api.md): :func:`create_app`.

It opens the database (:class:`~chat_tui.server.data.ServerDB`), builds the shared
:class:`~chat_tui.server.routes.context.ServerContext`, mounts the routers of
:mod:`chat_tui.server.routes` and answers every error as ``{"error": {"code",
"message"}}``. Handlers are async and cheap: each runs its database work in one
worker-thread call, then, after the commit, wakes the long-polls of the affected users.
Answers are the ``chat_tui.wire`` models serialised once to JSON; each route's
``response_model`` documents the shape in ``/openapi.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from peewee import Database
from starlette.exceptions import HTTPException as StarletteHTTPException

from chat_tui.server import __version__, pgbus
from chat_tui.server.assistant import AssistantService
from chat_tui.server.body_limit import BodyLimitMiddleware
from chat_tui.server.data import ServerDB
from chat_tui.server.db import is_sqlite, open_and_migrate
from chat_tui.server.errors import STATUS_CODES, ApiError
from chat_tui.server.notify import Notifier
from chat_tui.server.ratelimit import RateLimiter
from chat_tui.server.routes import api_router
from chat_tui.server.routes.context import ServerContext
from chat_tui.server.settings import AssistantSettings, Settings
from chat_tui.server.tokens import TokenCache, revocation_marker, watch_revocations

log = logging.getLogger("chat_tui.server")

#: The names ``/openapi.json`` gives the wire models' schemas (``components/schemas``):
#: the published names of the answer shapes, kept stable for generated clients.
OPENAPI_NAMES = {
    "Message": "MessageOut",
    "Conversation": "ConversationOut",
    "ReadMarker": "ReadMarkerOut",
    "SyncConversation": "SyncEntry",
    "MessagesPage": "MessagePage",
    "Login": "LoginResponse",
}

__all__ = ["AssistantSettings", "Settings", "create_app"]


def _error_response(err: ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


def _validation_message(exc: RequestValidationError) -> tuple[int, str]:
    """``(status, message)`` of a request validation error: 400 for malformed JSON, else
    422 naming each wrong field."""
    parts = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            return 400, "request body is not valid JSON"
        loc = [str(x) for x in error.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]
        where = ".".join(loc) or "request"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return 422, "; ".join(parts) or "invalid request"


def _install_error_handlers(app: FastAPI) -> None:
    """Answer every error in the shape of docs/api.md, Errors."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = _validation_message(exc)
        return _error_response(ApiError(status, STATUS_CODES[status], message))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(
            exc.status_code, "internal" if exc.status_code >= 500 else "bad_request"
        )
        message = exc.detail if isinstance(exc.detail, str) else code
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(app, request)
        return _error_response(ApiError(exc.status_code, code, message, headers))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _error_response(ApiError(500, "internal", "internal server error"))


def _allowed_methods(app: FastAPI, request: Request) -> str:
    """The ``Allow`` header of a 405: the methods ``/openapi.json`` documents for the
    request's path (one path is served by one route per method)."""
    table = getattr(app.state, "allowed_methods", None)
    if table is None:
        table = []
        for template, item in app.openapi().get("paths", {}).items():
            pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
            table.append((re.compile(pattern + "$"), ", ".join(m.upper() for m in item)))
        app.state.allowed_methods = table
    path = request.url.path
    return next((methods for regex, methods in table if regex.match(path)), "")


def _rename_schemas(spec: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """``spec`` with the component schemas ``names`` renamed (``$ref`` values too)."""
    text = json.dumps(spec)
    for old, new in names.items():
        text = text.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
    renamed = json.loads(text)
    schemas = renamed.get("components", {}).get("schemas", {})
    for old, new in names.items():
        if old in schemas:
            schemas[new] = schemas.pop(old)
    return renamed


def _install_openapi(app: FastAPI) -> None:
    """Serve ``/openapi.json`` with the schema names of :data:`OPENAPI_NAMES`."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _rename_schemas(build(), OPENAPI_NAMES)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings) -> FastAPI:
    """Build the application for ``settings``; opens and migrates the database at once.

    Raises ``db.SchemaError`` for a database newer than this code, and peewee/driver errors
    when the database cannot be opened, so ``serve`` fails before it listens; ValueError
    or KeyError for an assistant that cannot be set up (see ``AssistantService``).
    """
    db = open_and_migrate(settings.db)
    data = ServerDB(db)
    notifier = Notifier()
    assistant = AssistantService(data.assistant_jobs, notifier, settings.assistant)
    tokens = TokenCache(enabled=is_sqlite(db))
    context = ServerContext(
        data, notifier, RateLimiter(settings.rate_limit), assistant, settings.logins, tokens
    )
    listener = None
    if not is_sqlite(db):
        listener = _listener(db, notifier, tokens, assistant)
        assistant.ask_others_to_stop = lambda reply_id: pgbus.send_now(
            db, pgbus.STOP_REPLIES, [reply_id]
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        watcher = None
        if listener is not None:
            await anyio.to_thread.run_sync(listener.start, asyncio.get_running_loop())
        else:  # SQLite: a reset by `add-user` in another process (rule P2)
            watcher = asyncio.create_task(
                watch_revocations(revocation_marker(db.database), tokens),
                name="token-revocations")
        await assistant.start()
        log.info("chat-tui-server %s started (db: %s)", __version__, _safe_db(settings.db))
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            notifier.close()
            await assistant.stop()
            if listener is not None:
                await anyio.to_thread.run_sync(listener.stop)
            db.close()
            log.info("chat-tui-server stopped")

    app = FastAPI(
        title="chat-tui-server",
        version=__version__,
        description="Wire API v1 of chat-tui (docs/api.md).",
        lifespan=lifespan,
    )
    app.state.context = context
    app.add_middleware(BodyLimitMiddleware, body_timeout=settings.connections.body_timeout)
    _install_error_handlers(app)
    app.include_router(api_router())
    _install_openapi(app)
    return app


def _listener(db: Database, notifier: Notifier, tokens: TokenCache,
              assistant: AssistantService) -> pgbus.Listener:
    """The PostgreSQL listener of this process (:mod:`chat_tui.server.pgbus`): other
    processes' changes wake this one's long-polls, their revocations empty its token
    cache, their stop requests reach the replies this one writes; while it is not
    connected the token cache is off, and on (re)connecting every long-poll reads again
    (notices may have been missed)."""

    def connect():
        import psycopg2

        return psycopg2.connect(database=db.database, **db.connect_params)

    def deliver(notice: pgbus.Notice) -> None:
        if notice.kind == pgbus.WAKE:
            notifier.notify(notice.ids, origin_device=notice.origin)
        elif notice.kind == pgbus.REVOKED_DEVICES:
            tokens.drop_devices(notice.ids)
        elif notice.kind == pgbus.REVOKED_USERS:
            tokens.drop_users(notice.ids)
        elif notice.kind == pgbus.STOP_REPLIES:
            assistant.stop_local(notice.ids)

    def connected() -> None:
        tokens.clear()
        tokens.enabled = True
        notifier.wake_all()

    def lost() -> None:
        tokens.enabled = False
        tokens.clear()

    return pgbus.Listener(connect, deliver, connected, lost)


def _safe_db(target: str | Path) -> str:
    """The database target for logs, with any URL password masked."""
    text = str(target)
    if "://" in text and "@" in text:
        scheme, rest = text.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return text

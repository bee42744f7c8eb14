"""The FastAPI application: routes of docs/api.md (wire API v1) over :class:`Store`.

Handlers are async and cheap: each runs its database work in one worker-thread call
(``anyio.to_thread.run_sync``), then, after the commit, wakes the long-polls of the affected
users through the :class:`Notifier`. Responses are built as plain dicts and sent as
``JSONResponse`` (no second validation pass); the ``response_model`` of each route still
documents the shape in ``/openapi.json``.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from chat_tui.server import __version__, schemas
from chat_tui.server.db import open_and_migrate
from chat_tui.server.errors import STATUS_CODES, ApiError
from chat_tui.server.notify import Notifier
from chat_tui.server.ratelimit import RateLimiter, retry_after_header
from chat_tui.server.security import token_hash
from chat_tui.server.store import Principal, Store, WriteResult

log = logging.getLogger("chat_tui.server")

T = TypeVar("T")

#: docs/api.md, Errors: a request over 1 MiB is answered 413.
MAX_REQUEST_BYTES = 1024 * 1024
#: How long a verified token is trusted without asking the database again (seconds).
#: Logout through this server drops the entry at once.
TOKEN_CACHE_SECONDS = 30.0


@dataclass
class AssistantSettings:
    """How the assistant member answers (docs: issue 2, Assistant member).

    ``kind``: ``"echo"`` (built-in demo) or ``"openai"`` (any OpenAI-compatible endpoint);
    ``base_url``/``model`` for ``openai`` (key from ``OPENAI_API_KEY``); ``timeout``: seconds
    an upstream reply may take in total before it ends as an error; ``echo_delay``: seconds
    between the words the echo responder streams.
    """

    kind: str = "echo"
    base_url: str | None = None
    model: str = "gpt-4o-mini"
    timeout: float = 60.0
    echo_delay: float = 0.05


@dataclass
class Settings:
    """Server settings: database (path or URL), send rate per token (0: off), assistant."""

    db: str | Path
    rate_limit: float = 20.0
    assistant: AssistantSettings = field(default_factory=AssistantSettings)


class BodyLimitMiddleware:
    """Answer 413 ``too_large`` to requests over ``max_bytes`` (Content-Length or streamed)."""

    def __init__(self, app: Any, max_bytes: int = MAX_REQUEST_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

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
        while True:
            message = await receive()
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


def _too_large() -> JSONResponse:
    err = ApiError(413, "too_large", "request is larger than 1 MiB")
    return JSONResponse(err.body(), status_code=413)


def _error_response(err: ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


def _validation_message(exc: RequestValidationError) -> tuple[int, str]:
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


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": schemas.ErrorBody, "description": code}
    for status, code in STATUS_CODES.items()
    if status in (400, 401, 403, 404, 409, 410, 413, 422, 429)
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: ERROR_RESPONSES[s] for s in statuses}


def create_app(settings: Settings) -> FastAPI:
    """Build the application for ``settings``; opens and migrates the database at once.

    Raises ``db.SchemaError`` for a database newer than this code, and peewee/driver errors
    when the database cannot be opened, so ``serve`` fails before it listens.
    """
    db = open_and_migrate(settings.db)
    store = Store(db)
    notifier = Notifier()
    limiter = RateLimiter(settings.rate_limit)
    token_cache: dict[str, tuple[Principal, float]] = {}

    from chat_tui.server.assistant import AssistantService  # late: optional openai import

    assistant = AssistantService(store, notifier, settings.assistant)

    async def run(fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(fn, *args)

    def publish(result: WriteResult, p: Principal) -> JSONResponse:
        if result.affected:
            # The caller's device has the change from this answer: it is not woken by it
            # (docs/api.md, GET /v1/sync, long-poll).
            notifier.notify(result.affected, origin_device=p.device_id)
        if result.assistant_job is not None:
            assistant.enqueue(*result.assistant_job)
        return JSONResponse(result.data, status_code=result.status)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await assistant.start()
        log.info("chat-tui-server %s started (db: %s)", __version__, _safe_db(settings.db))
        try:
            yield
        finally:
            notifier.close()
            await assistant.stop()
            db.close()
            log.info("chat-tui-server stopped")

    app = FastAPI(
        title="chat-tui-server",
        version=__version__,
        description="Wire API v1 of chat-tui (docs/api.md).",
        lifespan=lifespan,
    )
    app.state.store = store
    app.state.notifier = notifier
    app.state.assistant = assistant
    app.add_middleware(BodyLimitMiddleware)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = _validation_message(exc)
        return _error_response(ApiError(status, STATUS_CODES[status], message))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(
            exc.status_code, "internal" if exc.status_code >= 500 else "bad_request"
        )
        message = exc.detail if isinstance(exc.detail, str) else code
        return _error_response(ApiError(exc.status_code, code, message, dict(exc.headers or {})))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _error_response(ApiError(500, "internal", "internal server error"))

    bearer = HTTPBearer(auto_error=False)

    async def principal(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        if credentials is None or not credentials.credentials:
            raise ApiError(401, "unauthorized", "missing access token")
        key = token_hash(credentials.credentials)
        cached = token_cache.get(key)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        found = await run(store.authenticate, credentials.credentials)
        if len(token_cache) > 50_000:
            token_cache.clear()
        token_cache[key] = (found, now + TOKEN_CACHE_SECONDS)
        return found

    Caller = Annotated[Principal, Depends(principal)]
    Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]

    def check_rate(p: Principal) -> None:
        wait = limiter.acquire(p.device_id)
        if wait > 0:
            raise ApiError(
                429,
                "rate_limited",
                "too many sends from this token; retry after the Retry-After delay",
                {"Retry-After": retry_after_header(wait)},
            )

    @app.get("/v1/health", response_model=schemas.Health, tags=["meta"])
    async def health() -> dict:
        """Reachability probe; no auth."""
        return {"status": "ok", "version": __version__}

    @app.post(
        "/v1/login",
        response_model=schemas.LoginResponse,
        responses=_errors(400, 401, 422),
        tags=["auth"],
    )
    async def login(req: schemas.LoginRequest) -> JSONResponse:
        """A new device with its own token (docs/api.md, POST /v1/login)."""
        data = await run(store.login, req.username, req.password, req.device_name)
        log.info("login user=%s device=%s", data["username"], data["device_id"])
        return JSONResponse(data)

    @app.post("/v1/logout", status_code=204, responses=_errors(401), tags=["auth"])
    async def logout(
        p: Caller,
        credentials: Credentials,
    ) -> Response:
        """Revoke the calling token."""
        await run(store.logout, p)
        if credentials is not None:
            token_cache.pop(token_hash(credentials.credentials), None)
        log.info("logout user=%s device=%s", p.username, p.device_id)
        return Response(status_code=204)

    @app.put(
        "/v1/conversations/{cid}",
        response_model=schemas.ConversationOut,
        status_code=201,
        responses={
            200: {"model": schemas.ConversationOut, "description": "exists; caller is creator"},
            **_errors(400, 401, 404, 409, 422),
        },
        tags=["conversations"],
    )
    async def put_conversation(
        cid: uuid.UUID, req: schemas.ConversationPut, p: Caller
    ) -> JSONResponse:
        """Create a conversation (201) or return the caller's existing one (200)."""
        result = await run(
            store.put_conversation, p, str(cid), req.title, req.members, req.assistant
        )
        return publish(result, p)

    @app.get(
        "/v1/conversations",
        response_model=schemas.ConversationList,
        responses=_errors(401),
        tags=["conversations"],
    )
    async def list_conversations(p: Caller) -> JSONResponse:
        """The caller's conversations, most recently updated first."""
        return JSONResponse(await run(store.list_conversations, p))

    @app.get(
        "/v1/conversations/{cid}/messages",
        response_model=schemas.MessagePage,
        responses=_errors(401, 404, 422),
        tags=["messages"],
    )
    async def messages_page(
        cid: uuid.UUID,
        p: Caller,
        before: Annotated[
            uuid.UUID | None, Query(description="page ends before this message")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> JSONResponse:
        """A page of messages, ascending by seq, older than ``before`` (newest when absent)."""
        data = await run(store.messages_page, p, str(cid), str(before) if before else None, limit)
        return JSONResponse(data)

    @app.put(
        "/v1/conversations/{cid}/messages/{mid}",
        response_model=schemas.MessageOut,
        status_code=201,
        responses={
            200: {"model": schemas.MessageOut, "description": "repeat: the stored message"},
            **_errors(400, 401, 404, 409, 413, 422, 429),
        },
        tags=["messages"],
    )
    async def put_message(
        cid: uuid.UUID,
        mid: uuid.UUID,
        req: schemas.MessagePut,
        p: Caller,
    ) -> JSONResponse:
        """Send a message; ``mid`` is its idempotency key."""
        check_rate(p)
        return publish(await run(store.put_message, p, str(cid), str(mid), req.body), p)

    @app.patch(
        "/v1/messages/{mid}",
        response_model=schemas.MessageOut,
        responses=_errors(400, 401, 403, 404, 409, 413, 422, 429),
        tags=["messages"],
    )
    async def edit_message(mid: uuid.UUID, req: schemas.MessagePatch, p: Caller) -> JSONResponse:
        """Edit (author only); bumps ``version``."""
        check_rate(p)
        return publish(await run(store.edit_message, p, str(mid), req.body), p)

    @app.delete(
        "/v1/messages/{mid}",
        response_model=schemas.MessageOut,
        responses=_errors(401, 403, 404, 429),
        tags=["messages"],
    )
    async def delete_message(mid: uuid.UUID, p: Caller) -> JSONResponse:
        """Leave a tombstone (author only); bumps ``version``."""
        check_rate(p)
        return publish(await run(store.delete_message, p, str(mid)), p)

    @app.post(
        "/v1/conversations/{cid}/read",
        response_model=schemas.ReadMarkerOut,
        responses=_errors(400, 401, 404, 422),
        tags=["conversations"],
    )
    async def mark_read(cid: uuid.UUID, req: schemas.ReadRequest, p: Caller) -> JSONResponse:
        """Move the caller's read marker forward."""
        return publish(await run(store.mark_read, p, str(cid), str(req.message_id)), p)

    @app.get(
        "/v1/sync",
        response_model=schemas.SyncResponse,
        responses=_errors(401, 410, 422),
        tags=["sync"],
    )
    async def sync(
        p: Caller,
        since: Annotated[str | None, Query(description="cursor of the previous sync")] = None,
        timeout: Annotated[float, Query(ge=0, le=30, description="long-poll seconds")] = 0,
    ) -> JSONResponse:
        """Delta sync with long-poll (docs/api.md, GET /v1/sync)."""
        since_n = store.parse_cursor(since) if since is not None else None

        def answer(data: dict, seen: int) -> JSONResponse:
            notifier.answered(p.user_id, p.device_id, int(data["cursor"]), seen)
            return JSONResponse(data)

        if since_n is None or timeout <= 0:
            _, seen = notifier.others_changed(p.user_id, p.device_id, since_n)
            return answer(await run(store.sync, p, since_n), seen)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        data = None
        while True:
            event = notifier.subscribe(p.user_id, p.device_id)
            try:
                # Asked before the read: a change committed after it is marked again.
                others, seen = notifier.others_changed(p.user_id, p.device_id, since_n)
                data = await run(store.sync, p, since_n)
                changed = bool(data["conversations"] or data["read_markers"])
                if changed and others:
                    return answer(data, seen)
                # Nothing changed, or only by this device itself (it has its own changes
                # from its requests' answers): hold until another device's change.
                remaining = deadline - loop.time()
                if remaining <= 0 or notifier.closed:
                    break
                try:
                    await asyncio.wait_for(event.wait(), remaining)
                except TimeoutError:
                    break
            finally:
                notifier.release(p.user_id, p.device_id)
        if not notifier.closed and notifier.own_changed(p.user_id, p.device_id):
            data = await run(store.sync, p, since_n)  # its own changes made while held
        if data is not None and (data["conversations"] or data["read_markers"]):
            return answer(data, seen)  # the device's own changes, at the end of the wait
        return answer(
            {"cursor": str(since_n), "initial": False, "conversations": [], "read_markers": []},
            seen
        )

    return app


def _safe_db(target: str | Path) -> str:
    """The database target for logs, with any URL password masked."""
    text = str(target)
    if "://" in text and "@" in text:
        scheme, rest = text.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return text

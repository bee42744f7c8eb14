"""What every route shares: the server's state (:class:`ServerContext`), the caller
dependency (bearer token -> :class:`Principal`), the send rate check, running data
calls in a worker thread, and answering a write (wake the long-polls, pick 200 or 201).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, Request
from fastapi.responses import Response
from fastapi.security import HTTPBearer

from chat_tui.server.assistant import AssistantService
from chat_tui.server.data import Principal, ServerDB, Write
from chat_tui.server.db import change_origin, is_sqlite
from chat_tui.server.errors import STATUS_CODES, ApiError, unauthorized
from chat_tui.server.groupcommit import GroupCommit
from chat_tui.server.notify import Notifier
from chat_tui.server.ratelimit import RateLimiter, retry_after_header
from chat_tui.server.security import token_hash
from chat_tui.server.settings import LoginLimits
from chat_tui.server.tokens import TokenCache
from chat_tui.wire.models import ErrorBody

T = TypeVar("T")

#: The JSON media type of every answer.
JSON = "application/json"
#: Worker threads running database calls at once. The calls hold the GIL for most of
#: their time, so more threads only make each slower (one sync read measured 2.3 ms of
#: CPU alone and 5.2 ms among anyio's default 40 threads); a few keep the CPU busy while
#: one waits on a disk flush or a PostgreSQL round trip.
DB_THREADS = 4
#: On PostgreSQL, worker threads running write calls at once, beside the
#: :data:`DB_THREADS` of the other calls. A write waits in PostgreSQL for the one write
#: lock (the change counter's row, taken by every process on the database) without the
#: GIL; sharing the read threads, the writes waiting there left no thread to the reads of
#: the long-polls their commits had woken.
WRITE_THREADS = 2


@dataclass
class ServerContext:
    """The state of one server instance, shared by its routes (``app.state.context``):
    the database, the long-poll notifier, the send rate limiter, the assistant, the login
    throttle's limits and the verified-token cache (:class:`TokenCache`)."""

    db: ServerDB
    notifier: Notifier
    limiter: RateLimiter
    assistant: AssistantService
    login_limits: LoginLimits = field(default_factory=LoginLimits)
    tokens: TokenCache = field(default_factory=TokenCache)
    _threads: anyio.CapacityLimiter | None = field(default=None, init=False, repr=False)
    _writers: anyio.CapacityLimiter | None = field(default=None, init=False, repr=False)
    _group: GroupCommit | None = field(default=None, init=False, repr=False)

    async def run(self, fn: Callable[..., T], *args: Any,
                  limiter: anyio.CapacityLimiter | None = None) -> T:
        """``fn(*args)`` in a worker thread (database calls block), at most
        :data:`DB_THREADS` at once (or as many as ``limiter`` lets); the others queue in
        order. When the first argument is the caller (a :class:`Principal`), its device
        is the origin of the changes ``fn`` commits (``db.change_origin``: other
        processes' wake-ups leave that device's long-polls alone, as this process's do)."""
        if self._threads is None:
            self._threads = anyio.CapacityLimiter(DB_THREADS)
        if limiter is None:
            limiter = self._threads
        if args and isinstance(args[0], Principal):
            device_id = args[0].device_id

            def call() -> T:
                with change_origin(device_id):
                    return fn(*args)

            return await anyio.to_thread.run_sync(call, limiter=limiter)
        return await anyio.to_thread.run_sync(fn, *args, limiter=limiter)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """A write call ``fn(*args)`` (a data method that commits one write transaction):
        on SQLite committed together with the other requests' writes queued meanwhile
        (:class:`~chat_tui.server.groupcommit.GroupCommit`: one fsync'd commit for all,
        each answered after it); on PostgreSQL as :meth:`run` on the
        :data:`WRITE_THREADS` write threads. Returns ``fn``'s value or raises its
        exception, like :meth:`run`."""
        if not is_sqlite(self.db.db):
            if self._writers is None:
                self._writers = anyio.CapacityLimiter(WRITE_THREADS)
            return await self.run(fn, *args, limiter=self._writers)
        if self._group is None:
            self._group = GroupCommit(self.db.db, self._run_plain)
        return await self._group.write(fn, *args)

    async def _run_plain(self, fn: Callable[..., T], *args: Any) -> T:
        if self._threads is None:
            self._threads = anyio.CapacityLimiter(DB_THREADS)
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._threads)

    def answer(self, write: Write, p: Principal) -> Response:
        """Answer a write: wake the long-polls of the affected users, except the caller's
        device, which has the change from this answer (docs/api.md, ``GET /v1/sync``,
        long-poll); queue the assistant's job; 201 when it created something, else 200."""
        if write.affected:
            self.notifier.notify(write.affected, origin_device=p.device_id)
        if write.assistant_job is not None and write.created:
            self.assistant.enqueue(*write.assistant_job)
        return json_response(write.value, 201 if write.created else 200)

    def check_rate(self, p: Principal) -> None:
        """Take one send from the device's token bucket.

        Raises ApiError 429 ``rate_limited`` with ``Retry-After`` when it is empty.
        """
        wait = self.limiter.acquire(p.device_id)
        if wait > 0:
            raise ApiError(
                429,
                "rate_limited",
                "too many sends from this token; retry after the Retry-After delay",
                {"Retry-After": retry_after_header(wait)},
            )


def json_response(value: Any, status: int = 200) -> Response:
    """A wire object (a ``chat_tui.wire`` model) as the JSON answer with ``status``."""
    return Response(value.to_json(), status_code=status, media_type=JSON)


async def context(request: Request) -> ServerContext:
    """Dependency: the server's :class:`ServerContext` (a coroutine: FastAPI runs a plain
    function dependency in a worker thread, a hop per request for one attribute read)."""
    return request.app.state.context


class BearerCaller(HTTPBearer):
    """Dependency: the caller named by the bearer token, from the token cache
    (:mod:`chat_tui.server.tokens`: revocations empty it at once) or the database.

    It is the ``HTTPBearer`` security scheme itself (``/openapi.json`` declares the
    scheme ``HTTPBearer`` on every route that needs a token) and takes the request only,
    so FastAPI solves one dependency per request for the caller, not three (the scheme,
    the server context, the caller): dependency solving measured ~25% of the event loop's
    time under long-polls and sends.

    Raises ApiError 401 for a missing, unknown or revoked token.
    """

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        credentials = await super().__call__(request)
        if credentials is None or not credentials.credentials:
            raise unauthorized("missing access token")
        ctx: ServerContext = request.app.state.context
        key = token_hash(credentials.credentials)
        cached = ctx.tokens.get(key)
        if cached is not None:
            return cached
        generation = ctx.tokens.generation
        found = await ctx.run(ctx.db.users.authenticate, credentials.credentials)
        ctx.tokens.put(key, found, generation)
        return found


principal = BearerCaller(auto_error=False, scheme_name="HTTPBearer")
Context = Annotated[ServerContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]

_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": code}
    for status, code in STATUS_CODES.items()
    if status in (400, 401, 403, 404, 408, 409, 410, 413, 422, 429)
}

#: The answers of every route that reads a JSON body: malformed JSON (400), a body that
#: arrives too slowly (408), a request over 1 MiB (413), a field out of range (422).
BODY_ERRORS = (400, 408, 413, 422)


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` entries documenting the error answers ``statuses`` of a route
    in ``/openapi.json``."""
    return {s: _ERROR_RESPONSES[s] for s in statuses}

"""The engine's database worker: the one thread its big store work runs on (sync rule D3).

Opening and migrating the cache, sync pages, backfill pages, retention and every outbox
state change of the drain run here, one at a time, so the UI's event loop never waits on
them and the engine's writes never compete with each other (sync rule D1). A database
error pauses the drain through the gate (outbox rule 3); the caller waits a backoff and
tries again, and the first write that succeeds lifts the pause.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from chat_tui.sync.retry import Schedule

if TYPE_CHECKING:
    from chat_tui.sync.gate import Gate


class DbWorker:
    """A single-thread executor for the store's heavy work, and its error handling.

    Args:
        gate: owns the database pause (``Gate.pause_database``).
        backoff_base, backoff_cap: seconds; the jittered exponential wait after a database
            error before the caller tries again (outbox rule 3).

    The thread (``chat-tui-db``) is created by the first :meth:`run` and ended by
    :meth:`shutdown`.
    """

    def __init__(self, gate: Gate, backoff_base: float, backoff_cap: float):
        self._gate = gate
        self._schedule = Schedule(backoff_base, backoff_cap)
        self.executor: ThreadPoolExecutor | None = None

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on the worker thread and return its result (or raise its
        error). When the awaiting task is cancelled before the worker started it, it
        never runs (see :meth:`record`)."""
        if self.executor is None:
            self.executor = ThreadPoolExecutor(1, thread_name_prefix="chat-tui-db")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, fn, *args)

    async def record(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Like :meth:`run`, for what must be written once a request has an outcome (its
        acknowledgement, or the failure that moves its row out of ``sending``): it runs
        even when the awaiting task is cancelled meanwhile (work offline, stop), which then
        still raises ``CancelledError``. A write still queued behind other work on the
        worker would otherwise be dropped by the cancel and leave the row ``sending``
        while the engine runs (outbox rule 4)."""
        return await asyncio.shield(self.run(fn, *args))

    def submit(self, fn: Callable[[], Any]) -> None:
        """Queue ``fn()`` on the worker thread without waiting for it; it runs after
        everything already queued or running there. A no-op before the first :meth:`run`
        or after :meth:`shutdown`. Safe from any thread."""
        if self.executor is None:
            return
        with contextlib.suppress(RuntimeError):  # executor already shut down
            self.executor.submit(fn)

    async def failed(self, exc: Exception) -> None:
        """Outbox rule 3 (local database error): pause the drain (``EngineProblem
        ("database")`` once, :meth:`Gate.pause_database`), then wait a backoff before the
        caller tries again; nothing is marked failed."""
        self._gate.pause_database(exc)
        await asyncio.sleep(self._schedule.next_delay())

    def ok(self) -> None:
        """A write succeeded: lift a database pause (``EngineProblem("database",
        active=False)``) and start the backoff over."""
        if self._gate.db_paused is not None and self._gate.resume_database():
            self._schedule.reset()

    async def shutdown(self, close: Callable[[], Any]) -> None:
        """Run ``close()`` (the store's close, for the worker's own connection) on the
        thread, then end the thread. Errors of ``close`` are ignored."""
        if self.executor is None:
            return
        with contextlib.suppress(Exception):
            await self.run(close)
        self.executor.shutdown(wait=True)
        self.executor = None

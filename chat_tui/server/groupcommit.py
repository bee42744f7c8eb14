"""Group commit of concurrent writes on SQLite: :class:`GroupCommit`.

On SQLite every write transaction holds the database's one write lock through its commit,
and the commit waits for its fsync (``synchronous=FULL``: an answered send survives power
loss). Committed one by one, concurrent sends queue behind each other's fsync, and the
worker threads they occupy while they wait are not there for the long-polls' reads. So the
writes of concurrent requests are queued on the event loop and run in batches: one batch
at a time, on one database worker thread, in one transaction with one commit
(:func:`chat_tui.server.db.group_commit`); while a batch commits, the next requests queue
and form the next batch. A lone write is not delayed: it starts a batch of one at once.
Each request still gets its own answer or its own error, only after the commit.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from peewee import Database

from chat_tui.server.db import group_commit

T = TypeVar("T")

#: Writes committed together at most (a longer queue is committed in several batches).
MAX_BATCH = 64


class GroupCommit:
    """Batches the write calls of concurrent requests into shared commits.

    ``run_in_thread(fn, *args)`` runs a blocking function on a database worker thread
    (:meth:`chat_tui.server.routes.context.ServerContext.run` without its origin
    handling). All methods run on the event loop thread. ``batches`` and ``calls`` count
    the commits made and the writes in them (for tests and logs).
    """

    def __init__(self, db: Database,
                 run_in_thread: Callable[..., Awaitable[Any]],
                 max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.max_batch = max_batch
        self._run_in_thread = run_in_thread
        self._pending: list[tuple[Callable[[], Any], asyncio.Future]] = []
        self._task: asyncio.Task | None = None
        self.batches = 0
        self.calls = 0

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` committed with the other writes queued with it; returns its value
        once the commit is done, or raises its exception (its changes rolled back, the
        batch's others kept), or what the commit raised."""
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending.append((functools.partial(fn, *args), future))
        if self._task is None:
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        batch: list[tuple[Callable[[], Any], asyncio.Future]] = []
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                # A request abandoned before its batch started is not written.
                batch = [(call, future) for call, future in batch if not future.done()]
                if not batch:
                    continue
                try:
                    results = await self._run_in_thread(
                        group_commit, self.db, [call for call, _ in batch])
                except Exception as exc:  # the commit failed: none of them took effect
                    results = [(False, exc)] * len(batch)
                self.batches += 1
                self.calls += len(batch)
                for (ok, value), (_, future) in zip(results, batch, strict=True):
                    if future.done():  # its request was abandoned meanwhile
                        continue
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
                batch = []
        except BaseException:  # cancelled (the server stops): no request waits forever
            for _, future in [*batch, *self._pending]:
                future.cancel()
            self._pending.clear()
            raise
        finally:
            self._task = None

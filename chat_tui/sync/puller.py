"""Delta sync and backfill (sync rules S1-S6, docs/sync.md).

The :class:`Puller` long-polls ``GET /v1/sync?since=<cursor>`` while the gate is ready and
applies each response on the database worker with its cursor written last;
:meth:`Puller.backfill` fetches one older page of a conversation on request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from peewee import DatabaseError

from chat_tui.api import CursorExpired, PermanentError, TransientError, Unauthorized
from chat_tui.sync.events import ConversationsChanged, SyncProgress
from chat_tui.sync.part import EnginePart
from chat_tui.sync.retry import Schedule

if TYPE_CHECKING:
    from chat_tui.api.backend import Backend
    from chat_tui.config import Settings
    from chat_tui.store import Cache
    from chat_tui.sync.bus import EventBus
    from chat_tui.sync.connectivity import Monitor
    from chat_tui.sync.gate import Gate
    from chat_tui.sync.worker import DbWorker

log = logging.getLogger(__name__)


class Puller(EnginePart):
    """Brings the server's changes into the cache.

    Args:
        store: the account's cache.
        worker: the database worker the responses are applied on (sync rules S2, D3).
        gate: the loop waits until it is ready (online, not working offline, no 401).
        monitor: told of failed requests (sync rule C1).
        bus: where the puller publishes ``MessagesChanged``, ``ConversationsChanged``,
            ``SyncProgress`` and ``ConnectivityChanged``.
        api: returns the engine's API client (None before start).
        settings: ``poll_timeout`` (s), ``page_size``, ``backoff_base``/``backoff_cap``.

    ``schedule`` is the backoff after a failed sync (started over by any success, also an
    acknowledged send); ``synced`` counts the applied responses; ``once`` makes the loop
    poll without waiting (``Engine.sync_once``); ``after_sync``, when set, is awaited with
    the backend after each applied response (a Matrix account keeps its invites:
    :mod:`chat_tui.sync.matrix_side`); ``seq_is_order`` is False for a Matrix account,
    whose backfilled places do not tell where a gap ends (sync rules S5, M5).
    """

    def __init__(self, store: Cache, worker: DbWorker, gate: Gate, monitor: Monitor,
                 bus: EventBus, api: Callable[[], Backend | None], settings: Settings):
        super().__init__(store, worker, gate, monitor, bus, api, settings)
        self.schedule = Schedule(settings.backoff_base, settings.backoff_cap)
        self.synced = 0
        self.once = False
        self.after_sync: Callable[[Any], Awaitable[None]] | None = None
        self.seq_is_order = True

    async def run(self) -> None:
        """Sync rules S1-S4: long-poll ``/v1/sync`` whenever the gate is ready; apply each
        response with its cursor on the worker thread. Runs until cancelled."""
        while True:
            await self._gate.wait_ready()
            try:
                await self.pull_once(self._settings.poll_timeout if not self.once else 0)
            except DatabaseError as exc:
                await self._worker.failed(exc)
                continue
            if self.once:
                await asyncio.sleep(0.2)

    async def pull_once(self, timeout: int) -> bool:
        """One ``/v1/sync`` request (long-poll ``timeout`` seconds; an initial sync never
        waits) and its application. Returns True when a response was applied.

        A 410 drops the cached server state (S6); a 401 pauses through the gate; a
        transient failure goes to the monitor and waits ``Retry-After`` or the backoff.

        Raises:
            peewee.DatabaseError: the response could not be written.
        """
        api = self._api()
        assert api is not None
        bus = self._bus
        cursor = await self._worker.run(self._store.get_cursor)
        phase = "initial" if cursor is None else "delta"
        if cursor is None:
            bus.emit(SyncProgress("initial", 0, None))
        try:
            try:
                response = await api.sync(cursor, 0 if cursor is None else timeout)
            except BaseException:
                if cursor is None:  # the initial sync did not happen: say it is over
                    bus.emit(SyncProgress("idle", 0, None))
                raise
        except CursorExpired:
            log.warning("sync cursor expired: initial sync (the outbox is kept)")
            await self._worker.run(self._store.reset_cache)
            bus.emit(ConversationsChanged(()))
            return False
        except Unauthorized as exc:
            self._gate.pause_auth(exc.reason)
            return False
        except TransientError as exc:
            self._monitor.report_failure(exc)
            if not exc.connection_level:
                await asyncio.sleep(exc.retry_after if exc.retry_after is not None
                                    else self.schedule.next_delay())
            return False
        except PermanentError as exc:
            log.error("sync refused: %s", exc.reason)
            await asyncio.sleep(self.schedule.next_delay())
            return False
        total = len(response.conversations)
        if total:
            bus.emit(SyncProgress(phase, 0, total))  # type: ignore[arg-type]
        res = await self._worker.run(self._store.apply_sync, response)
        if self.after_sync is not None:
            await self.after_sync(api)
        self._worker.ok()
        self.synced += 1
        self.schedule.reset()
        self._gate.set_state("online")
        bus.emit_result(res)
        if total:
            bus.emit(SyncProgress(phase, total, total))  # type: ignore[arg-type]
        bus.emit(SyncProgress("idle", 0, None))
        self._gate.publish_connectivity()
        return True

    async def backfill(self, conversation_id: str) -> int:
        """Sync rule S5: fetch one older page (the newest gap first, else before the oldest
        cached message) and store it; returns how many messages were added (0 when nothing
        older exists, or while working offline or before start).

        Raises:
            chat_tui.api.ApiError: the server refused or could not be reached.
        """
        api = self._api()
        if self._gate.work_offline or api is None:
            return 0
        target = await self._worker.run(self._store.backfill_target, conversation_id)
        if target is None:
            return 0
        before, gap_id = target
        bus = self._bus
        bus.emit(SyncProgress("backfill", 0, None))
        try:
            try:
                page = await api.messages(conversation_id, before, self._settings.page_size)
            except TransientError as exc:
                self._monitor.report_failure(exc)
                raise
            apply = partial(self._store.apply_page, seq_is_order=self.seq_is_order)
            res = await self._worker.run(apply, conversation_id, page, gap_id)
        except BaseException:
            bus.emit(SyncProgress("idle", 0, None))  # a failed backfill is over too
            raise
        bus.emit_result(res)
        bus.emit(SyncProgress("backfill", res.added, res.added))
        bus.emit(SyncProgress("idle", 0, None))
        return res.added

"""The sync engine of one account: the façade the UI and the headless CLI act through.

It runs as asyncio tasks on the caller's event loop (Textual's, or ``asyncio.run`` in
``chat-tui sync``) and never imports Textual. The façade wires small parts, one module
each, and owns their lifecycle and the user actions:

- :class:`~chat_tui.sync.bus.EventBus`: subscribers and event delivery,
- :class:`~chat_tui.sync.worker.DbWorker`: the database worker thread (sync rule D3),
- :class:`~chat_tui.sync.gate.Gate`: every pause (auth, database, 429, work offline,
  offline),
- :class:`~chat_tui.sync.connectivity.Monitor`: health probes (sync rules C1-C2),
- :class:`~chat_tui.sync.drain.Drain`: the outbox drain (outbox rules 2-8),
- :class:`~chat_tui.sync.puller.Puller`: delta sync and backfill (sync rules S1-S6),
- :func:`~chat_tui.sync.retention.run_retention`: cache retention (sync rule R1),
- :mod:`chat_tui.sync.headless`: ``sync_once`` for ``chat-tui sync``.

The user actions (:meth:`Engine.send`, :meth:`Engine.edit`, ...; the mixins
:class:`~chat_tui.sync.user_actions.UserActions` and
:class:`~chat_tui.sync.conversation_actions.ConversationActions`) are one short transaction on the calling
thread and never touch the network. See docs/engine.md (contract) and
docs/sync.md (rules).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any

from peewee import DatabaseError

from chat_tui.store import Cache
from chat_tui.sync.bus import EventBus
from chat_tui.sync.connectivity import Monitor
from chat_tui.sync.conversation_actions import ConversationActions
from chat_tui.sync.drain import Drain
from chat_tui.sync.events import ConnectivityState, EngineProblem, Event
from chat_tui.sync.gate import Gate
from chat_tui.sync.headless import SyncReport, run_once
from chat_tui.sync.lock import AnotherEngineRunning, EngineLock
from chat_tui.sync.matrix_side import CacheIds, MatrixAccount
from chat_tui.sync.puller import Puller
from chat_tui.sync.retention import run_retention
from chat_tui.sync.user_actions import UserActions
from chat_tui.sync.worker import DbWorker

__all__ = ["AnotherEngineRunning", "Engine", "SyncReport"]

if TYPE_CHECKING:
    from chat_tui.api.backend import Backend
    from chat_tui.config import Account, Settings

log = logging.getLogger(__name__)

#: The tasks that use the network: stopped while working offline (sync rule C3).
NETWORK_TASKS = ("monitor", "drain", "puller")


class Engine(UserActions, ConversationActions, MatrixAccount):
    """Offline-first sync engine of one account.

    Args:
        store: the account's cache (not yet opened is fine).
        base_url: the server URL.
        token: the bearer token, or None (then the engine waits for a login: 401 pause).
        settings: tunables (:class:`chat_tui.config.Settings`).
        kind: the kind of server, ``"chat-tui"`` (API v1) or ``"matrix"`` (the Matrix
            client-server API, docs/sync.md "Matrix"; ``user_id`` is then the account's
            Matrix user id).
    """

    def __init__(self, store: Cache, base_url: str, token: str | None, settings: Settings,
                 *, kind: str = "chat-tui", user_id: str = ""):
        self.store = store
        self.base_url = base_url
        self.settings = settings
        self.kind = kind
        self._user_id = user_id
        self._token = token
        self._api: Backend | None = None
        self._matrix: CacheIds | None = None
        self._tasks: dict[str, asyncio.Task] = {}
        self._lock: EngineLock | None = None
        self._bus = EventBus(store)
        self._gate = Gate(self._bus, auth_paused=token is None)
        self._worker = DbWorker(self._gate, settings.backoff_base, settings.backoff_cap)

        def api() -> Backend | None:
            return self._api

        self._monitor = Monitor(self._gate, api, settings)
        self._puller = Puller(store, self._worker, self._gate, self._monitor, self._bus, api,
                              settings)
        self._drain = Drain(store, self._worker, self._gate, self._monitor, self._bus, api,
                            settings, self._puller.schedule)
        self._gate.on_online = self._drain.poke

    @classmethod
    def for_account(cls, account: Account, settings: Settings) -> Engine:
        """The engine of a saved account: its cache file (``account.db_path``) and its
        token (keyring or 0600 file). Does no I/O on the database."""
        from chat_tui.config import load_token

        store = Cache(account.db_path, account.username, user_id=account.user_id,
                      server_url=account.server_url)
        return cls(store, account.server_url, load_token(account), settings,
                   kind=account.kind, user_id=account.user_id)

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event from now on, on the engine's event loop.
        Returns a function that unsubscribes. A callback that raises is logged and kept."""
        return self._bus.subscribe(callback)

    # ------------------------------------------------------------------ state

    @property
    def connectivity(self) -> ConnectivityState:
        """``online``, ``offline`` or ``connecting`` (``offline`` while working offline)."""
        return self._gate.connectivity

    @property
    def work_offline(self) -> bool:
        """True while the "work offline" switch is on (no network use at all)."""
        return self._gate.work_offline

    @property
    def auth_paused(self) -> bool:
        """True after a 401 until :meth:`set_token` (outbox rule 3, 401)."""
        return self._gate.auth_paused

    @property
    def last_synced_at(self) -> datetime | None:
        """UTC time of the last applied sync response, or None."""
        return self.store.last_synced_at() if self.store.is_open else None

    def set_token(self, token: str) -> None:
        """Use a fresh token after a login; lifts the 401 pause."""
        self._token = token
        if self._api is not None:
            self._api.set_token(token)
        self._gate.resume_auth()
        self._drain.poke()

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Open (create or migrate) the cache on the worker thread. Idempotent.

        Raises:
            chat_tui.store.SchemaTooNew: the file comes from a newer chat-tui.
        """
        self._bus.bind()
        if not self.store.is_open:
            await self._worker.run(self.store.open)
            if self.store.recovery is not None:
                self._bus.emit(EngineProblem("cache", self.store.recovery.message,
                                             active=False))
        self.store.ensure_open()  # this thread's connection, pragmas applied

    async def start(self) -> None:
        """Take the account's engine lock (sync rule D5), open the cache, requeue
        ``sending`` rows (outbox rule 4) and start the drain, puller, connectivity and
        retention tasks on the running loop.

        Raises:
            AnotherEngineRunning: another process runs this account's engine.
            chat_tui.store.SchemaTooNew: the file comes from a newer chat-tui.
        """
        if self._lock is None:
            lock = EngineLock(self.store.path.with_name(self.store.path.name + ".lock"))
            lock.acquire()
            self._lock = lock
        try:
            await self.open()
        except BaseException:
            self._lock.release()
            self._lock = None
            raise
        db = self._worker.run
        await db(self.store.relax_durability)  # sync rule D1a
        requeued = await db(self.store.requeue_sending)
        if requeued:
            log.info("requeued %d action(s) left in 'sending'", requeued)
        if self._token is None:
            self._bus.emit(EngineProblem("auth", "not logged in"))
        elif await db(self.store.auth_failed):
            # A 401 is remembered across restarts, but a restart may follow a new login:
            # try again once; a 401 pauses again.
            await db(self.store.set_auth_failed, False)
        self._api = self._backend()
        if not self._gate.work_offline:  # set before start: no network until turned off (C3)
            self._spawn_network_tasks()
        self._tasks["retention"] = asyncio.create_task(
            run_retention(self.store, self._worker, self._bus, self.settings),
            name="chat-tui-retention")
        self._bus.emit_outbox()
        self._gate.publish_connectivity()

    @property
    def _started(self) -> bool:
        return "retention" in self._tasks

    def _spawn_network_tasks(self) -> None:
        runners: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            "monitor": self._monitor.run, "drain": self._drain.run, "puller": self._puller.run}
        for name in NETWORK_TASKS:
            task = self._tasks.get(name)
            if task is None or task.done():
                task = asyncio.create_task(runners[name](), name=f"chat-tui-{name}")
                task.add_done_callback(self._task_done)
                self._tasks[name] = task

    def _task_done(self, task: asyncio.Task) -> None:
        """A network task ended: log a crash and restart it after ``backoff_base`` seconds
        (a bug must not stop syncing)."""
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        log.error("%s crashed; restarting it", task.get_name(), exc_info=exc)
        name = task.get_name().removeprefix("chat-tui-")
        if self._tasks.get(name) is task:
            del self._tasks[name]
            loop = self._bus.loop
            if loop is not None and not loop.is_closed():
                loop.call_later(self.settings.backoff_base, self._spawn_network_tasks)

    async def _cancel(self, names: Sequence[str]) -> None:
        tasks = [self._tasks.pop(n) for n in names if n in self._tasks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def stop(self) -> None:
        """Cancel every task, put an interrupted send back to ``queued`` (it is re-sent with
        the same key), close the HTTP client and the database connections."""
        await self._cancel(list(self._tasks))
        self._bus.cancel_pending()
        if self.store.is_open:
            with contextlib.suppress(DatabaseError):
                await self._worker.run(self.store.requeue_sending)
        if self._api is not None:
            await self._api.aclose()
            self._api = None
        await self._worker.shutdown(self.store.close)
        self.store.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def set_work_offline(self, enabled: bool) -> None:
        """Sync rule C3: turn the "work offline" switch on (cancel requests in flight, use
        no network) or off (probe at once). Call on the engine's loop. Turned on before
        :meth:`start`, the engine starts without any network task (the app restores the
        switch kept in the cache this way)."""
        if enabled == self._gate.work_offline:
            return
        self._gate.set_work_offline(enabled)
        if self._bus.loop is not None and self._started:
            if enabled:
                for name in NETWORK_TASKS:
                    task = self._tasks.pop(name, None)
                    if task is not None:
                        task.cancel()
            else:
                self._gate.reconnect()
                self._spawn_network_tasks()
        self._gate.announce()

    # ------------------------------------------------------------------ sync on demand

    async def backfill(self, conversation_id: str) -> int:
        """Sync rule S5: fetch one older page (the newest gap first, else before the oldest
        cached message) and store it; returns how many messages were added (0 when nothing
        older exists, or while offline / working offline).

        Raises:
            chat_tui.api.ApiError: the server refused or could not be reached.
        """
        await self.open()
        return await self._puller.backfill(conversation_id)

    async def sync_once(self, max_wait: float = 30.0) -> SyncReport:
        """Headless ``chat-tui sync --once``: start, drain every due action, apply the
        server's changes, then stop (:func:`chat_tui.sync.headless.run_once`). Waits for a
        retry due within ``max_wait`` seconds; returns early when the server is unreachable
        or a 401 pauses everything."""
        self._puller.once = True
        return await run_once(self, self._gate, self._monitor, self._drain, self._puller,
                              max_wait)

    # ------------------------------------------------------------------ test hooks
    # The engine tests reach into the worker and the gate through these names.

    @property
    def _executor(self) -> ThreadPoolExecutor | None:
        """The database worker's executor (None before the first database hop)."""
        return self._worker.executor

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on the database worker thread."""
        return await self._worker.run(fn, *args)

    @property
    def _pause_until(self) -> float:
        """End of a 429 pause, epoch seconds (the gate's ``paused_until``)."""
        return self._gate.paused_until

    @_pause_until.setter
    def _pause_until(self, value: float) -> None:
        self._gate.paused_until = value

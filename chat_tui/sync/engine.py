"""The sync engine of one account: the façade the UI and the headless CLI act through.

It runs as asyncio tasks on the caller's event loop (Textual's, or ``asyncio.run`` in
``chat-tui sync``) and never imports Textual:

- the **drain** worker sends outbox actions (outbox rules 2-8),
- the **puller** applies ``/v1/sync`` long-poll responses (sync rules S1-S4),
- the **connectivity monitor** probes ``GET /v1/health`` (sync rules C1-C3),
- the **retention** task trims the cache at start and once a day (sync rule R1).

Big database work runs on one dedicated worker thread (``_db``); the user actions
(:meth:`Engine.send`, :meth:`Engine.edit`, ...) are one short transaction on the calling
thread and never touch the network. See docs/engine.md (contract) and docs/sync.md (rules).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from peewee import DatabaseError

from chat_tui.api import (
    ApiClient,
    CursorExpired,
    PermanentError,
    TransientError,
    Unauthorized,
)
from chat_tui.store import ApplyResult, OutboxAction, Store
from chat_tui.sync.events import (
    ConnectivityChanged,
    ConnectivityState,
    ConversationsChanged,
    EngineProblem,
    Event,
    MessagesChanged,
    OutboxChanged,
    SyncProgress,
)
from chat_tui.sync.lock import AnotherEngineRunning, EngineLock
from chat_tui.sync.retry import Schedule, retry_delay

#: Seconds between two looks at the outbox while the drain is idle: rows appended by
#: another process (``chat-tui send`` next to ``chat-tui sync``) go out within this
#: (sync rule D5).
OUTBOX_POLL_SECONDS = 1.0

#: Seconds over which the ``OutboxChanged`` events of a conversation draining back to back
#: are coalesced into one (:meth:`Engine._emit_outbox_soon`).
OUTBOX_EVENT_COALESCE = 0.05

__all__ = ["AnotherEngineRunning", "Engine", "SyncReport"]

if TYPE_CHECKING:
    from chat_tui.config import Account, Settings

log = logging.getLogger(__name__)


async def _wait_event(event: asyncio.Event, timeout: float) -> None:
    """Wait until ``event`` is set or ``timeout`` seconds pass. ``asyncio.timeout`` rather
    than ``asyncio.wait_for``: on Python 3.11, ``wait_for`` swallows a ``cancel()`` that
    arrives just as the event is set, and the cancelled worker then loops on forever
    (``Engine.stop`` hung on it)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()


@dataclass
class _InFlight:
    """What one conversation's send task answers for (outbox rule 4): ``action_id``, the
    action put back to ``queued`` when the task is interrupted (it moves to the next action
    once an acknowledgement marks that one ``sending``), and ``marked``, the last two
    actions it marked ``sending``, redrawn after an interruption."""

    action_id: int
    marked: list[OutboxAction] = field(default_factory=list)


@dataclass
class SyncReport:
    """Outcome of :meth:`Engine.sync_once`: ``reachable`` (the server answered),
    ``auth_failed`` (a 401 paused everything), ``synced`` (a sync response was applied),
    ``sent`` (actions acknowledged), and the outbox counts left."""

    reachable: bool = False
    auth_failed: bool = False
    synced: bool = False
    sent: int = 0
    counts: dict[str, int] = field(default_factory=dict)


class Engine:
    """Offline-first sync engine of one account.

    Args:
        store: the account's cache (not yet opened is fine).
        base_url: the server URL.
        token: the bearer token, or None (then the engine waits for a login: 401 pause).
        settings: tunables (:class:`chat_tui.config.Settings`).
    """

    def __init__(self, store: Store, base_url: str, token: str | None, settings: Settings):
        self.store = store
        self.base_url = base_url
        self.settings = settings
        self._token = token
        self._api: ApiClient | None = None
        self._subscribers: list[Callable[[Event], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None  # threading.get_ident() of the loop's thread
        self._executor: ThreadPoolExecutor | None = None
        self._tasks: dict[str, asyncio.Task] = {}
        self._state: ConnectivityState = "connecting"
        self._work_offline = False
        self._auth_paused = token is None
        self._db_paused: str | None = None
        self._pause_until = 0.0  # a 429 pauses the whole drain until then (epoch seconds)
        self._wake_drain: asyncio.Event | None = None
        self._probe_now: asyncio.Event | None = None
        self._changed: asyncio.Event | None = None  # online/offline/auth changes
        self._once = False
        self._sent = 0
        self._synced = 0
        probe_cap = min(settings.probe_cap, settings.backoff_cap)  # sync rule C2
        self._probe_schedule = Schedule(min(settings.backoff_base, probe_cap), probe_cap)
        self._pull_schedule = Schedule(settings.backoff_base, settings.backoff_cap)
        self._db_schedule = Schedule(settings.backoff_base, settings.backoff_cap)
        self._probes = 0
        self._lock: EngineLock | None = None
        self._outbox_timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ construction

    @classmethod
    def for_account(cls, account: Account, settings: Settings) -> Engine:
        """The engine of a saved account: its cache file (``account.db_path``) and its
        token (keyring or 0600 file). Does no I/O on the database."""
        from chat_tui.config import load_token

        store = Store(account.db_path, account.username, user_id=account.user_id,
                      server_url=account.server_url)
        return cls(store, account.server_url, load_token(account), settings)

    # ------------------------------------------------------------------ plumbing

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on the engine's database worker thread. When the awaiting task
        is cancelled before the worker started it, it never runs (see :meth:`_db_record`)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="chat-tui-db")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    async def _db_record(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Like :meth:`_db`, for what must be written once a request has an outcome (its
        acknowledgement, or the failure that moves its row out of ``sending``): it runs
        even when the awaiting task is cancelled meanwhile (work offline, stop), which then
        still raises ``CancelledError``. Without this, a write still queued behind other
        work on the worker was dropped by the cancel and the row stayed ``sending`` while
        the engine ran (outbox rule 4; soak run 7, docs/reliability.md)."""
        return await asyncio.shield(self._db(fn, *args))

    def _bind_loop(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._loop_thread = threading.get_ident()
            self._wake_drain = asyncio.Event()
            self._probe_now = asyncio.Event()
            self._changed = asyncio.Event()

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event from now on, on the engine's event loop.
        Returns a function that unsubscribes. A callback that raises is logged and kept."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def _dispatch(self, event: Event) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # a broken subscriber must not stop the engine
                log.exception("event subscriber failed on %s", type(event).__name__)

    def _emit(self, event: Event) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            # On the loop's own thread (the drain: ~3 events per message): same order, no
            # self-pipe write to wake a loop that is already running.
            loop.call_soon(self._dispatch, event)
        else:
            loop.call_soon_threadsafe(self._dispatch, event)

    def _emit_result(self, res: ApplyResult) -> None:
        for cid, mids in res.messages.items():
            self._emit(MessagesChanged(cid, tuple(sorted(mids))))
        if res.conversations:
            self._emit(ConversationsChanged(tuple(sorted(res.conversations))))

    def _emit_outbox(self) -> None:
        if self._loop is None:
            return
        try:
            self._emit(OutboxChanged(self.store.outbox_counts()))
        except DatabaseError:
            log.exception("outbox counts unavailable")

    def _emit_outbox_soon(self) -> None:
        """``OutboxChanged`` at most every :data:`OUTBOX_EVENT_COALESCE` seconds while a
        conversation drains back to back: the counts are read on the event loop thread (half
        a millisecond each), once per message otherwise. The counts are read when it fires;
        the drain's last change is always published at once (:meth:`_emit_outbox`)."""
        loop = self._loop
        if loop is None or self._outbox_timer is not None:
            return

        def fire() -> None:
            self._outbox_timer = None
            self._emit_outbox()

        self._outbox_timer = loop.call_later(OUTBOX_EVENT_COALESCE, fire)

    def _emit_connectivity(self) -> None:
        last = None
        with contextlib.suppress(DatabaseError):
            last = self.store.last_synced_at() if self.store.is_open else None
        self._emit(ConnectivityChanged(self.connectivity, self._work_offline, last))

    def _poke(self) -> None:
        if self._wake_drain is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake_drain.set)

    # ------------------------------------------------------------------ state

    @property
    def connectivity(self) -> ConnectivityState:
        """``online``, ``offline`` or ``connecting`` (``offline`` while working offline)."""
        return "offline" if self._work_offline else self._state

    @property
    def work_offline(self) -> bool:
        """True while the "work offline" switch is on (no network use at all)."""
        return self._work_offline

    @property
    def auth_paused(self) -> bool:
        """True after a 401 until :meth:`set_token` (outbox rule 3, 401)."""
        return self._auth_paused

    def _set_state(self, state: ConnectivityState) -> None:
        if state != self._state:
            log.info("connectivity %s -> %s", self._state, state)
            self._state = state
            self._emit_connectivity()
            if self._changed is not None:
                self._changed.set()
            if state == "online":
                self._poke()

    def _report_unreachable(self) -> None:
        """Sync rule C1: a connection-level failure flips to offline and probes at once."""
        self._set_state("offline")
        if self._probe_now is not None:
            self._probe_now.set()

    def _ready(self) -> bool:
        # A database pause is not part of it: the drain and the puller retry after a
        # backoff themselves (:meth:`_db_failed`) and lift it when a write succeeds.
        return self._state == "online" and not self._work_offline and not self._auth_paused

    async def _wait_ready(self) -> None:
        while not self._ready():
            assert self._changed is not None
            self._changed.clear()
            await self._changed.wait()

    def _pause_auth(self, reason: str) -> None:
        if not self._auth_paused:
            self._auth_paused = True
            with contextlib.suppress(DatabaseError):
                self.store.set_auth_failed(True)
            self._emit(EngineProblem("auth", f"login required: {reason}"))

    def set_token(self, token: str) -> None:
        """Use a fresh token after a login; lifts the 401 pause."""
        self._token = token
        if self._api is not None:
            self._api.set_token(token)
        self._auth_paused = False
        with contextlib.suppress(DatabaseError):
            if self.store.is_open:
                self.store.set_auth_failed(False)
        self._emit(EngineProblem("auth", "logged in", active=False))
        if self._changed is not None:
            self._changed.set()
        self._poke()

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Open (create or migrate) the cache on the worker thread. Idempotent.

        Raises:
            chat_tui.store.SchemaTooNew: the file comes from a newer chat-tui.
        """
        self._bind_loop()
        if not self.store.is_open:
            await self._db(self.store.open)
            if self.store.recovery is not None:
                self._emit(EngineProblem("cache", self.store.recovery.message, active=False))
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
        await self._db(self.store.relax_durability)  # sync rule D1a
        requeued = await self._db(self.store.requeue_sending)
        if requeued:
            log.info("requeued %d action(s) left in 'sending'", requeued)
        if self._token is None:
            self._emit(EngineProblem("auth", "not logged in"))
        elif await self._db(self.store.auth_failed):
            # A 401 is remembered across restarts, but a restart may follow a new login:
            # try again once; a 401 pauses again.
            await self._db(self.store.set_auth_failed, False)
        self._api = ApiClient(self.base_url, self._token, timeout=self.settings.request_timeout,
                              probe_timeout=self.settings.probe_timeout)
        if not self._work_offline:  # set before start: no network until turned off (C3)
            self._spawn_network_tasks()
        self._tasks["retention"] = asyncio.create_task(self._retention_loop(),
                                                       name="chat-tui-retention")
        self._emit_outbox()
        self._emit_connectivity()

    def _spawn_network_tasks(self) -> None:
        for name, coro in (("monitor", self._monitor_loop), ("drain", self._drain_loop),
                           ("puller", self._pull_loop)):
            task = self._tasks.get(name)
            if task is None or task.done():
                task = asyncio.create_task(coro(), name=f"chat-tui-{name}")
                task.add_done_callback(self._task_done)
                self._tasks[name] = task

    def _task_done(self, task: asyncio.Task) -> None:
        """A worker task ended: log a crash and restart it (a bug must not stop syncing)."""
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        log.error("%s crashed; restarting it", task.get_name(), exc_info=exc)
        name = task.get_name().removeprefix("chat-tui-")
        if self._tasks.get(name) is task:
            del self._tasks[name]
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_later(self.settings.backoff_base, self._spawn_network_tasks)

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
        if self._outbox_timer is not None:
            self._outbox_timer.cancel()
            self._outbox_timer = None
        if self.store.is_open:
            with contextlib.suppress(DatabaseError):
                await self._db(self.store.requeue_sending)
        if self._api is not None:
            await self._api.aclose()
            self._api = None
        if self._executor is not None:
            with contextlib.suppress(Exception):
                await self._db(self.store.close)
            self._executor.shutdown(wait=True)
            self._executor = None
        self.store.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # ------------------------------------------------------------------ user actions

    def _after_action(self, res: ApplyResult | None = None) -> None:
        if res is not None:
            self._emit_result(res)
        self._emit_outbox()
        self._poke()

    def send(self, conversation_id: str, body: str) -> str:
        """Queue a message (outbox rule 1): one local transaction inserts the local echo,
        its outbox row keyed by a fresh UUID and clears the draft. Returns the message id.

        Raises:
            StoreError: unknown conversation, empty body, body over 65,536 bytes.
        """
        self.store.ensure_open()
        mid = self.store.enqueue_send(conversation_id, body)
        res = ApplyResult()
        res.touch(conversation_id, mid)
        self._after_action(res)
        return mid

    def edit(self, message_id: str, body: str) -> None:
        """Edit my message (outbox rule 7). Raises StoreError (not mine, deleted, empty)."""
        self.store.ensure_open()
        msg = self.store.get_message(message_id)
        self.store.enqueue_edit(message_id, body)
        res = ApplyResult()
        if msg is not None:
            res.touch(msg.conversation_id, message_id)
        self._after_action(res)

    def delete(self, message_id: str) -> None:
        """Delete my message (outbox rule 7). Raises StoreError when it is not mine."""
        self.store.ensure_open()
        msg = self.store.get_message(message_id)
        self.store.enqueue_delete(message_id)
        res = ApplyResult()
        if msg is not None:
            res.touch(msg.conversation_id, message_id)
        self._after_action(res)

    def _touching(self, message_id: str, action: Callable[[], Any]) -> Any:
        self.store.ensure_open()
        msg = self.store.get_message(message_id)
        out = action()
        res = ApplyResult()
        if msg is not None:
            res.touch(msg.conversation_id, message_id)
        self._after_action(res)
        return out

    def retry(self, message_id: str) -> None:
        """A failed action of the message goes back to ``queued`` (outbox rule 3).
        Raises StoreError when nothing failed."""
        self._touching(message_id, lambda: self.store.retry(message_id))

    def retry_action(self, outbox_id: int) -> None:
        """A failed action (for example a conversation create) goes back to ``queued``."""
        self.store.ensure_open()
        self.store.retry_action(outbox_id)
        self._after_action()

    def discard(self, message_id: str) -> str:
        """Remove a failed, expired or queued action of the message; its text goes back into
        the draft and is returned (outbox rule 3). Raises StoreError when in flight."""
        return self._touching(message_id, lambda: self.store.discard(message_id))

    def send_anyway(self, message_id: str) -> None:
        """An expired message goes back to ``queued`` (outbox rule 6)."""
        self._touching(message_id, lambda: self.store.send_anyway(message_id))

    def create_conversation(self, title: str, members: Sequence[str] = (),
                            assistant: bool = False) -> str:
        """Create a conversation locally (works offline) and queue its create on the server
        (outbox rule 2). Returns its new id. Raises StoreError on a bad title."""
        self.store.ensure_open()
        cid = self.store.enqueue_create_conversation(str(uuid.uuid4()), title, members,
                                                     assistant)
        res = ApplyResult()
        res.touch(cid)
        self._after_action(res)
        return cid

    def mark_read(self, conversation_id: str, message_id: str) -> None:
        """Move my read marker forward (locally at once; queued for the server)."""
        self.store.ensure_open()
        if self.store.enqueue_read(conversation_id, message_id):
            res = ApplyResult()
            res.touch(conversation_id)
            self._after_action(res)

    def set_work_offline(self, enabled: bool) -> None:
        """Sync rule C3: turn the "work offline" switch on (cancel requests in flight, use
        no network) or off (probe at once). Call on the engine's loop. Turned on before
        :meth:`start`, the engine starts without any network task (the app restores the
        switch kept in the cache this way)."""
        if enabled == self._work_offline:
            return
        self._work_offline = enabled
        if self._loop is not None and "retention" in self._tasks:  # started
            if enabled:
                for name in ("drain", "puller", "monitor"):
                    task = self._tasks.pop(name, None)
                    if task is not None:
                        task.cancel()
            else:
                self._state = "connecting"
                self._spawn_network_tasks()
        if self._changed is not None:
            self._changed.set()
        self._emit_connectivity()

    # ------------------------------------------------------------------ connectivity

    async def _probe(self) -> bool:
        assert self._api is not None
        self._probes += 1
        try:
            ok = await self._api.health()
        except (TransientError, PermanentError, Unauthorized, CursorExpired) as exc:
            log.info("health probe failed: %s", exc.reason)
            ok = False
        return ok

    def _probe_soon(self) -> None:
        """Sync rule C1: any failed request (connection error, timeout, 5xx, 429) makes the
        monitor probe ``GET /v1/health`` at once; only a failed probe means offline."""
        if self._probe_now is not None:
            self._probe_now.set()

    async def _monitor_loop(self) -> None:
        """Sync rules C1-C2: probe health at start, with backoff while offline, and at once
        after any failed request (:meth:`_probe_soon`, :meth:`_report_unreachable`)."""
        assert self._probe_now is not None
        while True:
            if self._state == "online":
                self._probe_now.clear()
                await self._probe_now.wait()  # a request failed: probe at once
            if await self._probe():
                self._probe_schedule.reset()
                self._set_state("online")
                continue
            self._set_state("offline")
            delay = self._probe_schedule.next_delay()
            self._probe_now.clear()
            await _wait_event(self._probe_now, delay)

    # ------------------------------------------------------------------ drain

    async def _drain_loop(self) -> None:
        """Outbox rules 2-8: the one drain worker of the account. Each conversation's head
        action is sent by its own task (strictly in outbox order within the conversation,
        one request in flight), so a slow or failing conversation never holds the others;
        stop on first failure (a failed head is not returned by ``next_actions``)."""
        assert self._wake_drain is not None
        inflight: dict[str, asyncio.Task] = {}
        wake = self._wake_drain

        def finished(cid: str, current: _InFlight, task: asyncio.Task) -> None:
            if inflight.get(cid) is task:
                del inflight[cid]
            if not task.cancelled() and task.exception() is not None:
                log.error("sending outbox action %d crashed", current.action_id,
                          exc_info=task.exception())
                self._requeue_interrupted(current)
            wake.set()

        try:
            while True:
                await self._wait_ready()
                wait_for = max(0.0, self._pause_until - time.time())
                if wait_for > 0:
                    await asyncio.sleep(wait_for)
                    continue
                # Clear before reading the outbox: a send committed (or a conversation's
                # request finished) after this point sets it again, so no wake-up is lost.
                wake.clear()
                try:
                    expired, actions, due = await self._db(self._due_actions)
                    if expired:
                        # Outbox rule 6: the expired messages change state, so the UI must
                        # redraw them (it re-reads a message only on MessagesChanged).
                        for cid, mids in expired.items():
                            if cid:
                                self._emit(MessagesChanged(cid, tuple(mids)))
                        self._emit_outbox()
                except DatabaseError as exc:
                    await self._db_failed(exc)
                    continue
                for action in actions:
                    if action.conversation_id in inflight:
                        continue  # one request in flight per conversation
                    if not self._ready() or time.time() < self._pause_until:
                        break
                    current = _InFlight(action.id)
                    task = asyncio.create_task(self._send_one(action, current),
                                               name=f"chat-tui-send-{action.id}")
                    inflight[action.conversation_id] = task
                    task.add_done_callback(
                        lambda t, cid=action.conversation_id, cur=current:
                        finished(cid, cur, t))
                timeout = OUTBOX_POLL_SECONDS
                if due is not None:
                    timeout = min(OUTBOX_POLL_SECONDS, max(0.0, due - time.time()))
                await _wait_event(wake, timeout)
        finally:
            # Work offline or stop: interrupt every conversation's request (each puts its
            # action back to 'queued', outbox rule 4) before this worker ends.
            tasks = list(inflight.values())
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def _due_actions(self) -> tuple[dict[str, list[str]], list[OutboxAction], float | None]:
        """On the worker, in one hop: expire old sends (outbox rule 6), then the due heads
        (rules 2-3), and when none is due the epoch seconds the next one will be (or None).
        One hop instead of two per message drained (benchmarks/NOTES.md).

        The expired messages come back grouped by conversation id (``{cid: [message id]}``)
        so the drain can publish ``MessagesChanged`` for them (``""`` when the echo is gone)."""
        expired: dict[str, list[str]] = {}
        for mid in self.store.expire_old(self.settings.max_queue_age):
            msg = self.store.get_message(mid)
            expired.setdefault(msg.conversation_id if msg is not None else "", []).append(mid)
        actions = self.store.next_actions()
        return expired, actions, None if actions else self.store.next_due_at()

    def _pause_db(self, exc: Exception) -> None:
        if self._db_paused is None:
            log.error("local database error, drain paused: %s", exc)
            self._emit(EngineProblem("database", f"local database error: {exc}"))
        self._db_paused = str(exc)

    async def _db_failed(self, exc: Exception) -> None:
        """Outbox rule 3 (local database error): pause (``EngineProblem("database")`` once),
        then wait a backoff before the caller tries again; nothing is marked failed."""
        self._pause_db(exc)
        await asyncio.sleep(self._db_schedule.next_delay())

    def _db_ok(self) -> None:
        """A write succeeded: lift a database pause (``EngineProblem("database",
        active=False)``)."""
        if self._db_paused is not None:
            log.info("local database writable again, drain resumed")
            self._db_paused = None
            self._db_schedule.reset()
            self._emit(EngineProblem("database", "local database writable again",
                                     active=False))

    def _may_chain(self) -> bool:
        """Whether a conversation's task may mark and send its next action right after an
        acknowledgement: online, not working offline, not paused (401, 429)."""
        return self._ready() and time.time() >= self._pause_until

    def _ack_and_next(self, ack: Callable[[int, Any], ApplyResult], action: OutboxAction,
                      answer: Any, current: _InFlight,
                      ) -> tuple[ApplyResult, OutboxAction | None]:
        """On the worker, in one transaction (outbox rules 2 and 4): commit the server's
        answer to ``action`` with ``ack`` and, when the drain may go on
        (:meth:`_may_chain`), mark the conversation's next action ``sending``. Returns the
        acknowledgement's result and that next action (None when none is due). One hop and
        one commit per message instead of three hops and two commits (benchmarks/NOTES.md).
        ``current.action_id`` becomes the next action's id once committed, so an interruption
        puts that one back to ``queued`` (:meth:`_requeue_interrupted`)."""
        chain = self._may_chain()  # read on the worker: a plain attribute read
        with self.store.batch():
            res = ack(action.id, answer)
            nxt = (self.store.mark_next_sending(action.conversation_id,
                                                self.settings.max_queue_age)
                   if chain else None)
        if nxt is not None:
            current.action_id = nxt.id
        return res, nxt

    async def _perform(self, action: OutboxAction, current: _InFlight,
                       ) -> tuple[ApplyResult, OutboxAction | None]:
        """Send ``action`` (one request) and record the server's answer with the store's
        acknowledgement for its kind (:meth:`_ack_and_next`). Raises what the API client
        raises (``TransientError``, ``PermanentError``, ``Unauthorized``...), and
        ``PermanentError`` for an unknown kind."""
        api = self._api
        assert api is not None
        p = action.payload
        ack: Callable[[int, Any], ApplyResult] = self.store.ack_message
        if action.kind == "create_conversation":
            answer: Any = await api.put_conversation(
                action.conversation_id, p["title"], list(p.get("members", [])),
                bool(p.get("assistant", False)))
            ack = self.store.ack_conversation
        elif action.kind == "send":
            answer = await api.put_message(action.conversation_id, action.message_id,
                                           p["body"])
        elif action.kind == "edit":
            answer = await api.patch_message(action.message_id, p["body"],
                                             p.get("base_version"))
        elif action.kind == "delete":
            answer = await api.delete_message(action.message_id)
        elif action.kind == "read":
            answer = await api.mark_read(action.conversation_id, p["message_id"])
            ack = self.store.ack_read
        else:
            raise PermanentError(f"unknown outbox action {action.kind!r}")
        return await self._db_record(self._ack_and_next, ack, action, answer, current)

    def _requeue_interrupted(self, current: _InFlight) -> None:
        """Outbox rule 4 for a cancelled drain (work offline, stop): put the action back to
        ``queued`` on the database worker thread. Submitted to the same single-thread
        executor, so it runs *after* a ``mark_sending`` the worker had already started (a
        cancelled await does not stop the thread; one not yet started is dropped) and
        after an acknowledgement or failure record (those are shielded, :meth:`_db_record`):
        the row can never be left in ``sending`` while the engine runs (found by the soak,
        docs/reliability.md). ``current.action_id`` is read there, after that hop: an ack that
        committed and marked the conversation's next action sending has made it that
        one (:meth:`_ack_and_next`)."""
        if self._executor is None:
            return

        def requeue() -> None:
            with contextlib.suppress(DatabaseError):
                self.store.record_interrupted(current.action_id, "interrupted")
            # The interrupted task published nothing for what the worker wrote after the
            # cancel (a shielded ack, this requeue): redraw the actions it last marked.
            self._redraw(current.marked)

        with contextlib.suppress(RuntimeError):  # executor already shut down
            self._executor.submit(requeue)

    def _redraw(self, actions: Sequence[OutboxAction]) -> None:
        """Publish what ``actions`` may have changed in the cache: ``MessagesChanged`` for
        their messages, ``ConversationsChanged`` for a conversation they create, then
        ``OutboxChanged``. Safe from the worker thread (:meth:`_emit`)."""
        for action in actions:
            if action.message_id:
                self._emit(MessagesChanged(action.conversation_id, (action.message_id,)))
            elif action.kind == "create_conversation":
                self._emit(ConversationsChanged((action.conversation_id,)))
        self._emit_outbox()

    async def _send_one(self, action: OutboxAction,
                        current: _InFlight | None = None) -> None:
        """Outbox rules 2-8 for one conversation: mark its head ``sending``, send it, and
        while each answer is acknowledged go on with the next action, marked in the same
        transaction as the acknowledgement (:meth:`_ack_and_next`). ``current.action_id`` is
        the action this task answers for (requeued when it is interrupted)."""
        current = _InFlight(action.id) if current is None else current
        try:
            try:
                marked = await self._db(self.store.mark_sending, action.id)
            except DatabaseError as exc:
                await self._db_failed(exc)
                return
            if marked is None:
                return
            self._db_ok()
            chained = False
            while marked is not None:
                if chained and not self._may_chain():
                    # A 429 elsewhere, offline or work offline came after the ack marked it:
                    # not sent, so the attempt does not count (rule 5); the drain sends it
                    # when it may (outbox rule 2; review finding).
                    await self._db_record(self.store.record_unreached, marked.id,
                                          "not sent: paused")
                    self._redraw([marked])
                    return
                marked = await self._send_marked(marked, current, chained)
                chained = True
        except asyncio.CancelledError:
            # Work offline or stop, wherever this task was (marking, waiting for the answer,
            # recording it): the action it answers for goes back to 'queued' and is re-sent
            # with the same key later (outbox rule 4).
            self._requeue_interrupted(current)
            raise

    async def _send_marked(self, marked: OutboxAction, current: _InFlight,
                           chained: bool = False) -> OutboxAction | None:
        """Send one action already marked ``sending`` and record the outcome; returns the
        conversation's next action when the acknowledgement marked it ``sending``.
        ``chained``: marked by the previous action's acknowledgement; its ``OutboxChanged``
        is then coalesced (:meth:`_emit_outbox_soon`)."""
        current.marked = [*current.marked[-1:], marked]
        if chained:
            self._emit_outbox_soon()
        else:
            self._emit_outbox()
        if marked.message_id:
            self._emit(MessagesChanged(marked.conversation_id, (marked.message_id,)))
        try:
            res, nxt = await self._perform(marked, current)
        except TransientError as exc:
            await self._on_transient(marked, exc)
        except Unauthorized as exc:
            await self._db_record(self.store.record_paused, marked.id, exc.reason)
            self._pause_auth(exc.reason)
        except (PermanentError, CursorExpired) as exc:
            if marked.kind == "delete" and exc.status == 404 and marked.message_id:
                # Outbox rule 7: the server never had it (a send deleted after an attempt
                # whose fate was unknown): nothing left to delete.
                self._emit_result(await self._db_record(self.store.ack_nothing_to_delete,
                                                        marked.id, marked.message_id))
            elif marked.kind == "read":
                # A read marker the server refuses is dropped: it must not block messages.
                await self._db_record(self.store.drop_action, marked.id)
            else:
                reason = f"{exc.status} {exc.code}: {exc.reason}".strip()
                await self._db_record(self.store.record_permanent, marked.id, reason)
        except DatabaseError as exc:
            # The server answered but we could not commit it: back to 'queued' when the
            # database lets us (else it stays 'sending' until the next start); re-sent with
            # the same key later, never marked failed.
            with contextlib.suppress(DatabaseError):
                await self._db_record(self.store.record_paused, marked.id,
                                      "local database error")
            await self._db_failed(exc)
        else:
            self._db_ok()
            self._sent += 1
            self._pull_schedule.reset()
            self._emit_result(res)
            if nxt is None:
                self._emit_outbox()
            return nxt  # its OutboxChanged (now sending) comes as it is sent
        self._redraw([marked])
        return None

    async def _on_transient(self, action: OutboxAction, exc: TransientError) -> None:
        """Outbox rules 3 and 5 for a transient failure."""
        if not exc.reached_server:
            await self._db_record(self.store.record_unreached, action.id, exc.reason)
            self._report_unreachable()
            return
        if exc.retry_after is not None:
            delay = exc.retry_after
            if exc.status == 429:
                self._pause_until = time.time() + delay
        else:
            delay = retry_delay(action.transient_failures, self.settings.backoff_base,
                                self.settings.backoff_cap)
        state = await self._db_record(self.store.record_transient, action.id, delay,
                               f"{exc.status or 'network'}: {exc.reason}",
                               self.settings.max_attempts)
        log.info("action %d transient failure (%s), %s, next in %.2fs", action.id,
                 exc.reason, state, delay)
        if exc.connection_level:
            self._report_unreachable()
        else:
            self._probe_soon()

    # ------------------------------------------------------------------ puller

    async def _pull_loop(self) -> None:
        """Sync rules S1-S4: long-poll ``/v1/sync``; apply each response with its cursor
        in one transaction on the worker thread."""
        while True:
            await self._wait_ready()
            try:
                await self._pull_once(self.settings.poll_timeout if not self._once else 0)
            except DatabaseError as exc:
                await self._db_failed(exc)
                continue
            if self._once:
                await asyncio.sleep(0.2)

    async def _pull_once(self, timeout: int) -> bool:
        """One ``/v1/sync`` request and its application. Returns True when applied."""
        api = self._api
        assert api is not None
        cursor = await self._db(self.store.get_cursor)
        phase = "initial" if cursor is None else "delta"
        if cursor is None:
            self._emit(SyncProgress("initial", 0, None))
        try:
            response = await api.sync(cursor, 0 if cursor is None else timeout)
        except CursorExpired:
            log.warning("sync cursor expired: initial sync (the outbox is kept)")
            await self._db(self.store.reset_cache)
            self._emit(ConversationsChanged(()))
            return False
        except Unauthorized as exc:
            self._pause_auth(exc.reason)
            return False
        except TransientError as exc:
            if exc.connection_level:
                self._report_unreachable()
            else:
                self._probe_soon()
                await asyncio.sleep(exc.retry_after if exc.retry_after is not None
                                    else self._pull_schedule.next_delay())
            return False
        except PermanentError as exc:
            log.error("sync refused: %s", exc.reason)
            await asyncio.sleep(self._pull_schedule.next_delay())
            return False
        total = len(response.conversations)
        if total:
            self._emit(SyncProgress(phase, 0, total))  # type: ignore[arg-type]
        res = await self._db(self.store.apply_sync, response)
        self._db_ok()
        self._synced += 1
        self._pull_schedule.reset()
        self._set_state("online")
        self._emit_result(res)
        if total:
            self._emit(SyncProgress(phase, total, total))  # type: ignore[arg-type]
        self._emit(SyncProgress("idle", 0, None))
        self._emit_connectivity()
        return True

    # ------------------------------------------------------------------ backfill, retention

    async def backfill(self, conversation_id: str) -> int:
        """Sync rule S5: fetch one older page (the newest gap first, else before the oldest
        cached message) and store it; returns how many messages were added (0 when nothing
        older exists, or while offline / working offline).

        Raises:
            chat_tui.api.ApiError: the server refused or could not be reached.
        """
        await self.open()
        if self._work_offline or self._api is None:
            return 0
        target = await self._db(self.store.backfill_target, conversation_id)
        if target is None:
            return 0
        before, gap_id = target
        self._emit(SyncProgress("backfill", 0, None))
        try:
            page = await self._api.messages(conversation_id, before, self.settings.page_size)
        except TransientError as exc:
            if exc.connection_level:
                self._report_unreachable()
            else:
                self._probe_soon()
            raise
        res = await self._db(self.store.apply_page, conversation_id, page, gap_id)
        self._emit_result(res)
        self._emit(SyncProgress("backfill", res.added, res.added))
        self._emit(SyncProgress("idle", 0, None))
        return res.added

    async def _retention_loop(self) -> None:
        """Sync rule R1: trim the cache at start and every ``retention_interval`` seconds."""
        while True:
            try:
                deleted = await self._db(self.store.run_retention, self.settings.retention_days)
                if deleted:
                    log.info("retention deleted %d cached message(s)", deleted)
                    self._emit(ConversationsChanged(()))
            except DatabaseError as exc:
                log.error("retention failed: %s", exc)
            await asyncio.sleep(self.settings.retention_interval)

    # ------------------------------------------------------------------ headless

    async def sync_once(self, max_wait: float = 30.0) -> SyncReport:
        """Headless ``chat-tui sync --once``: start, drain every due action, apply the
        server's changes, then stop. Waits for a retry due within ``max_wait`` seconds;
        returns early when the server is unreachable or a 401 pauses everything."""
        self._once = True
        report = SyncReport()
        await self.start()
        deadline = time.monotonic() + max_wait
        try:
            while time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                if self._auth_paused:
                    report.auth_failed = True
                    break
                if self._state == "offline" and self._probes >= 1:
                    break
                if self._db_paused is not None:
                    break
                if self._state != "online" or self._synced == 0:
                    continue
                counts = self.store.outbox_counts()
                due = self.store.next_due_at()
                if counts["sending"] == 0 and (due is None or due > time.time() + max_wait):
                    synced_before = self._synced
                    while self._synced == synced_before and time.monotonic() < deadline:
                        await asyncio.sleep(0.05)
                    break
        finally:
            report.reachable = self._probes > 0 and self._state == "online"
            report.synced = self._synced > 0
            report.sent = self._sent
            await self.stop()
            self.store.ensure_open()
            report.counts = self.store.outbox_counts()
            self.store.close()
        return report

    @property
    def last_synced_at(self) -> datetime | None:
        """UTC time of the last applied sync response, or None."""
        return self.store.last_synced_at() if self.store.is_open else None

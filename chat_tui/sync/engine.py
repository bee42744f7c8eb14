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

The user actions (:meth:`Engine.send`, :meth:`Engine.edit`, ...) are one short transaction
on the calling thread and never touch the network. See docs/engine.md (contract) and
docs/sync.md (rules).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any

from peewee import DatabaseError

from chat_tui.store import ApplyResult, Cache
from chat_tui.sync.bus import EventBus
from chat_tui.sync.connectivity import Monitor
from chat_tui.sync.drain import Drain
from chat_tui.sync.events import ConnectivityState, EngineProblem, Event
from chat_tui.sync.gate import Gate
from chat_tui.sync.headless import SyncReport, run_once
from chat_tui.sync.lock import AnotherEngineRunning, EngineLock
from chat_tui.sync.matrix_side import CacheIds, MatrixAccount
from chat_tui.sync.puller import Puller
from chat_tui.sync.retention import run_retention
from chat_tui.sync.worker import DbWorker

__all__ = ["AnotherEngineRunning", "Engine", "SyncReport"]

if TYPE_CHECKING:
    from chat_tui.api.backend import Backend
    from chat_tui.config import Account, Settings

log = logging.getLogger(__name__)

#: The tasks that use the network: stopped while working offline (sync rule C3).
NETWORK_TASKS = ("monitor", "drain", "puller")


class Engine(MatrixAccount):
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

    # ------------------------------------------------------------------ user actions

    def _after_action(self, res: ApplyResult | None = None) -> None:
        if res is not None:
            self._bus.emit_result(res)
        self._bus.emit_outbox()
        self._drain.poke()

    def _touching(self, message_id: str, action: Callable[[], Any]) -> Any:
        """Run ``action()`` (one store transaction about ``message_id``), then publish the
        message's change and wake the drain; returns what ``action`` returns."""
        self.store.ensure_open()
        msg = self.store.get_message(message_id)
        out = action()
        res = ApplyResult()
        if msg is not None:
            res.touch(msg.conversation_id, message_id)
        self._after_action(res)
        return out

    def send(self, conversation_id: str, body: str) -> str:
        """Queue a message (outbox rule 1): one local transaction inserts the local echo,
        its outbox row keyed by a fresh UUID and clears the draft. Returns the message id.

        Raises:
            StoreError: unknown conversation, empty body, body over 65,536 bytes, an
            encrypted Matrix room (rule M3).
        """
        self.store.ensure_open()
        self._refuse_encrypted(conversation_id)
        mid = self.store.enqueue_send(conversation_id, body)
        res = ApplyResult()
        res.touch(conversation_id, mid)
        self._after_action(res)
        return mid

    def edit(self, message_id: str, body: str) -> None:
        """Edit my message (outbox rule 7). Raises StoreError (not mine, deleted, empty)."""
        self._touching(message_id, lambda: self.store.enqueue_edit(message_id, body))

    def delete(self, message_id: str) -> None:
        """Delete my message (outbox rule 7). Raises StoreError when it is not mine."""
        self._touching(message_id, lambda: self.store.enqueue_delete(message_id))

    def retry(self, message_id: str) -> None:
        """A failed action of the message goes back to ``queued`` (outbox rule 3).
        Raises StoreError when nothing failed."""
        self._touching(message_id, lambda: self.store.retry(message_id))

    def retry_action(self, outbox_id: int) -> None:
        """Sync rule 3n: the failed or expired action ``outbox_id``, whatever its kind (a
        conversation create, a send, an edit, ...), goes back to ``queued``
        (``Cache.retry_action``) and the drain wakes.

        Raises:
            StoreError: no such action, or it is neither failed nor expired.
        """
        self.store.ensure_open()
        row = self.store.outbox_row(outbox_id)
        self.store.retry_action(outbox_id)
        res = ApplyResult()
        if row is not None:
            res.touch(row["conversation_id"], *([row["message_id"]] if row["message_id"]
                                                and row["kind"] != "read" else []))
        self._after_action(res)

    def outbox_list(self) -> list:
        """Every outbox action with its id, kind, state and reason, in outbox order
        (``Cache.outbox_list``: list of ``OutboxProblem``; sync rule 3n)."""
        self.store.ensure_open()
        return self.store.outbox_list()

    def discard_plan(self, outbox_id: int) -> list[str]:
        """What :meth:`discard_action` of ``outbox_id`` would remove, one readable line each
        (``Cache.discard_plan``), to show before asking. Raises StoreError as it does."""
        self.store.ensure_open()
        return self.store.discard_plan(outbox_id)

    def discard_action(self, outbox_id: int) -> str:
        """Sync rule 3n: discard the action ``outbox_id`` whatever its kind
        (``Cache.discard_action``: a discarded conversation create removes the local
        conversation and what is queued behind it). Returns the text that goes back to the
        user: a message's text (also back in its draft), or for a create the text of its
        unsent messages and its draft, which the caller shows; "" for a read marker.

        Raises:
            StoreError: no such action, or it is being sent right now.
        """
        self.store.ensure_open()
        row = self.store.outbox_row(outbox_id)
        text = self.store.discard_action(outbox_id)
        res = ApplyResult()
        if row is not None:
            res.touch(row["conversation_id"], *([row["message_id"]] if row["message_id"]
                                                and row["kind"] != "read" else []))
        self._after_action(res)
        return text

    def discard(self, message_id: str) -> str:
        """Remove a failed, expired or queued action of the message; its text goes back into
        the draft and is returned (outbox rule 3). Raises StoreError when in flight."""
        return self._touching(message_id, lambda: self.store.discard(message_id))

    def update_create_conversation(self, outbox_id: int, title: str,
                                   members: Sequence[str] = (), assistant: bool = False) -> None:
        """Change a waiting conversation create (title, members, assistant) and queue it
        again (``Cache.update_create_conversation``). Raises StoreError when it is not a
        waiting create or the title is invalid."""
        self.store.ensure_open()
        self.store.update_create_conversation(outbox_id, title, members, assistant)
        row = self.store.outbox_row(outbox_id)
        res = ApplyResult()
        if row is not None:
            res.touch(row["conversation_id"])
        self._after_action(res)

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

    async def unknown_members(self, names: Sequence[str]) -> list[str]:
        """Which of the member usernames ``names`` the server does not know (sync rule
        3o), asked before a conversation is created (``chat-tui new``, the app's new
        conversation dialog): one ``GET /v1/users/{username}`` per distinct name,
        case-folded, in the order given; blank names are skipped.

        Raises:
            chat_tui.api.ApiError: the server could not be asked (offline, a 401, a
            server without the route): the caller creates the conversation anyway (it is
            queued, and a refusal shows as a failed create, rule 3n) or says it could not
            check.
        """
        wanted = list(dict.fromkeys(n.strip().lower() for n in names if n.strip()))
        if not wanted:
            return []
        if self._gate.work_offline:
            from chat_tui.api import TransientError

            raise TransientError("working offline: member names are not checked",
                                 reached_server=False)
        api = self._api
        own = api is None
        if own:
            api = self._backend()
        try:
            return [n for n in wanted if not await api.user_exists(n)]
        finally:
            if own:
                await api.aclose()

    def mark_read(self, conversation_id: str, message_id: str) -> None:
        """Move my read marker forward (locally at once; queued for the server)."""
        self.store.ensure_open()
        if self.store.enqueue_read(conversation_id, message_id):
            res = ApplyResult()
            res.touch(conversation_id)
            self._after_action(res)

    # ------------------------------------------------------------------ assistant replies

    def _online_api(self, what: str) -> Backend:
        """The running client of chat-tui's server for an action that cannot be queued
        (``what`` names it in the error): ``PermanentError`` for a Matrix account, which
        has no assistant (docs/sync.md, Matrix), ``TransientError`` while working offline
        or before start."""
        from chat_tui.api import PermanentError, TransientError

        if self.is_matrix:
            raise PermanentError(f"a Matrix account has no assistant: {what} needs "
                                 "chat-tui's own server")
        if self._gate.work_offline:
            raise TransientError(f"working offline: {what} needs the server",
                                 reached_server=False)
        if self._api is None:
            raise TransientError(f"not connected yet: {what} needs the server",
                                 reached_server=False)
        return self._api

    async def stop_reply(self, message_id: str) -> None:
        """Stop the assistant reply ``message_id`` while it streams
        (``POST /v1/messages/{mid}/stop``, docs/api.md): the server keeps what was written
        and ends it with its stop note; the sync brings that last version to every
        device, this one included (the server's own writes wake every long-poll). Not
        queued: a stop only means something while the reply is being written.

        Raises:
            chat_tui.api.ApiError: offline or working offline (``TransientError``), the
            reply is unknown (``PermanentError`` 404) or not an assistant reply (409).
        """
        api = self._online_api("stopping a reply")
        await api.stop_reply(message_id)

    async def list_models(self):
        """The models the server offers (``GET /v1/models``: a ``wire.ModelList``), also
        kept in the cache (``Cache.save_model_list``) so a model can be chosen offline.

        Raises:
            chat_tui.api.ApiError: offline, working offline, or refused.
        """
        api = self._online_api("listing the models")
        listing = await api.list_models()
        await self._worker.run(self.store.save_model_list, listing.to_json().decode("utf-8"))
        return listing

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

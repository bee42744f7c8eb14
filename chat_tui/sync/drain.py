"""The outbox drain of one account (outbox rules 2-8, docs/sync.md).

One drain loop per account hands each conversation's head action to its own task, so a
conversation's actions go out strictly in order with one request in flight while the
conversations drain independently. A task marks its action ``sending``, sends it, and
records the answer on the database worker; an acknowledgement marks the conversation's
next action ``sending`` in the same transaction, so each message costs one worker hop and
one commit. Transient failures wait a backoff (and may pause the drain through the gate),
permanent ones stop the conversation, interruptions put the action back to ``queued``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from peewee import DatabaseError

from chat_tui.api import CursorExpired, PermanentError, TransientError, Unauthorized
from chat_tui.store import ApplyResult, OutboxAction
from chat_tui.sync.events import MessagesChanged
from chat_tui.sync.part import EnginePart
from chat_tui.sync.retry import retry_delay
from chat_tui.sync.waits import wait_event

if TYPE_CHECKING:
    from chat_tui.api.backend import Backend
    from chat_tui.config import Settings
    from chat_tui.store import Cache
    from chat_tui.sync.bus import EventBus
    from chat_tui.sync.connectivity import Monitor
    from chat_tui.sync.gate import Gate
    from chat_tui.sync.retry import Schedule
    from chat_tui.sync.worker import DbWorker

#: Seconds between two looks at the outbox while the drain is idle: rows appended by
#: another process (``chat-tui send`` next to ``chat-tui sync``) go out within this
#: (sync rule D5).
OUTBOX_POLL_SECONDS = 1.0

log = logging.getLogger(__name__)


@dataclass
class _InFlight:
    """What one conversation's send task answers for (outbox rule 4): ``action_id``, the
    action put back to ``queued`` when the task is interrupted (it moves to the next action
    once an acknowledgement marks that one ``sending``), and ``marked``, the last two
    actions it marked ``sending``, redrawn after an interruption."""

    action_id: int
    marked: list[OutboxAction] = field(default_factory=list)


class Drain(EnginePart):
    """Sends the account's outbox actions.

    Args:
        store: the account's cache (its outbox).
        worker: the database worker every outbox write of the drain runs on.
        gate: answers whether an action may be sent now; a 429 or 401 pauses it.
        monitor: told of failed requests (sync rule C1).
        bus: where the drain publishes ``MessagesChanged``, ``ConversationsChanged``
            and ``OutboxChanged``.
        api: returns the engine's API client (None before start).
        settings: ``max_attempts``, ``max_queue_age``, ``backoff_base``, ``backoff_cap``.
        pull_schedule: the puller's backoff, started over when an answer is acknowledged
            (the server works again).

    ``sent`` counts the acknowledged actions (``Engine.sync_once``).
    """

    def __init__(self, store: Cache, worker: DbWorker, gate: Gate, monitor: Monitor,
                 bus: EventBus, api: Callable[[], Backend | None], settings: Settings,
                 pull_schedule: Schedule):
        super().__init__(store, worker, gate, monitor, bus, api, settings)
        self._pull_schedule = pull_schedule
        self._wake = asyncio.Event()
        self.sent = 0

    def poke(self) -> None:
        """Look at the outbox now (a user action, a login, back online). Safe from any
        thread."""
        self._bus.call_soon_threadsafe(self._wake.set)

    # ------------------------------------------------------------------ the loop

    async def run(self) -> None:
        """Outbox rules 2-8: the one drain worker of the account. Each conversation's head
        action is sent by its own task (strictly in outbox order within the conversation,
        one request in flight), so a slow or failing conversation never holds the others;
        stop on first failure (a failed head is not returned by ``next_actions``). Runs
        until cancelled; cancelling interrupts every conversation's request."""
        inflight: dict[str, asyncio.Task] = {}
        wake = self._wake
        gate = self._gate

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
                await gate.wait_ready()
                wait_for = gate.pause_remaining()
                if wait_for > 0:
                    await asyncio.sleep(wait_for)
                    continue
                # Clear before reading the outbox: a send committed (or a conversation's
                # request finished) after this point sets it again, so no wake-up is lost.
                wake.clear()
                try:
                    expired, actions, due = await self._worker.run(self._due_actions)
                    if expired:
                        # Outbox rule 6: the expired messages change state, so the UI must
                        # redraw them (it re-reads a message only on MessagesChanged).
                        for cid, mids in expired.items():
                            if cid:
                                self._bus.emit(MessagesChanged(cid, tuple(mids)))
                        self._bus.emit_outbox()
                except DatabaseError as exc:
                    await self._worker.failed(exc)
                    continue
                for action in actions:
                    if action.conversation_id in inflight:
                        continue  # one request in flight per conversation
                    if not gate.may_send():
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
                await wait_event(wake, timeout)
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

        The expired messages, and those now blocked behind them, come back grouped by
        conversation id (``{cid: [message id]}``) so the drain can publish
        ``MessagesChanged`` for them (``""`` when the echo is gone)."""
        store = self._store
        expired: dict[str, list[str]] = {}
        for mid in store.expire_old(self._settings.max_queue_age):
            msg = store.get_message(mid)
            expired.setdefault(msg.conversation_id if msg is not None else "", []).append(mid)
        for cid, mids in expired.items():  # what waits behind them is blocked now
            if cid:
                mids.extend(m for m in store.blocked_messages(cid) if m not in mids)
        actions = store.next_actions()
        return expired, actions, None if actions else store.next_due_at()

    # ------------------------------------------------------------------ one conversation

    async def _send_one(self, action: OutboxAction, current: _InFlight) -> None:
        """Outbox rules 2-8 for one conversation: mark its head ``sending``, send it, and
        while each answer is acknowledged go on with the next action, marked in the same
        transaction as the acknowledgement (:meth:`_ack_and_next`). ``current.action_id`` is
        the action this task answers for (requeued when it is interrupted)."""
        try:
            try:
                marked = await self._worker.run(self._store.mark_sending, action.id)
            except DatabaseError as exc:
                await self._worker.failed(exc)
                return
            if marked is None:
                return
            self._worker.ok()
            chained = False
            while marked is not None:
                if chained and not self._gate.may_send():
                    # A 429 elsewhere, offline or work offline came after the ack marked it:
                    # not sent, so the attempt does not count (rule 5); the drain sends it
                    # when it may (outbox rule 2).
                    await self._worker.record(self._store.record_unreached, marked.id,
                                              "not sent: paused")
                    self._bus.redraw([marked])
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
        is then coalesced (:meth:`EventBus.emit_outbox_soon`)."""
        bus = self._bus
        store = self._store
        current.marked = [*current.marked[-1:], marked]
        if chained:
            bus.emit_outbox_soon()
        else:
            bus.emit_outbox()
        if marked.message_id:
            bus.emit(MessagesChanged(marked.conversation_id, (marked.message_id,)))
        try:
            res, nxt = await self._perform(marked, current)
        except TransientError as exc:
            await self._on_transient(marked, exc)
        except Unauthorized as exc:
            await self._worker.record(store.record_paused, marked.id, exc.reason)
            self._gate.pause_auth(exc.reason)
        except (PermanentError, CursorExpired) as exc:
            if marked.kind == "delete" and exc.status == 404 and marked.message_id:
                # Outbox rule 7: the server never had it (a send deleted after an attempt
                # whose fate was unknown): nothing left to delete.
                bus.emit_result(await self._worker.record(
                    store.ack_nothing_to_delete, marked.id, marked.message_id))
            elif marked.kind == "leave_conversation" and exc.status == 404:
                # Sync rule 11: not a member any more: what the leave was for.
                bus.emit_result(await self._worker.record(store.ack_leave, marked.id))
            elif marked.kind == "read":
                # A read marker the server refuses is dropped: it must not block messages.
                await self._worker.record(store.drop_action, marked.id)
            else:
                reason = f"{exc.status} {exc.code}: {exc.reason}".strip()
                blocked = await self._worker.record(store.record_permanent, marked.id, reason)
                if blocked:  # queued behind it: now shown blocked (bug class 5)
                    bus.emit(MessagesChanged(marked.conversation_id, tuple(blocked)))
        except DatabaseError as exc:
            # The server answered but the answer could not be committed: back to 'queued'
            # when the database allows it (else it stays 'sending' until the next start);
            # re-sent with the same key later, never marked failed.
            with contextlib.suppress(DatabaseError):
                await self._worker.record(store.record_paused, marked.id,
                                          "local database error")
            await self._worker.failed(exc)
        else:
            self._worker.ok()
            self.sent += 1
            self._pull_schedule.reset()
            bus.emit_result(res)
            if nxt is None:
                bus.emit_outbox()
            return nxt  # its OutboxChanged (now sending) comes as it is sent
        bus.redraw([marked])
        return None

    async def _on_transient(self, action: OutboxAction, exc: TransientError) -> None:
        """Outbox rules 3 and 5 for a transient failure: an attempt that never reached the
        server is not counted and means offline; otherwise it waits ``Retry-After`` (a 429
        pauses the whole drain that long) or the backoff, and gives up after
        ``max_attempts``."""
        if not exc.reached_server:
            await self._worker.record(self._store.record_unreached, action.id, exc.reason)
            self._monitor.report_unreachable()
            return
        settings = self._settings
        if exc.retry_after is not None:
            delay = exc.retry_after
            if exc.status == 429:
                self._gate.pause_for(delay)
        else:
            delay = retry_delay(action.transient_failures, settings.backoff_base,
                                settings.backoff_cap)
        state = await self._worker.record(self._store.record_transient, action.id, delay,
                                          f"{exc.status or 'network'}: {exc.reason}",
                                          settings.max_attempts)
        log.info("action %d transient failure (%s), %s, next in %.2fs", action.id,
                 exc.reason, state, delay)
        self._monitor.report_failure(exc)

    def _ack_and_next(self, ack: Callable[[int, Any], ApplyResult], action: OutboxAction,
                      answer: Any, current: _InFlight,
                      ) -> tuple[ApplyResult, OutboxAction | None]:
        """On the worker, in one transaction (outbox rules 2 and 4): commit the server's
        answer to ``action`` with ``ack`` and, when the gate lets sends go on
        (:meth:`Gate.may_send`), mark the conversation's next action ``sending``. Returns
        the acknowledgement's result and that next action (None when none is due). One
        hop and one commit per message (benchmarks/NOTES.md).
        ``current.action_id`` becomes the next action's id once committed, so an interruption
        puts that one back to ``queued`` (:meth:`_requeue_interrupted`)."""
        chain = self._gate.may_send()  # read on the worker: plain attribute reads
        store = self._store
        with store.batch():
            res = ack(action.id, answer)
            nxt = (store.mark_next_sending(action.conversation_id,
                                           self._settings.max_queue_age)
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
        api = self._api()
        assert api is not None
        store = self._store
        p = action.payload
        ack: Callable[[int, Any], ApplyResult] = store.ack_message
        if action.kind == "create_conversation":
            answer: Any = await api.put_conversation(
                action.conversation_id, p["title"], list(p.get("members", [])),
                bool(p.get("assistant", False)),
                **{k: p[k] for k in ("model", "system_prompt") if p.get(k) is not None})
            ack = store.ack_conversation
        elif action.kind == "update_conversation":
            answer = await api.patch_conversation(
                action.conversation_id,
                {k: p[k] for k in ("title", "model", "system_prompt") if k in p})
            ack = store.ack_conversation_update
        elif action.kind == "send":
            # attempts counts this one: more means an earlier one may have reached the
            # server (Matrix rule M1 then looks for it before sending again).
            answer = await api.put_message(action.conversation_id, action.message_id,
                                           p["body"], attempted=action.attempts > 1)
        elif action.kind == "edit":
            answer = await api.patch_message(action.message_id, p["body"],
                                             p.get("base_version"),
                                             conversation_id=action.conversation_id)
        elif action.kind == "delete":
            answer = await api.delete_message(action.message_id,
                                              conversation_id=action.conversation_id)
        elif action.kind == "regenerate":
            answer = await api.regenerate(action.message_id, p["reply_id"])
        elif action.kind == "leave_conversation":
            answer = await api.leave_conversation(action.conversation_id)
            ack = store.ack_leave
        elif action.kind in ("add_member", "remove_member"):
            change = api.add_member if action.kind == "add_member" else api.remove_member
            answer = await change(action.conversation_id, p["username"])
            ack = store.ack_conversation_update
        elif action.kind == "read":
            answer = await api.mark_read(action.conversation_id, p["message_id"])
            ack = store.ack_read
        else:
            raise PermanentError(f"unknown outbox action {action.kind!r}")
        return await self._worker.record(self._ack_and_next, ack, action, answer, current)

    def _requeue_interrupted(self, current: _InFlight) -> None:
        """Outbox rule 4 for a cancelled send (work offline, stop): put the action back to
        ``queued`` on the database worker thread. Queued on the same single thread, so it
        runs *after* a ``mark_sending`` the worker had already started (a cancelled await
        does not stop the thread; one not yet started is dropped) and after an
        acknowledgement or failure record (those are shielded, :meth:`DbWorker.record`):
        the row is never left in ``sending`` while the engine runs (docs/reliability.md).
        ``current.action_id`` is read there, after that hop: an ack that committed and
        marked the conversation's next action sending has made it that one
        (:meth:`_ack_and_next`)."""
        store = self._store
        bus = self._bus

        def requeue() -> None:
            with contextlib.suppress(DatabaseError):
                store.record_interrupted(current.action_id, "interrupted")
            # The interrupted task published nothing for what the worker wrote after the
            # cancel (a shielded ack, this requeue): redraw the actions it last marked.
            bus.redraw(current.marked)

        self._worker.submit(requeue)

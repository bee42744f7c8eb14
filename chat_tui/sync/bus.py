"""The engine's event bus: subscribers, emission from any thread, coalesced outbox counts.

Events (``chat_tui.sync.events``) reach subscribers on the engine's event loop, in the
order they were emitted (docs/engine.md, "Events"). The drain, the puller and the database
worker thread all publish through one :class:`EventBus`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from peewee import DatabaseError

from chat_tui.sync.events import (
    ConnectivityChanged,
    ConnectivityState,
    ConversationsChanged,
    Event,
    MessagesChanged,
    OutboxChanged,
)

if TYPE_CHECKING:
    from chat_tui.store import ApplyResult, Cache, OutboxAction

#: Seconds over which the ``OutboxChanged`` events of a conversation draining back to back
#: are coalesced into one (:meth:`EventBus.emit_outbox_soon`, docs/engine.md).
OUTBOX_EVENT_COALESCE = 0.05

log = logging.getLogger(__name__)


class EventBus:
    """Delivers engine events to subscribers on one asyncio loop.

    Args:
        store: the account's cache; the bus reads the outbox counts (``OutboxChanged``) and
            the last sync time (``ConnectivityChanged``) from it.

    Until :meth:`bind` is called (``Engine.open``/``start``) events are dropped: nothing is
    subscribed to a loop yet.
    """

    def __init__(self, store: Cache):
        self.store = store
        self.loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None  # threading.get_ident() of the loop's thread
        self._subscribers: list[Callable[[Event], None]] = []
        self._outbox_timer: asyncio.TimerHandle | None = None

    def bind(self) -> None:
        """Deliver on the running loop from now on (the first call wins)."""
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
            self._loop_thread = threading.get_ident()

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

    def emit(self, event: Event) -> None:
        """Queue ``event`` for the subscribers. Safe from any thread; a no-op before
        :meth:`bind` or once the loop is closed."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            # On the loop's own thread (the drain: ~3 events per message): same order, no
            # self-pipe write to wake a loop that is already running.
            loop.call_soon(self._dispatch, event)
        else:
            loop.call_soon_threadsafe(self._dispatch, event)

    def call_soon_threadsafe(self, fn: Callable[[], object]) -> None:
        """Run ``fn()`` on the engine's loop (a no-op before :meth:`bind`)."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(fn)

    def emit_result(self, res: ApplyResult) -> None:
        """``MessagesChanged`` per conversation, then one ``ConversationsChanged``, for
        what a store write reports it changed."""
        for cid, mids in res.messages.items():
            self.emit(MessagesChanged(cid, tuple(sorted(mids))))
        if res.conversations:
            self.emit(ConversationsChanged(tuple(sorted(res.conversations))))

    def emit_outbox(self) -> None:
        """``OutboxChanged`` with the counts read on the engine's loop when it is
        delivered, whatever thread calls this: an event is never older than one delivered
        before it, so the last one delivered holds the cache's counts (a count read on the
        database worker's thread and queued after a newer one would leave a stale outbox
        indicator). A logged no-op when the database cannot be read."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            loop.call_soon(self._publish_outbox)
        else:
            loop.call_soon_threadsafe(self._publish_outbox)

    def _publish_outbox(self) -> None:
        if not self.store.is_open:
            return
        try:
            counts = self.store.outbox_counts(reads=False)
        except DatabaseError:
            log.exception("outbox counts unavailable")
            return
        self._dispatch(OutboxChanged(counts))

    def emit_outbox_soon(self) -> None:
        """``OutboxChanged`` at most every :data:`OUTBOX_EVENT_COALESCE` seconds while a
        conversation drains back to back: the counts are read on the event loop thread (half
        a millisecond each), once per message otherwise. The counts are read when it fires;
        the drain's last change is always published at once (:meth:`emit_outbox`)."""
        loop = self.loop
        if loop is None or self._outbox_timer is not None:
            return

        def fire() -> None:
            self._outbox_timer = None
            self.emit_outbox()

        self._outbox_timer = loop.call_later(OUTBOX_EVENT_COALESCE, fire)

    def cancel_pending(self) -> None:
        """Drop a coalesced ``OutboxChanged`` not yet published (engine stop)."""
        if self._outbox_timer is not None:
            self._outbox_timer.cancel()
            self._outbox_timer = None

    def emit_connectivity(self, state: ConnectivityState, work_offline: bool) -> None:
        """``ConnectivityChanged`` with the last sync time read from the cache (None while
        it is closed or unreadable)."""
        last = None
        with contextlib.suppress(DatabaseError):
            last = self.store.last_synced_at() if self.store.is_open else None
        self.emit(ConnectivityChanged(state, work_offline, last))

    def redraw(self, actions: Sequence[OutboxAction]) -> None:
        """Publish what ``actions`` may have changed in the cache: ``MessagesChanged`` for
        their messages, ``ConversationsChanged`` for a conversation they create, then
        ``OutboxChanged``. Safe from the worker thread (:meth:`emit`)."""
        for action in actions:
            if action.message_id:
                self.emit(MessagesChanged(action.conversation_id, (action.message_id,)))
            elif action.kind == "create_conversation":
                self.emit(ConversationsChanged((action.conversation_id,)))
        self.emit_outbox()

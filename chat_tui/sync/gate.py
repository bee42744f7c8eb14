"""The one "may we use the network now?" gate of an engine: it owns every pause.

- **connectivity**: ``connecting`` / ``online`` / ``offline`` (sync rules C1-C2; the
  :class:`~chat_tui.sync.connectivity.Monitor` moves it),
- **work offline**: the user's switch (sync rule C3),
- **auth**: a 401 pauses every queue until a login (outbox rule 3, 401),
- **429**: a ``Retry-After`` on a 429 pauses the whole drain until a time (outbox rule 3),
- **database**: a local database error pauses the drain until a write succeeds (outbox
  rule 3); the drain and the puller retry it themselves after a backoff
  (:class:`~chat_tui.sync.worker.DbWorker`), so it is not part of :meth:`Gate.ready`.

The drain, the puller and the monitor ask the gate instead of reading flags; the gate
publishes ``ConnectivityChanged`` and ``EngineProblem`` when a pause starts or ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from peewee import DatabaseError

from chat_tui.sync.events import ConnectivityState, EngineProblem

if TYPE_CHECKING:
    from chat_tui.sync.bus import EventBus

log = logging.getLogger(__name__)


class Gate:
    """Every pause of one engine, and the wake-up when one lifts.

    Args:
        bus: where the gate publishes ``ConnectivityChanged`` and ``EngineProblem``; its
            store remembers the 401 pause across restarts (``Cache.set_auth_failed``).
        auth_paused: start paused for a login (no token).

    Attributes read by the engine's parts: ``state`` (the probed reachability),
    ``work_offline``, ``auth_paused``, ``db_paused`` (the database error text, or None)
    and ``paused_until`` (epoch seconds of the end of a 429 pause; 0 for none). The
    attributes are plain reads, cheap on the database thread (:meth:`may_send`).
    ``on_online`` is called when the server becomes reachable (the drain's wake-up).
    """

    def __init__(self, bus: EventBus, auth_paused: bool):
        self._bus = bus
        self.state: ConnectivityState = "connecting"
        self.work_offline = False
        self.auth_paused = auth_paused
        self.db_paused: str | None = None
        self.paused_until = 0.0
        self.on_online: Callable[[], None] = lambda: None
        self._changed = asyncio.Event()  # online/offline/auth/work-offline changes

    # ------------------------------------------------------------------ questions

    @property
    def connectivity(self) -> ConnectivityState:
        """``online``, ``offline`` or ``connecting`` (``offline`` while working offline)."""
        return "offline" if self.work_offline else self.state

    def ready(self) -> bool:
        """Whether the network may be used: online, not working offline, no 401 pause.
        A 429 pause only holds sends (:meth:`may_send`)."""
        return self.state == "online" and not self.work_offline and not self.auth_paused

    def may_send(self) -> bool:
        """Whether an outbox action may be sent now: :meth:`ready` and no 429 pause.
        Safe from the database thread (plain attribute reads)."""
        return self.ready() and time.time() >= self.paused_until

    def pause_remaining(self) -> float:
        """Seconds left of a 429 pause (0.0 when none)."""
        return max(0.0, self.paused_until - time.time())

    async def wait_ready(self) -> None:
        """Return once :meth:`ready` holds (at once when it does)."""
        while not self.ready():
            self._changed.clear()
            await self._changed.wait()

    # ------------------------------------------------------------------ connectivity

    def set_state(self, state: ConnectivityState) -> None:
        """Move the probed reachability; a change publishes ``ConnectivityChanged``, wakes
        the waiters, and ``online`` wakes the drain (sync rules C1-C2)."""
        if state != self.state:
            log.info("connectivity %s -> %s", self.state, state)
            self.state = state
            self.announce()
            if state == "online":
                self.on_online()

    def set_work_offline(self, enabled: bool) -> None:
        """Sync rule C3: the switch itself. Publishing is :meth:`announce`, called by the
        engine once its network tasks are stopped or started."""
        self.work_offline = enabled

    def reconnect(self) -> None:
        """Start over from ``connecting`` without publishing it (work offline turned off
        on a running engine: the monitor probes at once, then :meth:`announce`)."""
        self.state = "connecting"

    def announce(self) -> None:
        """Wake the waiters of :meth:`wait_ready` and publish ``ConnectivityChanged``."""
        self._changed.set()
        self.publish_connectivity()

    def publish_connectivity(self) -> None:
        """Publish ``ConnectivityChanged`` (state, work offline, last sync time)."""
        self._bus.emit_connectivity(self.connectivity, self.work_offline)

    # ------------------------------------------------------------------ pauses

    def pause_auth(self, reason: str) -> None:
        """Outbox rule 3, 401: pause every queue until :meth:`resume_auth`; remembered in
        the cache (``chat-tui status``) and published once (``EngineProblem("auth")``)."""
        if not self.auth_paused:
            self.auth_paused = True
            with contextlib.suppress(DatabaseError):
                self._bus.store.set_auth_failed(True)
            self._bus.emit(EngineProblem("auth", f"login required: {reason}"))

    def resume_auth(self) -> None:
        """A login gave a fresh token: lift the 401 pause (``EngineProblem("auth",
        active=False)``) and wake the waiters."""
        self.auth_paused = False
        with contextlib.suppress(DatabaseError):
            if self._bus.store.is_open:
                self._bus.store.set_auth_failed(False)
        self._bus.emit(EngineProblem("auth", "logged in", active=False))
        self._changed.set()

    def pause_for(self, seconds: float) -> None:
        """Outbox rule 3, 429: hold every send for ``seconds`` (the ``Retry-After``)."""
        self.paused_until = time.time() + seconds

    def pause_database(self, exc: Exception) -> None:
        """Outbox rule 3, local database error: pause the drain; ``EngineProblem
        ("database")`` is published when the pause starts."""
        if self.db_paused is None:
            log.error("local database error, drain paused: %s", exc)
            self._bus.emit(EngineProblem("database", f"local database error: {exc}"))
        self.db_paused = str(exc)

    def resume_database(self) -> bool:
        """A write succeeded: lift a database pause (``EngineProblem("database",
        active=False)``). Returns whether one was lifted."""
        if self.db_paused is None:
            return False
        log.info("local database writable again, drain resumed")
        self.db_paused = None
        self._bus.emit(EngineProblem("database", "local database writable again",
                                     active=False))
        return True

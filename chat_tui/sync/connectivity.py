"""Connectivity: health probes and the online/offline state machine (sync rules C1-C2).

The :class:`Monitor` probes ``GET /v1/health`` at start, with a capped backoff while
offline, and at once after a failed request; it moves the gate's state
(:meth:`~chat_tui.sync.gate.Gate.set_state`). Work offline (C3) is the gate's switch: the
engine does not run the monitor then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from chat_tui.api import CursorExpired, PermanentError, TransientError, Unauthorized
from chat_tui.sync.retry import Schedule
from chat_tui.sync.waits import wait_event

if TYPE_CHECKING:
    from chat_tui.api.backend import Backend
    from chat_tui.config import Settings
    from chat_tui.sync.gate import Gate

log = logging.getLogger(__name__)


class Monitor:
    """Probes the server's health and keeps the gate's connectivity state.

    Args:
        gate: the engine's gate; the monitor moves its ``state``.
        api: returns the engine's API client (None before start).
        settings: ``backoff_base``, ``backoff_cap`` and ``probe_cap`` (seconds): while
            offline the probe repeats after ``full_jitter(min(cap, base·2ⁿ))`` with
            ``cap = min(probe_cap, backoff_cap)`` (sync rule C2).

    ``probes`` counts the probes sent (``Engine.sync_once`` stops once one failed).
    """

    def __init__(self, gate: Gate, api: Callable[[], Backend | None], settings: Settings):
        self._gate = gate
        self._api = api
        probe_cap = min(settings.probe_cap, settings.backoff_cap)  # sync rule C2
        self._schedule = Schedule(min(settings.backoff_base, probe_cap), probe_cap)
        self._probe_now = asyncio.Event()
        self.probes = 0

    async def probe(self) -> bool:
        """One ``GET /v1/health`` (``probe_timeout``); True when the server answered
        healthy. Never raises an API error."""
        api = self._api()
        assert api is not None
        self.probes += 1
        try:
            ok = await api.health()
        except (TransientError, PermanentError, Unauthorized, CursorExpired) as exc:
            log.info("health probe failed: %s", exc.reason)
            ok = False
        return ok

    def probe_soon(self) -> None:
        """Sync rule C1: any failed request (connection error, timeout, 5xx, 429) makes the
        monitor probe ``GET /v1/health`` at once; only a failed probe means offline."""
        self._probe_now.set()

    def report_unreachable(self) -> None:
        """Sync rule C1: a connection-level failure flips to offline and probes at once."""
        self._gate.set_state("offline")
        self._probe_now.set()

    def report_failure(self, exc: TransientError) -> None:
        """Sync rule C1 for a transient request failure: offline at once when no HTTP
        answer came (``exc.connection_level``), else a probe decides."""
        if exc.connection_level:
            self.report_unreachable()
        else:
            self.probe_soon()

    async def run(self) -> None:
        """Sync rules C1-C2: probe at start, with backoff while offline, and at once after
        any failed request (:meth:`probe_soon`, :meth:`report_unreachable`). Runs until
        cancelled."""
        while True:
            if self._gate.state == "online":
                self._probe_now.clear()
                await self._probe_now.wait()  # a request failed: probe at once
            if await self.probe():
                self._schedule.reset()
                self._gate.set_state("online")
                continue
            self._gate.set_state("offline")
            delay = self._schedule.next_delay()
            self._probe_now.clear()
            await wait_event(self._probe_now, delay)

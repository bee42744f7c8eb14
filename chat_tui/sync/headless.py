"""The headless run of the engine (``chat-tui sync --once``): start, drain, pull, stop."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from chat_tui.store import Cache
    from chat_tui.sync.connectivity import Monitor
    from chat_tui.sync.drain import Drain
    from chat_tui.sync.gate import Gate
    from chat_tui.sync.puller import Puller


class Startable(Protocol):
    """What :func:`run_once` needs of the engine: its cache and its lifecycle."""

    store: Cache

    async def start(self) -> None: ...  # noqa: D102

    async def stop(self) -> None: ...  # noqa: D102


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


async def run_once(engine: Startable, gate: Gate, monitor: Monitor, drain: Drain,
                   puller: Puller, max_wait: float) -> SyncReport:
    """Start ``engine``, wait until every due action is sent (or a retry is due later than
    ``max_wait`` seconds) and one more sync response is applied, then stop it.

    Returns early when a 401 pauses everything, a probe found the server unreachable, or
    the database is paused; the report says which, and the outbox counts left.

    Raises:
        AnotherEngineRunning, chat_tui.store.SchemaTooNew: from ``Engine.start``.
    """
    store = engine.store
    report = SyncReport()
    await engine.start()
    deadline = time.monotonic() + max_wait
    try:
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            if gate.auth_paused:
                report.auth_failed = True
                break
            if gate.state == "offline" and monitor.probes >= 1:
                break
            if gate.db_paused is not None:
                break
            if gate.state != "online" or puller.synced == 0:
                continue
            counts = store.outbox_counts()
            due = store.next_due_at()
            if counts["sending"] == 0 and (due is None or due > time.time() + max_wait):
                synced_before = puller.synced
                while puller.synced == synced_before and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                break
    finally:
        report.reachable = monitor.probes > 0 and gate.state == "online"
        report.synced = puller.synced > 0
        report.sent = drain.sent
        await engine.stop()
        store.ensure_open()
        report.counts = store.outbox_counts()
        store.close()
    return report

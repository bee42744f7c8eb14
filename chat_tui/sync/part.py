"""What the engine's two loops are built with: :class:`EnginePart`, the base of the
outbox drain (:class:`~chat_tui.sync.drain.Drain`) and the puller
(:class:`~chat_tui.sync.puller.Puller`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chat_tui.api.backend import Backend
    from chat_tui.config import Settings
    from chat_tui.store import Cache
    from chat_tui.sync.bus import EventBus
    from chat_tui.sync.connectivity import Monitor
    from chat_tui.sync.gate import Gate
    from chat_tui.sync.worker import DbWorker


class EnginePart:
    """The engine's pieces a loop works with, kept as ``_store``, ``_worker``, ``_gate``,
    ``_monitor``, ``_bus``, ``_api`` and ``_settings``.

    Args:
        store: the account's cache.
        worker: the database worker the loop's cache writes run on (sync rule D3).
        gate: answers whether the network may be used now (online, not working offline,
            no 401 or 429 pause).
        monitor: told of failed requests (sync rule C1).
        bus: where the loop publishes its events.
        api: returns the engine's backend (None before start).
        settings: the engine's tunables (:class:`chat_tui.config.Settings`).
    """

    def __init__(self, store: Cache, worker: DbWorker, gate: Gate, monitor: Monitor,
                 bus: EventBus, api: Callable[[], Backend | None], settings: Settings):
        self._store = store
        self._worker = worker
        self._gate = gate
        self._monitor = monitor
        self._bus = bus
        self._api = api
        self._settings = settings

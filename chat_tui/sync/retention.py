"""The retention loop (sync rule R1): trims the cache at start and once a day."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from peewee import DatabaseError

from chat_tui.sync.events import ConversationsChanged

if TYPE_CHECKING:
    from chat_tui.config import Settings
    from chat_tui.store import Cache
    from chat_tui.sync.bus import EventBus
    from chat_tui.sync.worker import DbWorker

log = logging.getLogger(__name__)


async def run_retention(store: Cache, worker: DbWorker, bus: EventBus,
                        settings: Settings) -> None:
    """Sync rule R1: delete cached messages older than ``settings.retention_days`` (on the
    database worker, in short transactions: ``Cache.run_retention``) now and every
    ``settings.retention_interval`` seconds; publishes ``ConversationsChanged(())`` when
    something was deleted. A database error is logged and tried again next time. Runs
    until cancelled."""
    while True:
        try:
            deleted = await worker.run(store.run_retention, settings.retention_days)
            if deleted:
                log.info("retention deleted %d cached message(s)", deleted)
                bus.emit(ConversationsChanged(()))
        except DatabaseError as exc:
            log.error("retention failed: %s", exc)
        await asyncio.sleep(settings.retention_interval)

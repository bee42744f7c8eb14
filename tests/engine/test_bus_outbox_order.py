"""The outbox indicator is fed by ``OutboxChanged`` events (docs/engine.md, "Events"):
whatever thread publishes one, the last event delivered carries the counts the cache holds
then. A count read on another thread (the database worker) and delivered after a newer
one read on the loop would leave "Outbox: 1 queued" drawn over an outbox that has moved
on. A real cache file; the only hook is a pause between reading the counts on a
foreign thread and returning them, which reproduces the interleaving a loaded machine
produces."""

from __future__ import annotations

import asyncio
import threading

from chat_tui.store import Cache
from chat_tui.sync.bus import EventBus
from chat_tui.sync.events import OutboxChanged


class PausedCounts(Cache):
    """A cache whose ``outbox_counts`` called off ``loop_thread`` reads the counts, sets
    ``read`` and holds them until ``go`` is set (at most 10 s)."""

    loop_thread: int | None = None
    read = threading.Event()
    go = threading.Event()

    def outbox_counts(self, *, reads: bool = True) -> dict[str, int]:
        counts = super().outbox_counts(reads=reads)
        if threading.get_ident() != self.loop_thread:
            self.read.set()
            self.go.wait(10)
        return counts


async def test_the_last_outbox_event_delivered_matches_the_cache(tmp_path):
    from tests.support.payloads import sync_response, wire_conversation

    store = PausedCounts(tmp_path / "alice.db", "alice")
    store.read, store.go = threading.Event(), threading.Event()
    store.open()
    try:
        store.loop_thread = threading.get_ident()
        cid = "c-1"
        store.apply_sync(sync_response("1", [(wire_conversation(cid), [], False)]))
        store.enqueue_send(cid, "one")
        bus = EventBus(store)
        bus.bind()
        seen: list[dict[str, int]] = []
        bus.subscribe(lambda e: seen.append(dict(e.counts))
                      if isinstance(e, OutboxChanged) else None)

        worker = threading.Thread(target=bus.emit_outbox)  # as the database worker does
        worker.start()
        await asyncio.to_thread(store.read.wait, 0.5)  # reading off the loop (old code)
        action = store.mark_sending(store.outbox_rows()[0].id)
        store.record_permanent(action.id, "422 refused")  # the outbox moves on
        bus.emit_outbox()  # published from the loop
        store.go.set()
        await asyncio.to_thread(worker.join, 10)
        for _ in range(20):
            await asyncio.sleep(0.01)
        truth = {k: v for k, v in store.outbox_counts(reads=False).items() if v}
        assert seen, "no OutboxChanged delivered"
        assert {k: v for k, v in seen[-1].items() if v} == truth == {"failed": 1}
    finally:
        store.close()

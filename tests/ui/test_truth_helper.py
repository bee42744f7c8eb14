"""The indicator-truth helper (tests/support/truth.py) can fail: each indicator drawn
wrong is reported. A real cache file; the app without an engine (no network)."""

from __future__ import annotations

from chat_tui.store import Cache
from chat_tui.ui.app import ChatApp
from chat_tui.ui.clock import FixedClock
from tests.support.truth import untruths
from tests.support.ui import SIZE, wait_for

CID = "00000003-0000-4000-8000-000000000000"


async def test_untruths_reports_each_wrong_indicator(tmp_path):
    store = Cache(tmp_path / "me.db", "me")
    store.open()
    store.enqueue_create_conversation(CID, "Notes")
    store.enqueue_send(CID, "waiting")
    app = ChatApp(store, None, clock=FixedClock())
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: app.chat.messages.views)
        assert untruths(app) == []
        app.chat.queue_indicator.show_counts({"failed": 3})
        assert any("outbox indicator" in u for u in untruths(app))
        app.chat.queue_indicator.show_counts(store.outbox_counts())
        app.chat.banner.display = True
        assert any("offline banner" in u for u in untruths(app))
        app.chat.banner.display = False
        store.discard(app.chat.messages.views[-1].id)
        assert any("not in the cache" in u for u in untruths(app))
    store.close()

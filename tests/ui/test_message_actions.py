"""Message actions race the outbox drain: an action the store refuses (the drain took the
message a moment ago) is a toast, never the end of the app. The engine runs in
work-offline mode (no network), and the test takes the queued message as the drain does
(``Cache.mark_sending``) while the screen still shows it queued."""

from __future__ import annotations

from chat_tui.config import Settings
from chat_tui.store import Cache
from chat_tui.ui.app import ChatApp
from chat_tui.ui.clock import FixedClock
from chat_tui.ui.widgets.message_list import MessageList
from tests.support.ui import SIZE, wait_for

CID = "00000001-0000-4000-8000-000000000000"


def offline_engine(store: Cache):
    from chat_tui.sync.engine import Engine

    return Engine(store, "http://127.0.0.1:9", None, Settings())


async def test_discard_of_a_message_the_drain_just_took_is_a_toast(tmp_path):
    store = Cache(tmp_path / "me.db", "me")
    store.open()
    store.enqueue_create_conversation(CID, "Notes")
    mid = store.enqueue_send(CID, "on its way")
    store.set_work_offline(True)  # the engine starts without any network task
    app = ChatApp(store, offline_engine, clock=FixedClock())
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: app.engine_ready)
        messages = app.query_one(MessageList)
        messages.focus()
        await pilot.pause()
        assert messages.selected_view().id == mid
        assert messages.selected_view().state == "queued"
        send = next(a for a in store.outbox_rows() if a.message_id == mid and a.kind == "send")
        assert store.mark_sending(send.id) is not None  # the drain claims it
        await pilot.press("x")  # discard, from what the screen shows
        await pilot.pause()
        assert app.is_running
        toasts = [n.message for n in app._notifications]
        assert any(t.startswith("Not discarded: ") for t in toasts), toasts
        assert store.get_message(mid).body == "on its way"  # nothing was changed
    store.close()

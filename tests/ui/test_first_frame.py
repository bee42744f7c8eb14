"""The first frame holds what can be read (conversation list, newest messages); the
composer and the key bar mount right after it, and keys typed before that are not lost."""

from __future__ import annotations

from textual import events

from chat_tui.store import Cache
from chat_tui.ui.app import ChatApp
from chat_tui.ui.clock import FixedClock
from chat_tui.ui.widgets.footer import KeyFooter
from chat_tui.ui.widgets.message_list import MessageList
from tests.support.ui import SIZE, wait_for

CID = "00000001-0000-4000-8000-000000000000"


async def test_keys_typed_before_the_composer_exists_reach_it_in_order(tmp_path):
    store = Cache(tmp_path / "me.db", "me")
    store.open()
    store.enqueue_create_conversation(CID, "Notes")
    store.enqueue_send(CID, "an earlier note")
    store.save_draft(CID, "draft: ", (0, 7))
    app = ChatApp(store, None, clock=FixedClock())
    async with app.run_test(size=SIZE) as pilot:
        # The first frame: the messages, no composer or key bar yet.
        assert app.chat.composer is None and not app.query(KeyFooter)
        assert [v.body for v in app.query_one(MessageList).views] == ["an earlier note"]
        for ch in "hi there":
            app.post_message(events.Key("space" if ch == " " else ch, ch))
        await wait_for(pilot, lambda: app.chat.composer is not None
                       and app.chat.composer.text == "draft: hi there")
        assert app.chat.composer.text == "draft: hi there", app.chat._early_keys
        assert app.chat.composer.has_focus and app.query(KeyFooter)
        await pilot.press(*"!")  # typed after it mounted: after the early keys
        assert app.chat.composer.text == "draft: hi there!"
    store.close()

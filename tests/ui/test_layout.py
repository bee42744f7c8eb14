"""Layout: a conversation shorter than the message pane sits at the bottom, above the
composer, on every start (as chat apps show it), not at the top with blank lines under it;
a narrow terminal gets a narrower conversation list so the messages keep room."""

from __future__ import annotations

from chat_tui.store import Cache
from chat_tui.ui.app import ChatApp
from chat_tui.ui.widgets.composer import Composer
from chat_tui.ui.widgets.conversation_list import ConversationList
from chat_tui.ui.widgets.message_item import MessageItem
from chat_tui.ui.widgets.message_list import MessageList

CID = "00000000-0000-4000-8000-00000000000a"


async def _start_and_look(store: Cache) -> dict:
    app = ChatApp(store, None)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        await pilot.pause()
        pane = app.query_one(MessageList)
        last = list(pane.query(MessageItem))[-1]
        seen = {
            "gap_below": pane.content_region.bottom - last.region.bottom,
            "gap_above_composer": app.query_one(Composer).region.y - last.region.bottom,
            "scroll_y": pane.scroll_y,
            "at_bottom": pane.at_bottom,
            "last_text": last.view.body,
        }
    return seen


async def test_a_short_conversation_sits_above_the_composer_after_a_restart_too(tmp_path):
    store = Cache(tmp_path / "cache.db", "alice")
    store.open()
    try:
        store.enqueue_create_conversation(CID, "Short")
        for text in ("first", "second", "third"):
            store.enqueue_send(CID, text)
        for start in ("first start", "restart"):
            seen = await _start_and_look(store)
            # The last message's bottom margin (1 line) is all that is under it.
            assert seen["gap_below"] <= 1, (start, seen)
            assert seen["gap_above_composer"] <= 1, (start, seen)
            assert seen["scroll_y"] == 0 and seen["at_bottom"], (start, seen)
            assert "third" in seen["last_text"], (start, seen)
            # Nothing scrolled: no position to restore next time (a saved position made
            # the restart open at the top with blank lines below).
            assert store.get_ui_state().scroll_anchors.get(CID) is None, start
    finally:
        store.close()


async def test_a_narrow_terminal_gets_a_narrower_conversation_list(tmp_path):
    store = Cache(tmp_path / "cache.db", "alice")
    store.open()
    try:
        store.enqueue_create_conversation(CID, "A conversation with a long enough title")
        widths = {}
        for size in ((120, 30), (70, 30)):
            app = ChatApp(store, None)
            async with app.run_test(size=size) as pilot:
                await pilot.pause()
                listed = app.query_one(ConversationList)
                widths[size[0]] = listed.region.width
                # The row is built for the width it gets (title cut with an ellipsis).
                row = str(listed.get_option_at_index(0).prompt).split("\n")[0]
                assert len(row.rstrip()) <= listed.region.width, (size, row)
                pane = app.query_one(MessageList)
                widths[f"pane {size[0]}"] = pane.region.width
        assert widths[120] == 34 and widths[70] == 24
        assert widths["pane 70"] == 70 - 24  # the messages get the rest
    finally:
        store.close()


async def test_the_help_screen_at_60x20_says_what_each_key_does(tmp_path):
    """At 60x20 every key on the help screen still has its description beside it (a long
    section title must not widen the key column until the descriptions get no room)."""
    from textual.geometry import Region

    from chat_tui.ui.keymap import ACTIONS
    from chat_tui.ui.screens.help import HelpScreen

    store = Cache(tmp_path / "cache.db", "alice")
    store.open()
    try:
        store.enqueue_create_conversation(CID, "Short")
        app = ChatApp(store, None)
        async with app.run_test(size=(60, 20)) as pilot:
            await pilot.pause()
            await pilot.press("f1")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            table = app.screen.query_one("#help-table")
            lines = table.render_lines(Region(0, 0, table.size.width, table.size.height))
            drawn = " ".join(" ".join(strip.text.split()) for strip in lines)
            for entry in ACTIONS:
                first = " ".join(entry.help.split()[:2])  # its start, on the key's line
                assert first in drawn, (entry.id, drawn[:300])
    finally:
        store.close()

"""The first frame holds what can be read (conversation list, newest messages); the
composer and the key bar mount right after it, and keys typed before that are not lost."""

from __future__ import annotations

import pytest
from textual import events

from chat_tui.store import Cache
from chat_tui.ui.app import ChatApp
from chat_tui.ui.clock import FixedClock
from chat_tui.ui.widgets.footer import KeyFooter
from chat_tui.ui.widgets.message_item import MessageItem
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


def at_first_frame(app: ChatApp, record) -> None:
    """Call ``record()`` once, when ``app`` writes its first frame with the chat body
    shown (outside Textual's startup batch), before that frame is drawn."""
    display, done = app._display, []

    def first_frame(screen, renderable):
        if (not done and renderable is not None and not app._batch_count
                and app.chat.query_one("#body").display):
            done.append(True)
            record()
        return display(screen, renderable)

    app._display = first_frame


def _closed_cache(path) -> None:
    store = Cache(path, "me")
    store.open()
    store.enqueue_create_conversation(CID, "Notes")
    for i in range(30):
        store.enqueue_send(CID, f"note {i}")
    store.save_draft(CID, "draft: ", (0, 7))
    store.set_last_conversation(CID)
    store.close()


def _app_over_notes(path, work_offline: bool) -> tuple[Cache, ChatApp]:
    """The app over the cache of :func:`_closed_cache` at ``path``, opened again with work
    offline set to ``work_offline``, and no engine; the caller closes the store."""
    _closed_cache(path)
    store = Cache(path, "me")
    store.open()
    store.set_work_offline(work_offline)
    return store, ChatApp(store, None, clock=FixedClock())


async def test_first_frame_from_the_reader_then_the_cache_loses_no_key(tmp_path):
    """The first frame drawn by the stdlib reader shows what the cache shows; keys typed
    before the cache opens reach the composer, and the draft is saved in the cache."""
    from chat_tui.store.cleanstamp import is_clean
    from chat_tui.store.first_frame import FirstFrameReader

    path = tmp_path / "me.db"
    _closed_cache(path)
    opened: list[Cache] = []

    def open_cache() -> Cache:
        store = Cache(path, "me")
        store.open()
        opened.append(store)
        return store

    reader = FirstFrameReader.open(path, "me")
    assert reader is not None
    app = ChatApp(reader, None, clock=FixedClock(), open_cache=open_cache)
    async with app.run_test(size=SIZE) as pilot:
        for ch in "hey":
            app.post_message(events.Key(ch, ch))
        shown = [v.body for v in app.query_one(MessageList).views]
        await wait_for(pilot, lambda: app.chat.composer is not None
                       and app.chat.composer.text == "draft: hey")
        assert app.chat.composer.text == "draft: hey"
        assert app.store is opened[0] and app.chat.store is opened[0]
        expected = opened[0].messages_before(CID, None, limit=len(shown))
        assert shown == [v.body for v in expected] and shown[-1] == "note 29"
    store = opened[0]
    assert store.get_draft(CID).text == "draft: hey"
    store.close()
    assert is_clean(path)


async def test_keys_to_the_store_wait_for_the_cache(tmp_path):
    """Opening a conversation or the search before the cache opens waits for it."""
    from chat_tui.store.first_frame import FirstFrameReader
    from chat_tui.ui.screens.search import SearchScreen

    path = tmp_path / "me.db"
    _closed_cache(path)
    app = ChatApp(FirstFrameReader.open(path, "me"), None, clock=FixedClock(),
                  open_cache=lambda: Cache(path, "me"))
    app._first_frame_drawn = lambda: None  # held: the first frame's reader stays in place
    async with app.run_test(size=SIZE) as pilot:
        worker = app.chat.open_conversation(CID)
        app.action_search()
        await pilot.pause(0.2)
        assert not worker.is_finished and not isinstance(app.screen, SearchScreen)
        store = Cache(path, "me")
        store.open()
        app.store = store
        app.chat.install_cache(store)
        app.chat.post_message(app.chat.Drawn())
        await worker.wait()
        await wait_for(pilot, lambda: isinstance(app.screen, SearchScreen))
        assert isinstance(app.screen, SearchScreen)
    app.chat.store.close()


async def test_first_frame_is_laid_out_once_with_the_list_and_the_messages(tmp_path):
    """The body of the chat screen (conversation list, messages) is laid out once before
    the first frame, after the app's startup batch (a layout or render inside it is a
    frame Textual drops), and that frame holds the list's rows and the newest messages."""
    from chat_tui.ui.widgets.conversation_list import ConversationList

    path = tmp_path / "me.db"
    _closed_cache(path)
    store = Cache(path, "me")
    store.open()
    for i in range(30):  # more conversations than the list shows
        store.enqueue_create_conversation(f"00000002-0000-4000-8000-{i:012d}", f"Chat {i}")
    store.enqueue_send(CID, "note 30")  # the open conversation is the most recent again
    store.set_last_conversation(CID)
    app = ChatApp(store, None, clock=FixedClock())
    layouts: list[int] = []  # the app's batch depth at each layout with the body shown
    first: dict[str, object] = {}
    refresh_layout = app.chat._refresh_layout

    def counted_layout(*args, **kwargs):
        if app.chat.query_one("#body").display:
            layouts.append(app._batch_count)
        return refresh_layout(*args, **kwargs)

    def first_frame():
        first["layouts"] = list(layouts)
        first["rows"] = app.chat.query_one(ConversationList).option_count
        first["messages"] = [v.body for v in app.chat.messages.views]

    app.chat._refresh_layout = counted_layout
    at_first_frame(app, first_frame)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: first)
    store.close()
    assert first["layouts"] == [0]
    # a screenful of two-line rows, and no more: the rest are read after the frame
    assert SIZE[1] // 2 <= first["rows"] <= SIZE[1] // 2 + 2
    assert first["messages"][-1] == "note 30"


@pytest.mark.parametrize("work_offline", [False, True])
async def test_first_frame_shows_the_newest_messages_at_the_bottom_of_the_pane(tmp_path,
                                                                             work_offline):
    """The first frame draws the newest messages where they belong: the last one ends at
    the bottom of the message pane, every message drawn lies inside it, and the newest
    is on screen (more messages than the pane holds, so the pane is scrolled to its end
    from that frame on, the offline banner shown or not)."""
    store, app = _app_over_notes(tmp_path / "me.db", work_offline)
    first: dict[str, object] = {}

    def first_frame():
        pane = app.chat.messages
        items = [w for w in pane.children if isinstance(w, MessageItem)]
        first["pane"] = pane.content_region
        first["newest"] = (items[-1].view.body, items[-1].region)
        first["max_scroll"] = (pane.scroll_y, pane.max_scroll_y)

    at_first_frame(app, first_frame)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: first)
    store.close()
    pane, (body, region) = first["pane"], first["newest"]
    assert body == "note 29"
    assert first["max_scroll"][0] == first["max_scroll"][1] > 0  # scrolled to the end
    assert pane.y <= region.y and region.bottom <= pane.bottom, (pane, region)
    assert pane.bottom - region.bottom <= 1  # the last message's margin, nothing more


@pytest.mark.parametrize("work_offline", [False, True])
async def test_the_status_line_mounts_after_the_first_frame_showing_its_state(tmp_path,
                                                                              work_offline):
    """The first frame keeps the title bar's line, empty: its parts (app name, title,
    outbox and sync indicators) mount right after it, and so does the offline banner
    unless it shows from the start (work offline on: no line moves after the first
    frame). Each shows the state set before it existed (31 actions queued, work offline),
    as the cache has it."""
    from tests.support.truth import untruths

    store, app = _app_over_notes(tmp_path / "me.db", work_offline)
    first: dict[str, object] = {}

    def first_frame():
        first["titlebar"] = [w.id for w in app.chat.query_one("#titlebar").children]
        first["banner"] = app.chat.banner.is_attached
        first["newest"] = app.chat.messages.views[-1].body

    at_first_frame(app, first_frame)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: first and app.chat.composer is not None
                       and app.chat.banner.is_attached and app.chat.sync_indicator.is_attached)
        assert first == {"titlebar": [], "banner": work_offline, "newest": "note 29"}
        titlebar = app.chat.query_one("#titlebar")
        assert [w.id for w in titlebar.children] == ["app-title", "chat-title", "queue", "sync"]
        assert app.chat.banner.display is work_offline
        assert ("Working offline" in str(app.chat.banner.render())) is work_offline
        assert str(app.chat.queue_indicator.render()) == "Outbox: 31 queued"
        assert app.chat.queue_indicator.display
        assert ("offline" if work_offline else "connecting") in str(
            app.chat.sync_indicator.render())
        assert "Notes" in str(app.chat._title.render())
        assert untruths(app) == []
    store.close()

"""The conversation list builds rows near the screen only and grows on demand (a cache of
10,000 conversations built every row on each open: 2 s; benchmarks/NOTES.md)."""

from __future__ import annotations

from textual.app import App

from chat_tui.store import ConversationView
from chat_tui.ui.widgets.conversation_list import ConversationList


def views(n: int) -> list[ConversationView]:
    return [ConversationView(id=f"c{i:05d}", title=f"Conversation {i}", members=("me", "bob"),
                             assistant=False, last_message_preview=f"bob: hello {i}",
                             last_activity_at=None, unread_count=0, queued_count=0,
                             pending=False) for i in range(n)]


class ListApp(App[None]):
    def compose(self):
        yield ConversationList(id="conversations")


async def test_rows_are_built_in_pages_and_follow_the_highlight_and_the_open_one():
    app = ListApp()
    convs = views(1000)
    page = ConversationList.PAGE
    async with app.run_test(size=(60, 30)) as pilot:
        lst = app.query_one(ConversationList)
        lst.show(convs, convs[0].id)
        await pilot.pause()
        assert lst.option_count == page
        assert lst.highlighted == 0
        lst.highlighted = page - 1  # keyboard near the end of the built rows
        await pilot.pause()
        assert lst.option_count > page
        assert lst.get_option_at_index(page).id == convs[page].id  # same order, no gap
        lst.show(convs, convs[900].id)  # open one far below: it and its neighbours exist
        await pilot.pause()
        assert lst.option_count >= 901
        assert lst.highlighted_option.id == convs[page - 1].id  # the highlight stays put
        assert "\u258c" in str(lst.get_option(convs[900].id).prompt)  # marked as open
        assert "\u258c" not in str(lst.get_option(convs[0].id).prompt)
        assert lst.neighbour(1) == convs[901].id


async def test_first_frame_reads_a_page_of_conversations_then_all(tmp_path):
    from chat_tui.store import Cache
    from chat_tui.ui.app import FIRST_FRAME_CONVERSATIONS, ChatApp

    store = Cache(tmp_path / "me.db", "me")
    store.open()
    ids = [store.enqueue_create_conversation(f"{i:08d}-0000-4000-8000-000000000000",
                                             f"Chat {i}") for i in range(150)]
    assert len(store.list_conversations(limit=10)) == 10
    assert [c.id for c in store.list_conversations(limit=150)] == \
        [c.id for c in store.list_conversations()]
    store.set_last_conversation(ids[0])  # the oldest: not among the first page
    app = ChatApp(store, None, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.current_id == ids[0]
        await pilot.pause()
        assert len(app.conversations) == 150 > FIRST_FRAME_CONVERSATIONS
    store.set_last_conversation(ids[-1])  # the newest: the first frame reads one page
    app = ChatApp(store, None, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.current_id == ids[-1]
        for _ in range(20):
            if len(app.conversations) == 150:
                break
            await pilot.pause(0.05)
        assert len(app.conversations) == 150
    store.close()


async def test_a_long_list_is_kept_as_a_window_that_grows_and_reaches_any_row(tmp_path,
                                                                               monkeypatch):
    from chat_tui.store import Cache
    from chat_tui.store.conversation_counts import queued_actions
    from chat_tui.ui import conversation_window
    from chat_tui.ui.app import ChatApp

    monkeypatch.setattr(conversation_window, "FIRST_FRAME_CONVERSATIONS", 20)
    monkeypatch.setattr(conversation_window, "LIST_WINDOW", 40)
    store = Cache(tmp_path / "me.db", "me")
    store.open()
    ids = [store.enqueue_create_conversation(f"{i:08d}-0000-4000-8000-000000000000",
                                             f"Chat {i}") for i in range(150)]
    order = [c.id for c in store.list_conversations()]
    assert order[0] == ids[-1] and order[-1] == ids[0]  # the newest first
    store.set_last_conversation(order[0])
    app = ChatApp(store, None, start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(20):
            await pilot.pause(0.02)
            if len(app.conversations) != 20:
                break
        # After the first frame: a window of the most recent, not the whole list...
        assert [c.id for c in app.conversations] == order[:40]
        assert not app.list_complete
        # ...but the banner's count covers every conversation (one queued creation each).
        assert app.chat.window.queued_total == queued_actions(store) == 150
        assert sum(c.queued_count for c in store.list_conversations()) == 150
        # Moving down past the window reads a longer one; the rows continue in order.
        lst = app.query_one(ConversationList)
        lst.focus()
        lst.highlighted = lst.option_count - 1
        for _ in range(20):
            await pilot.pause(0.02)
            if len(app.conversations) > 40:
                break
        grown = len(app.conversations)
        assert grown > 40 and [c.id for c in app.conversations] == order[:grown]
        assert lst.option_count > 40
        assert [lst.get_option_at_index(i).id for i in range(lst.option_count)] == \
            order[:lst.option_count]
        # A conversation further down (as from a search hit) opens with its title, and the
        # window widens to keep it.
        app.chat.window.limit = 40
        app.refresh_conversations()
        assert not app.list_complete and order[-1] not in [c.id for c in app.conversations]
        await app.open_conversation(order[-1]).wait()
        await pilot.pause()
        assert app.current_id == order[-1]
        assert app.current_conversation is not None
        assert app.current_conversation.title == "Chat 0"
        app.refresh_conversations()
        assert order[-1] in [c.id for c in app.conversations]
        # From the first row, "previous" wraps to the oldest, past any window.
        await app.open_conversation(order[0]).wait()
        app.chat.window.limit = 40
        app.refresh_conversations()
        assert not app.list_complete
        app.chat.action_prev_conversation()
        for _ in range(20):
            await pilot.pause(0.02)
            if app.current_id == order[-1]:
                break
        assert app.current_id == order[-1]
    store.close()

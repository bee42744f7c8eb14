"""Safe keys: deleting a sent message asks first; a printable key typed while the message
list has focus goes to the composer unless it is one of the list's documented keys;
repeated identical toasts collapse into one. Real app, engine and server."""

from __future__ import annotations

from chat_tui.ui.screens.confirm import ConfirmScreen
from chat_tui.ui.widgets.composer import Composer
from chat_tui.ui.widgets.message_list import MessageList
from tests.support.truth import assert_truthful
from tests.support.ui import SIZE, online, shared_conversation, shown, wait_for


async def sent_message(pilot, app, body: str) -> MessageList:
    await pilot.press(*body, "enter")
    messages = app.query_one(MessageList)
    assert await wait_for(pilot, lambda: messages.views and
                          (messages.views[-1].body, messages.views[-1].state) == (body, "sent"))
    return messages


async def test_delete_asks_first(login, make_app, server_api):
    _, cid, _ = await shared_conversation(server_api, bodies=("hi",))
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and shown(app, cid))
        messages = await sent_message(pilot, app, "keep me")
        await pilot.press("ctrl+t")
        assert messages.selected_view().body == "keep me"
        await pilot.press("d")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert not app.store.get_message(messages.views[-1].id).deleted
        await pilot.press("n")  # keep it
        assert await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert not app.store.get_message(messages.views[-1].id).deleted
        assert messages.has_focus
        await assert_truthful(pilot, app)
        await pilot.press("d", "y")
        assert await wait_for(pilot, lambda: messages.views[-1].deleted)
        await assert_truthful(pilot, app)


async def test_typing_in_the_message_list_goes_to_the_composer(login, make_app, server_api):
    _, cid, _ = await shared_conversation(server_api, bodies=("hi",))
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and shown(app, cid))
        await pilot.press("ctrl+t")
        messages = app.query_one(MessageList)
        assert messages.has_focus
        await pilot.press(*"hold on")  # 'h' is no list key: it and the rest are typed
        composer = app.query_one(Composer)
        assert await wait_for(pilot, lambda: composer.text == "hold on")
        assert composer.has_focus
        assert not app._notifications


async def test_repeated_identical_toasts_collapse(login, make_app, server_api):
    _, cid, _ = await shared_conversation(server_api, bodies=("hi",))
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and shown(app, cid))
        await pilot.press("ctrl+t", *"rrrrrrrrrrrr")  # a documented key, twelve times
        await pilot.pause()
        toasts = [n.message for n in app._notifications]
        assert toasts.count("No failed message here to retry.") == 1, toasts


async def test_a_burst_typed_in_the_message_list_goes_to_the_composer_whole(
        login, make_app, server_api):
    """A burst (what a paste or ``tmux send-keys`` delivers: no pause between keys) typed
    while the message list has focus: the first key that is no list key hands the focus to
    the composer, and every key after it in the burst is typed too, list keys included
    (the ``d`` of "hold on" deletes nothing)."""
    from textual import events

    _, cid, _ = await shared_conversation(server_api, bodies=("hi",))
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and shown(app, cid))
        await sent_message(pilot, app, "mine")
        await pilot.press("ctrl+t")
        messages = app.query_one(MessageList)
        assert messages.has_focus and messages.selected_view().body == "mine"
        for ch in "hold on, read this":
            app.post_message(events.Key("space" if ch == " " else ch, ch))
        composer = app.query_one(Composer)
        assert await wait_for(pilot, lambda: composer.text == "hold on, read this")
        await pilot.pause(0.3)
        assert not isinstance(app.screen, ConfirmScreen)
        assert composer.text == "hold on, read this" and composer.has_focus
        assert not app._notifications
        await assert_truthful(pilot, app)


async def test_alt_keys_from_a_terminal_run_their_binding_and_type_nothing(tmp_path):
    """A terminal sends alt+d as ESC d, which Textual delivers as the key ``alt+d`` with
    the character ``d`` (printable): it opens the leave question, from the composer and
    from the message list alike, and no ``d`` lands in the composer."""
    from textual import events

    from chat_tui.store import Cache
    from chat_tui.ui.app import ChatApp

    store = Cache(tmp_path / "cache.db", "alice")
    store.open()
    try:
        store.enqueue_create_conversation("00000000-0000-4000-8000-00000000000b", "Plans",
                                          members=["bob"])
        app = ChatApp(store, None)
        async with app.run_test(size=SIZE) as pilot:
            assert await wait_for(pilot, lambda: app.chat.composer is not None
                                  and app.chat.composer.has_focus)
            composer = app.query_one(Composer)
            for focus in ("composer", "messages"):
                if focus == "messages":
                    await pilot.press("ctrl+t")
                    assert app.query_one(MessageList).has_focus
                app.post_message(events.Key("alt+d", "d"))  # as the terminal delivers it
                assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen)), focus
                assert composer.text == "", focus
                await pilot.press("n")
                assert await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
            assert composer.text == ""
    finally:
        store.close()

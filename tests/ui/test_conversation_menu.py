"""The conversation menu (alt+c, palette) and leaving (alt+d) in the app, sync rules 9 and
11: a rename and a member added show at once and reach the server; leaving asks first,
then the conversation leaves the list. Pilot tests: the real app, engine and server."""

from __future__ import annotations

from textual.widgets import Input

from chat_tui.ui.screens.confirm import ConfirmScreen
from chat_tui.ui.screens.conversation_menu import ConversationMenuScreen
from tests.support.ui import SIZE, online, shown, wait_for


async def test_menu_renames_and_adds_a_member_and_alt_d_leaves(server, login, make_app,
                                                               server_api):
    server.add_user("carol", "carol-pw")
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app))
        cid = app.engine.create_conversation("Plans", ["bob"])
        assert await wait_for(pilot, lambda: shown(app, cid) or app.current_id == cid or
                              any(c.id == cid for c in app.conversations))
        app.screen.open_conversation(cid)
        assert await wait_for(pilot, lambda: shown(app, cid))
        await pilot.press("alt+c")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConversationMenuScreen))
        menu = app.screen
        menu.query_one("#menu-title", Input).value = "Weekend"
        menu.query_one("#menu-members", Input).value = "bob, carol"
        menu.submit()
        assert await wait_for(pilot, lambda: not isinstance(app.screen, ConversationMenuScreen))
        assert await wait_for(pilot, lambda: app.store.get_conversation(cid).title == "Weekend")
        view = app.store.get_conversation(cid)
        assert (view.title, view.members) == ("Weekend", ("alice", "bob", "carol")), [
            n.message for n in app._notifications]
        assert await wait_for(pilot, lambda: not app.store.outbox_rows(), timeout=15)
        [conv] = [c for c in await server_api("bob").list_conversations() if c.id == cid]
        assert (conv.title, conv.members) == ("Weekend", ("alice", "bob", "carol"))

        await pilot.press("alt+d")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")  # keep it
        assert app.store.get_conversation(cid) is not None
        await pilot.press("alt+d")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        assert await wait_for(pilot, lambda: all(c.id != cid for c in app.conversations))
        assert await wait_for(pilot, lambda: not app.store.outbox_rows(), timeout=15)
        [conv] = [c for c in await server_api("bob").list_conversations() if c.id == cid]
        assert conv.members == ("bob", "carol")


async def test_alt_c_and_alt_d_from_a_terminal_work_while_the_composer_has_focus(
        server, login, make_app):
    """A terminal sends alt+letter as ESC and the letter, which Textual's parser turns
    into a key ``alt+c`` that carries the character ``c``: the composer must leave it to
    the binding, not type the letter (the pilot's ``press("alt+c")`` carries none)."""
    from textual import events

    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app))
        cid = app.engine.create_conversation("Plans", ["bob"])
        app.screen.open_conversation(cid)
        assert await wait_for(pilot, lambda: shown(app, cid))
        composer = app.screen.composer
        composer.focus()
        await pilot.pause()
        app.post_message(events.Key("alt+c", "c"))
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConversationMenuScreen))
        assert composer.text == ""
        await pilot.press("escape")
        assert await wait_for(pilot, lambda: not isinstance(app.screen,
                                                            ConversationMenuScreen))
        composer.focus()
        await pilot.pause()
        app.post_message(events.Key("alt+d", "d"))
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert composer.text == ""


async def test_rule_9_the_menu_keeps_and_edits_a_multi_line_system_prompt(
        server, login, make_app, server_api):
    from textual.widgets import TextArea

    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app))
        cid = app.engine.create_conversation("Ask", assistant=True,
                                             system_prompt="line one\nline two")
        app.screen.open_conversation(cid)
        assert await wait_for(pilot, lambda: shown(app, cid))
        assert await wait_for(pilot, lambda: not app.store.outbox_rows(), timeout=15)
        await pilot.press("alt+c")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConversationMenuScreen))
        menu = app.screen
        prompt = menu.query_one("#menu-prompt", TextArea)
        assert prompt.text == "line one\nline two"
        prompt.focus()
        await pilot.pause()
        prompt.move_cursor(prompt.document.end)
        await pilot.press("enter", *"line three")  # Enter is a new line in the prompt
        assert isinstance(app.screen, ConversationMenuScreen)
        menu.submit()
        assert await wait_for(pilot, lambda: app.store.get_conversation(cid).system_prompt
                              == "line one\nline two\nline three")
        assert await wait_for(pilot, lambda: not app.store.outbox_rows(), timeout=15)
        [conv] = [c for c in await server_api("alice").list_conversations() if c.id == cid]
        assert conv.system_prompt == "line one\nline two\nline three"


async def test_rule_9_alt_c_and_alt_d_work_on_a_conversation_the_list_does_not_show_yet(
        server, login, make_app):
    """A conversation created and opened is the open one at once, while the list re-reads
    its rows only after a burst of engine events (``LIST_COALESCE``): alt+c and alt+d in
    that time act on it, and do not answer "Open a conversation first."."""
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app))
        await pilot.pause(app.screen.LIST_COALESCE * 2)  # the start's list re-reads done
        app.screen.LIST_COALESCE = 60.0  # the list re-read after the create waits
        cid = app.engine.create_conversation("Fresh", ["bob"])
        app.screen.open_conversation(cid)
        assert await wait_for(pilot, lambda: shown(app, cid))
        assert app.screen.window.get(cid) is None  # the list does not show it yet
        await pilot.press("alt+c")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConversationMenuScreen)), [
            n.message for n in app._notifications]
        assert app.screen.query_one("#menu-title", Input).value == "Fresh"
        await pilot.press("escape")
        assert await wait_for(pilot, lambda: not isinstance(app.screen,
                                                            ConversationMenuScreen))
        await pilot.press("alt+d")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen)), [
            n.message for n in app._notifications]
        await pilot.press("n")
        assert await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert app.store.get_conversation(cid) is not None

"""Sync rule 3o in the app: the new-conversation dialog (ctrl+n) checks the member names
with the server while it can be asked, says which are unknown and creates nothing; with
the names fixed it creates the conversation, which the server accepts. The real app, the
real engine, the real server over loopback; no mocks."""

from __future__ import annotations

from chat_tui.ui.screens.new_conversation import NewConversationScreen
from tests.support.truth import assert_truthful
from tests.support.ui import SIZE, online, wait_for


def dialog_error(app) -> str:
    return str(app.screen.query_one("#new-error").render())


async def test_rule_3o_dialog_names_unknown_members_and_creates_nothing(
        login, make_app, server_api):
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and app.chat.last_synced_at)
        await pilot.press("ctrl+n")
        assert await wait_for(pilot, lambda: isinstance(app.screen, NewConversationScreen))
        await pilot.press(*"Ghosts", "tab", "space", "tab", *"bob, nobody_x, Nobody_Y",
                          "enter")
        assert await wait_for(pilot, lambda: "Unknown members" in dialog_error(app))
        text = dialog_error(app)
        assert "nobody_x, nobody_y" in text and "bob" not in text
        assert "Nothing was created" in text
        assert isinstance(app.screen, NewConversationScreen)  # still open, to fix
        assert app.screen.query_one("#new-members").has_focus
        assert app.store.list_conversations() == [] and app.store.outbox_rows() == []
        assert not app.store.problems()

        app.screen.query_one("#new-members").value = "bob"
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: not isinstance(app.screen, NewConversationScreen))
        cid = app.current_id
        assert cid is not None
        assert not any("not checked" in n.message for n in app._notifications)
        await pilot.press(*"hello bob", "enter")
        assert await wait_for(pilot, lambda: not any(app.store.outbox_counts().values()),
                              timeout=15)
        assert not app.store.problems()
        await assert_truthful(pilot, app)
        page = await server_api("bob").messages(cid)
        assert [m.body for m in page.messages] == ["hello bob"]


async def test_rule_3o_dialog_cancelled_creates_nothing(login, make_app):
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and app.chat.last_synced_at)
        await pilot.press("ctrl+n")
        assert await wait_for(pilot, lambda: isinstance(app.screen, NewConversationScreen))
        await pilot.press(*"Ghosts", "tab", "space", "tab", *"nobody_x", "enter", "escape")
        assert await wait_for(pilot, lambda: not isinstance(app.screen, NewConversationScreen))
        await pilot.pause(0.5)
        assert app.store.list_conversations() == [] and app.store.outbox_rows() == []
        await assert_truthful(pilot, app)

"""The app on a Matrix account against a real Synapse: invites listed (F3) and answered,
an encrypted room marked and never written to, the assistant shown disabled
(docs/sync.md, Matrix)."""

from __future__ import annotations

from textual.widgets import Checkbox, Label, OptionList

from chat_tui.launch import configured_factory
from chat_tui.ui.app import ChatApp
from chat_tui.ui.clock import FixedClock
from chat_tui.ui.screens.invites import InvitesScreen
from chat_tui.ui.screens.new_conversation import NewConversationScreen, parse_members
from chat_tui.ui.widgets.composer import Composer
from chat_tui.ui.widgets.conversation_list import ENCRYPTED_MARK, render_conversation
from tests.matrix.conftest import FAST
from tests.support.ui import SIZE, open_store, wait_for

SLOW = 60


def test_matrix_members_are_user_ids_or_localparts() -> None:
    assert parse_members("@Bob:example.org, carol", matrix=True) == ("@bob:example.org",
                                                                     "carol")
    try:
        parse_members("@bob:example.org", matrix=False)
    except ValueError as exc:
        assert "not a valid username" in str(exc)
    else:
        raise AssertionError("a Matrix id passed as a chat-tui username")


async def test_the_app_answers_invites_marks_encrypted_rooms_and_disables_the_assistant(
        matrix_account, matrix_user, raw) -> None:
    a = matrix_account()
    bob_id, bob_name, bob_pw = matrix_user()
    bob = raw(bob_name, bob_pw)
    plain = bob.create_room("plain talk", [a.user_id])
    secret = bob.create_room("secret plans", [a.user_id], encrypted=True)
    app = ChatApp(open_store(a.account), configured_factory(a.account, FAST),
                  clock=FixedClock())
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: app.engine_ready and app.is_matrix, SLOW)
        assert await wait_for(pilot, lambda: len(app.engine.invites()) == 2, SLOW)
        await pilot.press("f3")
        assert await wait_for(pilot, lambda: isinstance(app.screen, InvitesScreen))
        listed = app.screen.query_one("#invites-list", OptionList)
        texts = [str(listed.get_option_at_index(i).prompt) for i in range(listed.option_count)]
        assert sorted(texts) == sorted([f"plain talk  from {bob_id}",
                                        f"secret plans  from {bob_id}"])
        await pilot.press("a")
        assert await wait_for(pilot, lambda: listed.option_count == 1, SLOW)
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: listed.option_count == 0, SLOW)
        await pilot.press("escape")
        assert await wait_for(pilot, lambda: {c.id for c in app.conversations}
                              == {plain, secret}, SLOW)
        assert await wait_for(pilot, lambda: [c.id for c in app.conversations
                                              if c.encrypted] == [secret], SLOW)
        marked = {c.id: render_conversation(c, current=False, width=40).plain
                  for c in app.conversations}
        assert ENCRYPTED_MARK in marked[secret] and ENCRYPTED_MARK not in marked[plain]
        # Writing into the encrypted room is refused; the text stays in the composer.
        app.open_conversation(secret)
        await pilot.pause(0.2)
        app.chat.action_focus_composer()
        await pilot.press(*"hello?", "enter")
        await pilot.pause(0.3)
        assert app.query_one(Composer).text == "hello?"
        assert app.engine.store.outbox_counts()["queued"] == 0
        assert [e for e in bob.events(secret) if e["sender"] == a.user_id
                and e["type"] == "m.room.message"] == []
        # The assistant is shown, disabled, with the reason.
        await pilot.press("ctrl+n")
        assert await wait_for(pilot, lambda: isinstance(app.screen, NewConversationScreen))
        box = app.screen.query_one("#new-assistant", Checkbox)
        assert box.disabled and not box.value
        assert "needs a chat-tui server" in str(box.label)
        assert any("Matrix user ids" in str(label.render())
                   for label in app.screen.query(Label))
        await pilot.press("escape")


async def test_the_conversation_menu_renames_invites_and_leaves_a_matrix_room(
        matrix_account, matrix_user, raw) -> None:
    from textual.widgets import Input

    from chat_tui.ui.screens.confirm import ConfirmScreen
    from chat_tui.ui.screens.conversation_menu import ConversationMenuScreen

    a = matrix_account()
    bob_id, bob_name, bob_pw = matrix_user()
    app = ChatApp(open_store(a.account), configured_factory(a.account, FAST),
                  clock=FixedClock())
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: app.engine_ready and app.is_matrix, SLOW)
        cid = app.engine.create_conversation("Plans", [])
        assert await wait_for(pilot, lambda: app.engine.store.remote_room(cid), SLOW)
        room = app.engine.store.remote_room(cid)
        app.open_conversation(cid)
        await pilot.pause(0.2)
        await pilot.press("alt+c")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConversationMenuScreen))
        menu = app.screen
        menu.query_one("#menu-title", Input).value = "Weekend"
        menu.query_one("#menu-members", Input).value = bob_name  # a localpart
        menu.submit()
        assert await wait_for(pilot, lambda: not isinstance(app.screen,
                                                            ConversationMenuScreen))
        assert await wait_for(pilot, lambda: app.engine.store.get_conversation(cid).title
                              == "Weekend")
        view = app.engine.store.get_conversation(cid)
        assert set(view.members) == {a.user_id, bob_id}, [
            n.message for n in app._notifications]
        assert await wait_for(pilot, lambda: not app.engine.store.outbox_rows(), SLOW)
        assert raw(a.localpart, a.password).membership(room, bob_id) == "invite"
        bob = raw(bob_name, bob_pw)
        bob.join(room)
        assert bob.state(room, "m.room.name") == {"name": "Weekend"}
        await pilot.press("alt+d")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        assert await wait_for(pilot, lambda: all(c.id != cid for c in app.conversations))
        assert await wait_for(pilot, lambda: not app.engine.store.outbox_rows(), SLOW)
        assert bob.membership(room, a.user_id) == "leave"

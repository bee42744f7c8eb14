"""A refused action is never a dead end: a conversation create the server refuses (an
unknown member, created while offline so the names could not be checked first) shows where
the user is looking, with the server's reason, and can be
retried, edited and discarded from the keyboard and the command palette. The real app,
the real engine, the real server over loopback; no mocks."""

from __future__ import annotations

from chat_tui.ui.screens.confirm import ConfirmScreen
from chat_tui.ui.screens.new_conversation import NewConversationScreen
from chat_tui.ui.widgets.composer import Composer
from chat_tui.ui.widgets.problems import ProblemPanel
from tests.support.truth import assert_truthful
from tests.support.ui import SIZE, create_offline, online, wait_for


async def create_refused(pilot, app, server, title: str = "Ghosts",
                         members: str = "nobody_x") -> str:
    """Offline (the server stopped: the names cannot be checked, sync rule 3o), ctrl+n, a
    title and an unknown member, Enter; then the server back: returns the new
    conversation's id once the server refused its create."""
    await create_offline(pilot, app, server, title, members)
    cid = app.current_id
    assert cid is not None
    assert any("not checked" in n.message for n in app._notifications)
    server.start()
    assert await wait_for(pilot, lambda: any(
        p.state == "failed" and p.kind == "create_conversation"
        for p in app.store.problems()), timeout=15)
    return cid


def confirm_text(app) -> str:
    """The open confirmation's question and detail, as plain text."""
    return " ".join(str(w.render()) for w in app.screen.query("Static"))


def panel_text(app) -> str:
    panel = app.query_one(ProblemPanel)
    return panel.plain_text() if panel.display else ""


async def test_refused_create_shows_the_reason_where_the_user_looks(server, login, make_app):
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app))
        await create_refused(pilot, app, server)
        await pilot.press(*"hello ghosts", "enter")  # queued behind the failed create
        assert await wait_for(pilot, lambda: "unknown" in panel_text(app).lower())
        text = panel_text(app)
        assert "new conversation" in text.lower() and "failed" in text
        assert await wait_for(pilot, lambda: "blocked" in panel_text(app))
        assert "hello ghosts" in panel_text(app)
        await assert_truthful(pilot, app)


async def test_refused_create_is_edited_from_the_keyboard_and_delivered(
        server, login, make_app, server_api):
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app))
        cid = await create_refused(pilot, app, server)
        await pilot.press(*"hello bob", "enter")
        assert await wait_for(pilot, lambda: "blocked" in panel_text(app))
        await assert_truthful(pilot, app)
        await pilot.press("ctrl+b")  # to the failed actions
        assert app.query_one(ProblemPanel).has_focus
        await pilot.press("e")  # edit the create: the dialog comes back filled in
        assert await wait_for(pilot, lambda: isinstance(app.screen, NewConversationScreen))
        members = app.screen.query_one("#new-members")
        assert members.value == "nobody_x"
        members.value = "nobody_y"  # online now: the names are checked first (rule 3o)
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: "Unknown member: nobody_y"
                              in str(app.screen.query_one("#new-error").render()))
        assert isinstance(app.screen, NewConversationScreen)
        assert app.store.outbox_row(app.store.problems()[0].outbox_id)["state"] == "failed"
        members.value = "bob"
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: not app.store.problems(), timeout=15)
        assert await wait_for(pilot, lambda: not app.query_one(ProblemPanel).display)
        await assert_truthful(pilot, app)
        page = await server_api("bob").messages(cid)
        assert [m.body for m in page.messages] == ["hello bob"]


async def test_refused_create_is_retried_then_discarded_keeping_the_text(
        server, login, make_app):
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app))
        cid = await create_refused(pilot, app, server)
        await pilot.press(*"keep this text", "enter")
        assert await wait_for(pilot, lambda: "blocked" in panel_text(app))
        seen: list[dict[str, int]] = []
        unsubscribe = app.engine.subscribe(
            lambda e: seen.append(dict(getattr(e, "counts", None) or {"failed": 1})))
        await pilot.press("ctrl+r")  # retry from the composer: queued, then refused again
        assert await wait_for(pilot, lambda: any(c.get("queued") and not c.get("failed")
                                                 for c in seen), timeout=15)
        assert await wait_for(pilot, lambda: app.store.problems()
                              and app.store.problems()[0].state == "failed", timeout=15)
        unsubscribe()
        await assert_truthful(pilot, app)
        assert not any("No failed" in n.message for n in app._notifications)
        await pilot.press("ctrl+b", "x")  # discard the create: asks first, naming what goes
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        question = confirm_text(app)
        assert "Ghosts" in question and "1 message" in question, question
        await pilot.press("n")  # kept: nothing is discarded
        assert await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert [p.kind for p in app.store.problems()] == ["create_conversation", "send"]
        assert any(c.id == cid for c in app.store.list_conversations())
        await pilot.press("ctrl+b", "x", "y")
        assert await wait_for(pilot, lambda: not app.store.problems())
        assert all(c.id != cid for c in app.store.list_conversations())
        assert await wait_for(pilot, lambda: "keep this text"
                              in app.query_one(Composer).text)
        assert await wait_for(pilot, lambda: not app.query_one(ProblemPanel).display)
        await assert_truthful(pilot, app)


async def test_refused_create_is_discarded_from_the_palette(server, login, make_app):
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app))
        cid = await create_refused(pilot, app, server)
        await pilot.press("ctrl+p")
        await pilot.press(*"discard failed action")
        await pilot.pause(0.5)
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Ghosts" in confirm_text(app)
        assert [p.kind for p in app.store.problems()] == ["create_conversation"]
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: not app.store.problems())
        assert all(c.id != cid for c in app.store.list_conversations())


async def test_discarding_a_failed_message_from_the_panel_asks_first(server, login,
                                                                     make_app):
    """``x`` in the panel on a message behind a refused create asks, naming the message;
    Esc keeps it."""
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app))
        await create_refused(pilot, app, server)
        await pilot.press(*"second thoughts", "enter")
        assert await wait_for(pilot, lambda: "blocked" in panel_text(app))
        await pilot.press("ctrl+b", "down", "x")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "second thoughts" in confirm_text(app)
        await pilot.press("escape")
        assert await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert [p.kind for p in app.store.problems()] == ["create_conversation", "send"]
        await pilot.press("x", "y")
        assert await wait_for(pilot, lambda: [p.kind for p in app.store.problems()]
                              == ["create_conversation"])
        assert await wait_for(pilot, lambda: "second thoughts"
                              in app.query_one(Composer).text)
        await assert_truthful(pilot, app)


async def test_rule_3a_a_message_queued_before_the_refusal_shows_blocked(server, login,
                                                                          make_app):
    """Written offline in the new conversation, then the create is refused: the message
    waiting behind it shows blocked at once (not queued), as the cache has it."""
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app))
        await create_offline(pilot, app, server)
        messages = app.chat.messages
        await pilot.press(*"written before", "enter")
        assert await wait_for(pilot, lambda: [v.state for v in messages.views] == ["queued"])
        server.start()
        assert await wait_for(pilot, lambda: [v.state for v in messages.views] == ["blocked"],
                              timeout=15)
        await assert_truthful(pilot, app)


async def test_offline_banner_names_a_queued_create_apart_from_messages(server, login,
                                                                        make_app):
    """Offline, a new conversation and one message in it: the banner says one message and
    one new conversation will be sent, never "2 messages" (the truth helper checks its
    words against the outbox by kind)."""
    from chat_tui.ui.widgets.status import OfflineBanner

    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app))
        await create_offline(pilot, app, server, "Plans", "bob")
        await pilot.press(*"see you", "enter")
        banner = app.query_one(OfflineBanner)
        assert await wait_for(pilot, lambda: "1 message and 1 new conversation will be sent"
                              in str(banner.render()))
        assert "2 messages" not in str(banner.render())
        await assert_truthful(pilot, app)


async def test_offline_banner_promises_no_send_for_actions_that_wait_for_the_user(
        server, login, make_app):
    """A refused create and the message blocked behind it, then offline: the banner does
    not say they will be sent when the connection returns (they wait for the user's retry,
    edit or discard); it says they wait for the user, and where (the truth helper checks
    both counts against the outbox)."""
    from chat_tui.ui.widgets.status import OfflineBanner

    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app))
        await create_refused(pilot, app, server)
        await pilot.press(*"hello ghosts", "enter")  # blocked behind the failed create
        assert await wait_for(pilot, lambda: "blocked" in panel_text(app))
        server.stop()
        assert await wait_for(pilot, lambda: app.connectivity == "offline")
        banner = app.query_one(OfflineBanner)
        assert await wait_for(pilot, lambda: "2 actions wait for you" in str(banner.render()))
        assert "will be sent" not in str(banner.render())
        await assert_truthful(pilot, app)


async def test_a_discarded_create_puts_its_text_in_the_next_conversation_ready_to_type_on(
        server, login, make_app, server_api):
    """With another conversation to go to, a discarded create's text lands in that
    conversation's composer with the cursor after it: what is typed next follows the text
    instead of being glued in front of it."""
    from tests.support.ui import shared_conversation

    _, other, _ = await shared_conversation(server_api, title="Plans", bodies=("hi",))
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and app.current_id == other)
        await create_refused(pilot, app, server)
        await pilot.press(*"keep this text", "enter")
        assert await wait_for(pilot, lambda: "blocked" in panel_text(app))
        await pilot.press("ctrl+b", "x")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        composer = app.query_one(Composer)
        assert await wait_for(pilot, lambda: app.current_id == other
                              and composer.text == "keep this text")
        await pilot.press(*" and more")
        assert composer.text == "keep this text and more"
        await assert_truthful(pilot, app)

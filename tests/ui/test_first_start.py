"""Truthful first start: an account with no conversations shows, once the first sync has
finished, an empty state that says what to do next (ctrl+n, or wait for others), never an
endless "Connecting to the server..."; a conversation that arrives later replaces it. The
real app, engine and server over loopback."""

from __future__ import annotations

from tests.support.truth import assert_truthful
from tests.support.ui import SIZE, online, shared_conversation, shown, wait_for


def skeleton_text(app) -> str:
    return str(app.query_one("#skeleton-status").render())


async def test_empty_account_says_what_to_do_next(login, make_app, server_api):
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and app.chat.last_synced_at)
        assert await wait_for(pilot, lambda: "ctrl+n" in skeleton_text(app))
        text = skeleton_text(app)
        assert "Connecting" not in text and "No conversations yet" in text
        assert app.query_one("#skeleton").display and not app.conversations
        await assert_truthful(pilot, app)
        rows = app.query(".skeleton-line")
        assert rows and not any(r.display for r in rows)  # no rows pretending to load
        # bob starts a conversation with alice: it replaces the empty state
        _, cid, _ = await shared_conversation(server_api, bodies=("welcome",))
        assert await wait_for(pilot, lambda: shown(app, cid), timeout=15)
        assert await wait_for(pilot, lambda: not app.query_one("#skeleton").display)
        await assert_truthful(pilot, app)


async def test_text_typed_before_any_conversation_is_kept(login, make_app, server_api):
    """With no conversation open, Enter sends nothing and says why, and what was typed
    stays in the composer: across a restart, and into the first conversation that opens
    (one someone else starts here)."""
    from chat_tui.ui.widgets.composer import Composer

    account = login("alice")
    app = make_app(account)
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and "ctrl+n" in skeleton_text(app))
        await pilot.press(*"is anyone here", "enter")
        composer = app.query_one(Composer)
        assert await wait_for(pilot, lambda: any(
            "No conversation is open" in str(n.message) for n in app._notifications))
        assert composer.text == "is anyone here"
    app = make_app(account)  # a restart: the text comes back
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: app.chat.composer is not None
                              and app.chat.composer.text == "is anyone here")
        composer = app.query_one(Composer)
        assert await wait_for(pilot, lambda: online(app))
        _, cid, _ = await shared_conversation(server_api, bodies=("welcome",))
        assert await wait_for(pilot, lambda: shown(app, cid), timeout=15)
        await pilot.pause(0.5)
        assert composer.text == "is anyone here"
        await pilot.press("enter")
        messages = app.chat.messages
        assert await wait_for(pilot, lambda: messages.views[-1].body == "is anyone here")
        assert composer.text == ""
        await assert_truthful(pilot, app)

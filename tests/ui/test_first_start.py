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

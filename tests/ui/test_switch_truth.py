"""Switching conversations by key while replies arrive: each switch makes a read marker
that the engine sends at once, and after every step everything drawn (the outbox
indicator in the title bar above all) agrees with the cache (tests/support/truth.py).
Real server process, real engine, real cache."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from chat_tui.api import ApiClient
from tests.support.accounts import PASSWORDS
from tests.support.truth import assert_truthful
from tests.support.ui import SIZE, online, wait_for
from tests.ui.test_snapshots import BOOK_CLUB, WEEKEND, _seed


@asynccontextmanager
async def _alice_with_bob(server, login, make_app) -> AsyncIterator[tuple]:
    """alice's app over the two seeded conversations, online, synced, one of them open,
    and bob's API client: ``(app, pilot, conversation ids by title, bob)``."""
    ids = await _seed(server, {"Weekend hike": WEEKEND, "Book club": BOOK_CLUB})
    app = make_app(login("alice"))
    token = server.login("bob", PASSWORDS["bob"], device="replies")["access_token"]
    bob = ApiClient(server.url, token)
    try:
        async with app.run_test(size=SIZE) as pilot:
            assert await wait_for(pilot, lambda: online(app) and app.sync_phase[0] == "idle"
                                  and app.current_id is not None)
            yield app, pilot, ids, bob
    finally:
        await bob.aclose()


async def _bob_writes_in_the_other(app, pilot, ids: dict[str, str], bob, body: str) -> str:
    """bob writes ``body`` in the conversation alice has not open; returns its id once it
    is at the top of alice's list with unread messages."""
    other = next(c for c in ids.values() if c != app.current_id)
    await bob.put_message(other, str(uuid.uuid4()), body)
    rows = app.chat.conversation_list
    assert await wait_for(pilot, lambda: rows.conversations[0].id == other
                          and rows.conversations[0].unread_count > 0)
    return other


async def test_switching_by_key_keeps_the_outbox_indicator_true(server, login, make_app):
    async with _alice_with_bob(server, login, make_app) as (app, pilot, ids, bob):
        for step in range(12):
            other = await _bob_writes_in_the_other(app, pilot, ids, bob, f"news {step}")
            await pilot.press("alt+up")  # the conversation the reply moved to the top
            assert await wait_for(pilot, lambda o=other: app.current_id == o)
            await assert_truthful(pilot, app)
        assert await wait_for(pilot, lambda: not any(app.store.outbox_counts().values()),
                              timeout=15)
        await assert_truthful(pilot, app)


async def test_a_read_marker_queued_offline_is_not_shown_as_queued(server, login, make_app,
                                                                    server_api):
    """Opening a conversation with a new message while offline queues its read marker.
    The outbox indicator counts my actions, as the offline banner, the problems panel and
    the list's queued counts do: a read marker is the engine's bookkeeping, so nothing
    says an action waits, and the marker is sent once the server is back."""
    async with _alice_with_bob(server, login, make_app) as (app, pilot, ids, bob):
        other = await _bob_writes_in_the_other(app, pilot, ids, bob, "are you coming?")
        server.stop()
        assert await wait_for(pilot, lambda: app.connectivity == "offline")
        await pilot.press("alt+up")
        assert await wait_for(pilot, lambda: app.current_id == other)
        assert await wait_for(pilot, lambda: [
            (o.kind, o.state) for o in app.store.outbox_list()] == [("read", "queued")])
        await pilot.pause()
        assert not app.chat.queue_indicator.display
        assert app.chat.banner.display
        assert "will be sent" not in str(app.chat.banner.render())
        await assert_truthful(pilot, app)

        server.start()
        assert await wait_for(pilot, lambda: app.store.outbox_list() == [], timeout=20)
        await assert_truthful(pilot, app)
    unread = {c.id: c.unread_count for c in await server_api("alice").list_conversations()}
    assert unread[other] == 0

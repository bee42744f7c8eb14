"""Snapshot tests (pytest-textual-snapshot, SVGs in ``tests/ui/__snapshots__/``) of the
states that matter to a user: an online conversation, offline with queued messages, a failed and
a blocked message, search results, the empty-cache skeleton and the help screen.

Real server process, real engine, real caches. Deterministic: fixed size, fixed names and
titles, a :class:`FixedClock` with ``frozen_display`` (every time shown is 14:05, no wall
clock), animations off, and each state is waited for (online, sync idle, outbox settled)
before the screenshot. Update with ``pytest tests/ui --snapshot-update`` after checking the
new pictures.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from chat_tui.api import ApiClient
from chat_tui.ui.clock import FixedClock
from chat_tui.ui.screens.help import HelpScreen
from chat_tui.ui.screens.search import SearchScreen
from chat_tui.ui.widgets.message_list import MessageList
from tests.support.accounts import PASSWORDS
from tests.support.fault_proxy import FaultProxy
from tests.support.ui import SIZE, wait_for

WEEKEND = (
    ("bob", "Are we still on for the hike on Saturday?"),
    ("alice", "Yes! Trailhead at 9, I will bring the map."),
    ("bob", "Great. Weather says sunny, 18 degrees."),
    ("bob", "Can you also bring the small stove? Mine is broken."),
)
BOOK_CLUB = (
    ("bob", "Next book: *The Left Hand of Darkness*?"),
    ("bob", "Or something shorter, we only have three weeks."),
)


async def _seed(server, conversations) -> dict[str, str]:
    """Create ``conversations`` (title -> ((author, body), ...)) on the server, oldest
    first; returns title -> conversation id."""
    clients = {}
    for name in ("alice", "bob"):
        token = server.login(name, PASSWORDS[name], device="seed")["access_token"]
        clients[name] = ApiClient(server.url, token)
    ids = {}
    try:
        for title, messages in conversations.items():
            cid = str(uuid.UUID(int=len(ids) + 1))
            await clients["bob"].put_conversation(cid, title, ["alice"], False)
            for author, body in messages:
                await clients[author].put_message(cid, str(uuid.uuid4()), body)
            ids[title] = cid
    finally:
        for client in clients.values():
            await client.aclose()
    return ids


def seed(server, conversations) -> dict[str, str]:
    return asyncio.run(_seed(server, conversations))


@pytest.fixture
def snap_app(make_app):
    def make(account, *, engine: bool = True):
        app = make_app(account, engine=engine, clock=FixedClock(frozen_display=True))
        app.animation_level = "none"
        return app

    return make


def settled(app, cid: str, count: int) -> bool:
    """Online, initial sync done, the outbox empty, ``cid`` open with ``count`` messages
    and no unread marker pending."""
    conv = app.current_conversation
    messages = app.query_one(MessageList)
    return (app.engine_ready and app.connectivity == "online" and app.sync_phase[0] == "idle"
            and not app.refresh_pending
            and not any(app.outbox.values()) and app.current_id == cid
            and conv is not None and conv.unread_count == 0
            and len(messages.views) == count and len(messages._items) == count)


def test_online_conversation(server, login, snap_app, snap_compare):
    ids = seed(server, {"Book club": BOOK_CLUB, "Weekend hike": WEEKEND})
    app = snap_app(login("alice"))
    cid = ids["Weekend hike"]

    async def run_before(pilot):
        assert await wait_for(pilot, lambda: settled(app, cid, len(WEEKEND)))
        await pilot.press(*"Sure, I will pack it tonight.", "enter")
        assert await wait_for(pilot, lambda: app.query_one(MessageList).views[-1].state == "sent"
                              and settled(app, cid, len(WEEKEND) + 1))

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_offline_with_queued_messages(server, login, snap_app, snap_compare):
    ids = seed(server, {"Book club": BOOK_CLUB, "Weekend hike": WEEKEND})
    app = snap_app(login("alice"))
    cid = ids["Weekend hike"]

    async def run_before(pilot):
        assert await wait_for(pilot, lambda: settled(app, cid, len(WEEKEND)))
        # the open conversation's read marker can be queued just after it settles:
        # settled again, so the server stops with nothing of the app's left to send
        await pilot.pause(0.5)
        assert await wait_for(pilot, lambda: settled(app, cid, len(WEEKEND)))
        server.stop()
        assert await wait_for(pilot, lambda: app.connectivity == "offline")
        await pilot.press(*"Stove packed.", "enter")
        await pilot.press(*"Leaving at 8:30, see you there!", "enter")
        messages = app.query_one(MessageList)
        assert await wait_for(pilot, lambda: [v.state for v in messages.views[-2:]]
                              == ["queued", "queued"] and len(messages._items) == 6
                              and app.current_conversation.queued_count == 2
                              and not app.refresh_pending)

    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    finally:
        if not server.running:
            server.start()


def test_failed_and_blocked_message(server, login, snap_app, snap_compare):
    ids = seed(server, {"Weekend hike": WEEKEND})
    cid = ids["Weekend hike"]
    with FaultProxy(server.url) as proxy:
        app = snap_app(login("alice", url=proxy.url))

        async def run_before(pilot):
            assert await wait_for(pilot, lambda: settled(app, cid, len(WEEKEND)))
            proxy.respond(422, method="PUT", path_contains="/messages/", count=1)
            await pilot.press(*"This one is refused by the server.", "enter")
            messages = app.query_one(MessageList)
            assert await wait_for(pilot, lambda: messages.views[-1].state == "failed")
            await pilot.press(*"And this one waits behind it.", "enter")
            assert await wait_for(pilot, lambda: [v.state for v in messages.views[-2:]]
                                  == ["failed", "blocked"] and len(messages._items) == 6
                                  and app.current_conversation.queued_count == 2
                                  and not app.refresh_pending)
            # the problem panel takes its lines above the composer; the list lays out again
            assert await wait_for(pilot, lambda: "blocked" in app.query_one(
                "#problems").plain_text())
            await pilot.pause(0.3)
            await pilot.pause()

        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_search_results(server, login, snap_app, snap_compare):
    ids = seed(server, {"Book club": BOOK_CLUB, "Weekend hike": WEEKEND})
    app = snap_app(login("alice"))
    cid = ids["Weekend hike"]

    async def run_before(pilot):
        assert await wait_for(pilot, lambda: settled(app, cid, len(WEEKEND)))
        await pilot.press("ctrl+f", *"bring")
        assert isinstance(app.screen, SearchScreen)
        assert await wait_for(pilot, lambda: len(app.screen.hits) == 2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_empty_cache_skeleton(login, snap_app, snap_compare):
    # First login, before the engine has synced anything: the skeleton, never a blank screen.
    app = snap_app(login("alice"), engine=False)
    assert snap_compare(app, terminal_size=SIZE)


def test_help_screen(server, login, snap_app, snap_compare):
    ids = seed(server, {"Weekend hike": WEEKEND})
    app = snap_app(login("alice"))
    cid = ids["Weekend hike"]

    async def run_before(pilot):
        assert await wait_for(pilot, lambda: settled(app, cid, len(WEEKEND)))
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)

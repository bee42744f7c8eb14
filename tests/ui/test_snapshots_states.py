"""Snapshot tests (pytest-textual-snapshot) of the states a user must never be stuck in:
a conversation create the server refused (with a message blocked behind it), its failure
mark in the conversation list while another conversation is open, the login-needed banner, the empty first start after the first sync, and the main screen and
its dialogs at the smallest supported size, 60x20.

Real server process, real engine, real caches; deterministic as in test_snapshots.py
(fixed size and names, a frozen display clock, animations off, each state waited for).
Update with ``pytest tests/ui --snapshot-update`` after checking the new pictures.
"""

from __future__ import annotations

import asyncio

from chat_tui.api import ApiClient
from chat_tui.config import load_token
from chat_tui.launch import configured_factory
from chat_tui.store import Cache
from chat_tui.ui.app import ChatApp
from chat_tui.ui.clock import FixedClock
from chat_tui.ui.screens.confirm import ConfirmScreen
from chat_tui.ui.screens.new_conversation import NewConversationScreen
from chat_tui.ui.widgets.login import LoginBanner
from chat_tui.ui.widgets.problems import ProblemPanel
from tests.support.truth import assert_truthful
from tests.support.ui import SIZE, wait_for
from tests.ui.test_snapshots import WEEKEND, seed, settled, snap_app  # noqa: F401

SMALL = (60, 20)


def test_failed_conversation_create(server, login, snap_app, snap_compare):  # noqa: F811
    # Created offline (the member names cannot be checked then, sync rule 3o), refused by
    # the server once it is back.
    app = snap_app(login("alice"))

    async def run_before(pilot):
        assert await wait_for(pilot, lambda: app.engine_ready and app.connectivity == "online"
                              and app.chat.last_synced_at)
        server.stop()
        assert await wait_for(pilot, lambda: app.connectivity == "offline")
        await pilot.press("ctrl+n")
        assert await wait_for(pilot, lambda: isinstance(app.screen, NewConversationScreen))
        await pilot.press(*"Ghosts", "tab", "space", "tab", *"nobody_x", "enter")
        assert await wait_for(pilot, lambda: app.current_id is not None)
        await pilot.press(*"hello?", "enter")
        server.start()
        assert await wait_for(pilot, lambda: [p.state for p in app.store.problems()]
                              == ["failed", "blocked"], timeout=15)
        assert await wait_for(pilot, lambda: app.query(ProblemPanel)
                              and "blocked" in app.query_one(ProblemPanel).plain_text()
                              and app.connectivity == "online" and app.sync_phase[0] == "idle")
        await assert_truthful(pilot, app)
        app.clear_notifications()  # the note that the names were not checked
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_failure_mark_in_the_list(server, login, snap_app, snap_compare):  # noqa: F811
    ids = seed(server, {"Weekend hike": WEEKEND})
    app = snap_app(login("alice"))
    cid = ids["Weekend hike"]

    async def run_before(pilot):
        assert await wait_for(pilot, lambda: settled(app, cid, len(WEEKEND)))
        server.stop()
        assert await wait_for(pilot, lambda: app.connectivity == "offline")
        await pilot.press("ctrl+n")
        assert await wait_for(pilot, lambda: isinstance(app.screen, NewConversationScreen))
        await pilot.press(*"Ghosts", "tab", "space", "tab", *"nobody_x", "enter")
        assert await wait_for(pilot, lambda: app.current_id not in (None, cid))
        await pilot.press(*"hello?", "enter")
        assert await wait_for(pilot, lambda: app.chat.messages.views)
        await pilot.press("alt+down")
        assert await wait_for(pilot, lambda: app.current_id == cid)
        server.start()
        assert await wait_for(pilot, lambda: [p.state for p in app.store.problems()]
                              == ["failed", "blocked"], timeout=15)
        assert await wait_for(pilot, lambda: app.connectivity == "online"
                              and app.sync_phase[0] == "idle" and not app.refresh_pending
                              and app.outbox.get("failed") == 1)
        await assert_truthful(pilot, app)
        app.clear_notifications()  # the note that the names were not checked
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_login_needed_banner(server, login, ui_settings, snap_compare):
    # The token is revoked before the start: the first sync gets a 401. The cache names no
    # server URL (as the local account's), so the sentence holds no random port; the
    # command naming the server is checked by tests/ui/test_login_state.py.
    ids = seed(server, {"Weekend hike": WEEKEND})
    account = login("alice")

    async def revoke():
        async with ApiClient(account.server_url, load_token(account)) as device:
            await device.logout()

    asyncio.run(revoke())
    store = Cache(account.db_path, account.username)
    store.open()
    app = ChatApp(store, configured_factory(account, ui_settings),
                  clock=FixedClock(frozen_display=True))
    app.animation_level = "none"

    async def run_before(pilot):
        assert await wait_for(pilot, lambda: app.query(LoginBanner)
                              and app.query_one(LoginBanner).display, timeout=15)
        assert ids["Weekend hike"] not in [c.id for c in app.conversations]
        await assert_truthful(pilot, app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_empty_first_start(login, snap_app, snap_compare):  # noqa: F811
    app = snap_app(login("alice"))

    async def run_before(pilot):
        assert await wait_for(pilot, lambda: app.engine_ready and app.connectivity == "online"
                              and app.chat.last_synced_at and app.sync_phase[0] == "idle")
        await assert_truthful(pilot, app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_main_screen_60x20(server, login, snap_app, snap_compare):  # noqa: F811
    ids = seed(server, {"Weekend hike": WEEKEND})
    app = snap_app(login("alice"))
    cid = ids["Weekend hike"]

    async def run_before(pilot):
        assert await wait_for(pilot, lambda: settled(app, cid, len(WEEKEND)))
        await assert_truthful(pilot, app)

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def test_new_conversation_dialog_60x20(server, login, snap_app, snap_compare):  # noqa: F811
    ids = seed(server, {"Weekend hike": WEEKEND})
    app = snap_app(login("alice"))
    cid = ids["Weekend hike"]

    async def run_before(pilot):
        assert await wait_for(pilot, lambda: settled(app, cid, len(WEEKEND)))
        await pilot.press("ctrl+n")
        assert await wait_for(pilot, lambda: isinstance(app.screen, NewConversationScreen))
        await pilot.pause(0.3)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def test_delete_confirmation_60x20(server, login, snap_app, snap_compare):  # noqa: F811
    ids = seed(server, {"Weekend hike": WEEKEND})
    app = snap_app(login("alice"))
    cid = ids["Weekend hike"]

    async def run_before(pilot):
        assert await wait_for(pilot, lambda: settled(app, cid, len(WEEKEND)))
        await pilot.press("ctrl+t", "up", "up")  # alice's message
        assert app.chat.messages.selected_view().author == "alice"
        await pilot.press("d")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)

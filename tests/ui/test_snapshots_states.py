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
from tests.support.ui import SIZE, create_offline, wait_for
from tests.ui.test_snapshots import WEEKEND, seed, settled, snap_app  # noqa: F401

SMALL = (60, 20)


def _weekend_app(server, login, make) -> tuple[ChatApp, str]:
    """Alice's snapshot app (``make``: the ``snap_app`` fixture) with "Weekend hike"
    (:data:`WEEKEND`) seeded on the server; returns ``(app, that conversation's id)``."""
    ids = seed(server, {"Weekend hike": WEEKEND})
    return make(login("alice")), ids["Weekend hike"]


def _app_of_a_revoked_login(server, login, ui_settings) -> tuple[ChatApp, dict[str, str]]:
    """Alice's app (frozen display clock, no animations) whose token is revoked before the
    start, over a cache that names no server URL, with "Weekend hike" seeded on the
    server; returns ``(app, title -> conversation id)``."""
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
    return app, ids


async def _login_banner_shown(pilot, app) -> None:
    """Wait (15 s at most) until the login-needed banner shows."""
    assert await wait_for(pilot, lambda: app.query(LoginBanner)
                          and app.query_one(LoginBanner).display, timeout=15)


def test_failed_conversation_create(server, login, snap_app, snap_compare):  # noqa: F811
    # Created offline (the member names cannot be checked then, sync rule 3o), refused by
    # the server once it is back.
    app = snap_app(login("alice"))

    async def run_before(pilot):
        await _refused_create_here(pilot, app, server)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_failure_mark_in_the_list(server, login, snap_app, snap_compare):  # noqa: F811
    app, cid = _weekend_app(server, login, snap_app)

    async def run_before(pilot):
        assert await wait_for(pilot, lambda: settled(app, cid, len(WEEKEND)))
        await create_offline(pilot, app, server)
        assert await wait_for(pilot, lambda: app.current_id not in (None, cid))
        await pilot.press(*"hello?", "enter")
        assert await wait_for(pilot, lambda: app.chat.messages.views)
        await pilot.press("alt+down")
        assert await wait_for(pilot, lambda: app.current_id == cid)
        await _refused_when_back(pilot, app, server)
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
    app, ids = _app_of_a_revoked_login(server, login, ui_settings)

    async def run_before(pilot):
        await _login_banner_shown(pilot, app)
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
    app, cid = _weekend_app(server, login, snap_app)

    async def run_before(pilot):
        assert await wait_for(pilot, lambda: settled(app, cid, len(WEEKEND)))
        await assert_truthful(pilot, app)

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def test_new_conversation_dialog_60x20(server, login, snap_app, snap_compare):  # noqa: F811
    app, cid = _weekend_app(server, login, snap_app)

    async def run_before(pilot):
        assert await wait_for(pilot, lambda: settled(app, cid, len(WEEKEND)))
        await pilot.press("ctrl+n")
        assert await wait_for(pilot, lambda: isinstance(app.screen, NewConversationScreen))
        await pilot.pause(0.3)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def test_delete_confirmation_60x20(server, login, snap_app, snap_compare):  # noqa: F811
    app, cid = _weekend_app(server, login, snap_app)

    async def run_before(pilot):
        assert await wait_for(pilot, lambda: settled(app, cid, len(WEEKEND)))
        await pilot.press("ctrl+t", "up", "up")  # alice's message
        assert app.chat.messages.selected_view().author == "alice"
        await pilot.press("d")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


async def _refused_when_back(pilot, app, server) -> None:
    """The server started again: the create is refused (failed) and the message written
    behind it blocked."""
    server.start()
    assert await wait_for(pilot, lambda: [p.state for p in app.store.problems()]
                          == ["failed", "blocked"], timeout=15)


async def _refused_create_here(pilot, app, server) -> None:
    """Offline, ctrl+n with an unknown member and a message written behind it; the server
    back: the create is refused (failed) and the message blocked behind it."""
    assert await wait_for(pilot, lambda: app.engine_ready and app.connectivity == "online"
                          and app.chat.last_synced_at)
    await create_offline(pilot, app, server)
    assert await wait_for(pilot, lambda: app.current_id is not None)
    await pilot.press(*"hello?", "enter")
    await _refused_when_back(pilot, app, server)
    assert await wait_for(pilot, lambda: app.query(ProblemPanel)
                          and "blocked" in app.query_one(ProblemPanel).plain_text()
                          and app.connectivity == "online" and app.sync_phase[0] == "idle")
    await assert_truthful(pilot, app)
    app.clear_notifications()  # the note that the names were not checked


def test_problem_panel_60x20(server, login, snap_app, snap_compare):  # noqa: F811
    # The panel focused (ctrl+b): a refused create and the message blocked behind it,
    # each with its reason, and the keys, within 60 columns.
    app = snap_app(login("alice"))

    async def run_before(pilot):
        await _refused_create_here(pilot, app, server)
        await pilot.press("ctrl+b")
        assert app.query_one(ProblemPanel).has_focus
        await pilot.pause()
        panel = app.query_one(ProblemPanel)
        assert "r/e/x, Esc" in panel.plain_text().splitlines()[0]
        assert "unknown usernames: nobody_x" in panel.plain_text()

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def test_discard_confirmation_60x20(server, login, snap_app, snap_compare):  # noqa: F811
    # ctrl+b, x on the refused create: the question names the conversation and what
    # waits behind it.
    app = snap_app(login("alice"))

    async def run_before(pilot):
        await _refused_create_here(pilot, app, server)
        await pilot.press("ctrl+b", "x")
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)


def test_login_needed_banner_60x20(server, login, ui_settings, snap_compare):
    # As test_login_needed_banner, at the smallest supported size: the whole sentence
    # (what to run) is shown.
    app, _ = _app_of_a_revoked_login(server, login, ui_settings)

    async def run_before(pilot):
        await _login_banner_shown(pilot, app)
        await assert_truthful(pilot, app)

    assert snap_compare(app, terminal_size=SMALL, run_before=run_before)

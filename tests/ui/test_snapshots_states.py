"""Snapshot tests (pytest-textual-snapshot) of the states a user must never be stuck in:
a conversation create the server refused (with a message blocked behind it), the
login-needed banner, the empty first start after the first sync, and the main screen and
its dialogs at the smallest supported size, 60x20.

Real server process, real engine, real caches; deterministic as in test_snapshots.py
(fixed size and names, a frozen display clock, animations off, each state waited for).
Update with ``pytest tests/ui --snapshot-update`` after checking the new pictures.
"""

from __future__ import annotations

from chat_tui.api import ApiClient
from chat_tui.config import load_token
from chat_tui.ui.screens.confirm import ConfirmScreen
from chat_tui.ui.screens.new_conversation import NewConversationScreen
from chat_tui.ui.widgets.login import LoginBanner
from chat_tui.ui.widgets.problems import ProblemPanel
from tests.support.truth import assert_truthful
from tests.support.ui import SIZE, wait_for
from tests.ui.test_snapshots import WEEKEND, seed, settled, snap_app  # noqa: F401

SMALL = (60, 20)


def test_failed_conversation_create(login, snap_app, snap_compare):  # noqa: F811
    app = snap_app(login("alice"))

    async def run_before(pilot):
        assert await wait_for(pilot, lambda: app.engine_ready and app.connectivity == "online"
                              and app.chat.last_synced_at)
        await pilot.press("ctrl+n")
        assert await wait_for(pilot, lambda: isinstance(app.screen, NewConversationScreen))
        await pilot.press(*"Ghosts", "tab", "space", "tab", *"nobody_x", "enter")
        assert await wait_for(pilot, lambda: app.current_id is not None)
        await pilot.press(*"hello?", "enter")
        assert await wait_for(pilot, lambda: [p.state for p in app.store.problems()]
                              == ["failed", "blocked"], timeout=15)
        panel = app.query_one(ProblemPanel)
        assert await wait_for(pilot, lambda: "blocked" in panel.plain_text())
        await assert_truthful(pilot, app)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_login_needed_banner(server, login, snap_app, snap_compare):  # noqa: F811
    ids = seed(server, {"Weekend hike": WEEKEND})
    account = login("alice")
    app = snap_app(account)
    cid = ids["Weekend hike"]

    async def run_before(pilot):
        assert await wait_for(pilot, lambda: settled(app, cid, len(WEEKEND)))
        async with ApiClient(account.server_url, load_token(account)) as device:
            await device.logout()
        assert await wait_for(pilot, lambda: app.query(LoginBanner)
                              and app.query_one(LoginBanner).display, timeout=15)
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

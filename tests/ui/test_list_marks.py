"""Failure marks in the conversation list: a conversation with an action that waits for
the user (failed, blocked or expired) carries a mark in the list while another
conversation is open, and loses it once the action is answered. The real app, engine and
server over loopback; the create is made offline (member names cannot be checked then)
and refused by the server once it is back."""

from __future__ import annotations

from chat_tui.ui.screens.confirm import ConfirmScreen
from chat_tui.ui.widgets.conversation_list import PROBLEM_MARK
from tests.support.truth import assert_truthful
from tests.support.ui import SIZE, create_offline, online, shared_conversation, shown, wait_for


def row_text(app, cid: str) -> str:
    """The drawn row of conversation ``cid`` (plain text), or "" when it has none."""
    clist = app.chat.conversation_list
    try:
        prompt = clist.get_option(cid).prompt
    except Exception:  # noqa: BLE001 - no such option
        return ""
    return getattr(prompt, "plain", str(prompt))


async def offline_create(pilot, app, server, title: str, members: str) -> str:
    """Stop the server, create ``title`` with ``members`` from ctrl+n, type a message in
    it; returns its id (queued, not yet refused)."""
    await create_offline(pilot, app, server, title, members)
    cid = app.current_id
    assert await wait_for(pilot, lambda: app.chat.messages.conversation_id == cid)
    await pilot.press(*"hello ghosts", "enter")
    assert await wait_for(pilot, lambda: app.chat.messages.views)
    return cid


async def test_failed_action_marks_its_conversation_in_the_list(
        server, login, make_app, server_api):
    _, plans, _ = await shared_conversation(server_api, bodies=("hi",))
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and shown(app, plans))
        ghosts = await offline_create(pilot, app, server, "Ghosts", "nobody_x")
        await assert_truthful(pilot, app)
        assert PROBLEM_MARK not in row_text(app, ghosts)  # queued: nothing failed yet
        await pilot.press("alt+down")  # the other conversation, by key
        assert await wait_for(pilot, lambda: shown(app, plans))
        server.start()
        assert await wait_for(pilot, lambda: [p.state for p in app.store.problems()]
                              == ["failed", "blocked"], timeout=15)
        # Ghosts is not open: its failed create and blocked message show as its mark
        assert await wait_for(pilot, lambda: f"{PROBLEM_MARK}2" in row_text(app, ghosts))
        assert PROBLEM_MARK not in row_text(app, plans)
        await assert_truthful(pilot, app)

        await pilot.press("alt+up")  # back to Ghosts: retry from the keyboard
        assert await wait_for(pilot, lambda: shown(app, ghosts))
        await assert_truthful(pilot, app)
        await pilot.press("ctrl+b", "x")  # discard the create (asked first): the mark goes
        assert await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        assert await wait_for(pilot, lambda: not app.store.problems())
        assert await wait_for(pilot, lambda: not row_text(app, ghosts))
        assert PROBLEM_MARK not in row_text(app, plans)
        await assert_truthful(pilot, app)

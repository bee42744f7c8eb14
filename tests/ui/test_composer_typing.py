"""Typing fast: Enter sends everything typed before it. A burst of keys (what
``tmux send-keys 'third msg' Enter`` delivers) reaches the composer before Enter sends, so
Enter is not a priority binding that would run ahead of the queued characters."""

from __future__ import annotations

from textual import events

from chat_tui.ui.widgets.composer import Composer
from chat_tui.ui.widgets.message_list import MessageList
from tests.support.truth import assert_truthful
from tests.support.ui import SIZE, online, shared_conversation, shown, wait_for


def burst(app, text: str, *, then: str = "enter") -> None:
    """Queue key events for ``text`` and ``then`` at once, as a terminal delivers a fast burst
    (no pause between keys, unlike ``pilot.press``)."""
    for ch in text:
        app.post_message(events.Key("space" if ch == " " else ch, ch))
    app.post_message(events.Key(then, "\r" if then == "enter" else None))


async def test_enter_after_a_burst_sends_every_character(login, make_app, server_api):
    bob, cid, _ = await shared_conversation(server_api, bodies=("hi",))
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and shown(app, cid))
        composer = app.query_one(Composer)
        assert composer.has_focus
        burst(app, "third message typed fast")
        messages = app.query_one(MessageList)
        assert await wait_for(pilot, lambda: [v.body for v in messages.views][-1:]
                              == ["third message typed fast"])
        assert composer.text == ""
        assert await wait_for(pilot, lambda: messages.views[-1].state == "sent")
        await assert_truthful(pilot, app)
        page = await bob.messages(cid)
        assert [m.body for m in page.messages] == ["hi", "third message typed fast"]


async def test_shift_enter_in_a_burst_inserts_a_newline_in_place(login, make_app, server_api):
    bob, cid, _ = await shared_conversation(server_api, bodies=("hi",))
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and shown(app, cid))
        composer = app.query_one(Composer)
        burst(app, "line one", then="ctrl+j")
        burst(app, "line two", then="shift+enter")
        await pilot.pause()
        assert await wait_for(pilot, lambda: composer.text == "line one\nline two\n")

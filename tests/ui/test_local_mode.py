"""Local mode (no account configured): the embedded server starts after the first frame,
the local account logs in over HTTP, and the welcome conversation is created through the
engine; a second start reuses the device token and draws the conversation from the cache
in its first frame. Real embedded server (uvicorn in a thread), real caches."""

from __future__ import annotations

from chat_tui.launch import (
    WELCOME_QUESTION,
    WELCOME_TITLE,
    local_dir,
)
from chat_tui.ui.widgets.message_list import MessageList
from tests.support.local_app import bare_local_app
from tests.support.truth import assert_truthful
from tests.support.ui import SIZE, wait_for


async def test_local_mode_welcome_then_cache_first():
    servers: list = []
    try:
        app = bare_local_app(servers)
        async with app.run_test(size=SIZE) as pilot:
            # the first frame comes before the server exists: the skeleton
            assert app.query_one("#skeleton").display and not servers
            messages = app.query_one(MessageList)
            assert await wait_for(pilot, lambda: app.current_conversation is not None
                                  and app.current_conversation.title == WELCOME_TITLE
                                  and len(messages.views) == 2
                                  and messages.views[0].state == "sent"
                                  and not messages.views[1].streaming, timeout=20)
            assert messages.views[0].body == WELCOME_QUESTION
            assert messages.views[1].author == "assistant"
            assert app.current_conversation.assistant
            await assert_truthful(pilot, app)
        token = (local_dir() / "token").read_text()
        assert token and (local_dir() / "token").stat().st_mode & 0o077 == 0
        for server in servers:
            server.stop()

        again = bare_local_app(servers)
        async with again.run_test(size=SIZE) as pilot:
            messages = again.query_one(MessageList)
            # first frame, from the cache: the welcome conversation, no skeleton
            assert not again.query_one("#skeleton").display
            assert [v.body for v in messages.views][0] == WELCOME_QUESTION
            assert await wait_for(pilot, lambda: again.engine_ready
                                  and again.connectivity == "online", timeout=20)
            assert len(again.conversations) == 1  # the welcome is created only once
            await assert_truthful(pilot, again)
        assert (local_dir() / "token").read_text() == token  # same device, no new login
    finally:
        for server in servers:
            server.stop()


async def test_welcome_shows_no_unread_badge_while_open():
    """The welcome conversation of the first start is open with its reply on screen: its
    row shows no unread count, in the cache and drawn (the read marker of the reply
    holds against the server's copy of the conversation that raced it)."""
    from chat_tui.ui.widgets.conversation_list import render_conversation

    servers: list = []
    try:
        app = bare_local_app(servers)
        async with app.run_test(size=SIZE) as pilot:
            messages = app.query_one(MessageList)
            assert await wait_for(pilot, lambda: app.current_conversation is not None
                                  and len(messages.views) == 2
                                  and not messages.views[1].streaming
                                  and messages.views[1].body, timeout=20)
            await assert_truthful(pilot, app)
            await pilot.pause(1.5)  # the read marker's round trip and the next sync
            await assert_truthful(pilot, app)
            conv = app.store.get_conversation(app.current_id)
            assert conv.unread_count == 0
            clist = app.chat.conversation_list
            prompt = clist.get_option(conv.id).prompt
            drawn = getattr(prompt, "plain", str(prompt))
            assert drawn == render_conversation(conv, current=True,
                                                width=clist._built_width).plain
    finally:
        for server in servers:
            server.stop()

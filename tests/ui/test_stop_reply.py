"""Stopping a streaming assistant reply from the app (ctrl+s, and "Stop reply" in the
command palette): the server stops generating (the model server sees its stream cut),
keeps what was written and marks it stopped; nothing of the user's is touched. The local
mode with a real embedded server and a real OpenAI-compatible model server process."""

from __future__ import annotations

from chat_tui.launch import WELCOME_QUESTION, local_username
from chat_tui.ui.widgets.message_list import MessageList
from tests.support.config import write_config
from tests.support.local_app import local_app, stop_all
from tests.support.model_server import ModelServer
from tests.support.ui import SIZE, wait_for


def stopped(view) -> bool:
    return not view.streaming and view.stopped and not view.error


def toasts(app) -> list[str]:
    return [n.message for n in app._notifications]


async def test_stop_a_streaming_reply_by_key_and_from_the_palette():
    with ModelServer(["slow"], delay=0.3) as model:
        write_config(f'[[providers]]\nname = "test"\nbase_url = "{model.url}"\n')
        app, _, servers = local_app()
        try:
            async with app.run_test(size=SIZE) as pilot:
                messages = app.query_one(MessageList)
                await pilot.press("ctrl+s")  # nothing streams yet: says so, stops nothing
                assert "No reply is being written here." in toasts(app)
                assert await wait_for(pilot, lambda: len(messages.views) == 2
                                      and messages.views[1].streaming
                                      and messages.views[1].body, timeout=30)
                await pilot.press("ctrl+s")
                assert await wait_for(pilot, lambda: stopped(messages.views[1]), timeout=15)
                kept = messages.views[1].body
                full = f"saw 1: {local_username()}: {WELCOME_QUESTION}"
                assert kept and full.startswith(kept) and kept != full
                assert messages.views[0].body == WELCOME_QUESTION
                assert await wait_for(pilot, lambda: model.counts["streams_cut"] == 1)

                model.control(delay=1.0)  # a slow reply: time to open the palette
                question = "one two three four five six seven eight nine ten"
                await pilot.press(*question, "enter")
                assert await wait_for(pilot, lambda: len(messages.views) == 4
                                      and messages.views[3].streaming
                                      and messages.views[3].body, timeout=30)
                await pilot.press("ctrl+p")
                await pilot.press(*"Stop re")
                await pilot.pause(0.5)
                await pilot.press("enter")
                assert await wait_for(pilot, lambda: stopped(messages.views[3]), timeout=15)
                kept = messages.views[3].body
                assert f"saw 2: {local_username()}: {question}".startswith(kept)
                assert messages.views[2].body == question and messages.views[2].mine
                assert await wait_for(pilot, lambda: model.counts["streams_cut"] == 2)
                assert model.counts["streams_done"] == 0
                # the stop is stored: the cache holds the stopped reply as every device does
                cached = app.store.messages_before(app.current_id, None, limit=10)
                assert [stopped(v) for v in cached if not v.mine] == [True, True]
        finally:
            stop_all(servers)

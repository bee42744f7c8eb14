"""ctrl+r (and "Retry" in the palette) on a reply that failed (the model unreachable, an
upstream error) asks again, as `g` does (sync rule 10): the failed reply is shown with its
reason until the new one takes its place; nothing of the user's is touched. Real embedded
server (the local mode), a real OpenAI-compatible model server process, real caches."""

from __future__ import annotations

from chat_tui.ui.widgets.message_list import MessageList
from tests.support.config import write_config
from tests.support.local_app import local_app, stop_all
from tests.support.model_server import ModelServer
from tests.support.ui import SIZE, wait_for


async def test_rule_10_ctrl_r_retries_a_failed_reply(monkeypatch, unused_port):
    monkeypatch.setenv("CHAT_TUI_LOCAL_MODEL_URL", f"http://127.0.0.1:{unused_port}/v1")
    with ModelServer(["first"], delay=0.01) as model:
        write_config(f'[[providers]]\nname = "test"\nbase_url = "{model.url}"\n')
        app, _, servers = local_app()
        try:
            async with app.run_test(size=SIZE) as pilot:
                messages = app.query_one(MessageList)
                assert await wait_for(pilot, lambda: len(messages.views) == 2
                                      and not messages.views[1].streaming, timeout=30)
                model.control(fail="500")
                await pilot.press(*"are you there", "enter")
                assert await wait_for(pilot, lambda: len(messages.views) == 4
                                      and messages.views[-1].error, timeout=30)
                failed = messages.views[-1]
                assert "HTTP 500" in failed.body
                model.control(fail=None)
                await pilot.press("ctrl+r")  # from the composer, as a user would
                assert await wait_for(pilot, lambda: any(
                    v.author == "assistant" and v.id != failed.id and not v.streaming
                    and v.body.startswith("saw 2: ") for v in messages.views), timeout=30), [
                    n.message for n in app._notifications]
                # replaced: the failed reply is gone from the conversation (sync rule 10)
                assert await wait_for(pilot, lambda: all(
                    v.id != failed.id for v in messages.views), timeout=15)
                assert app.store.get_message(failed.id).deleted
                assert [v.body for v in messages.views if v.mine][-1] == "are you there"
        finally:
            stop_all(servers)

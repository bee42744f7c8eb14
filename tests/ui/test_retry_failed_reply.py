"""ctrl+r (and "Retry" in the palette) on a reply that failed (the model unreachable, an
upstream error) asks again, as `g` does (sync rule 10): the failed reply is shown with its
reason until the new one takes its place; nothing of the user's is touched. Real embedded
server (the local mode), a real OpenAI-compatible model server process, real caches."""

from __future__ import annotations

from tests.support.local_app import welcomed_app
from tests.support.model_server import ModelServer
from tests.support.ui import wait_for


async def test_rule_10_ctrl_r_retries_a_failed_reply(monkeypatch, unused_port):
    monkeypatch.setenv("CHAT_TUI_LOCAL_MODEL_URL", f"http://127.0.0.1:{unused_port}/v1")
    with ModelServer(["first"], delay=0.01) as model:
        async with welcomed_app(model.url) as (app, pilot, messages):
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

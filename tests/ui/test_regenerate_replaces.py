"""Regenerate in the app (sync rule 10): the earlier reply stays on screen while the new
one is written; once it is done, only the new reply shows: the replaced one is gone from
the conversation (no "(deleted)" stub), from the palette's Markdown export and from
``chat-tui export``. The local mode with a real embedded server, a real OpenAI-compatible
model server process (SSE) and a real cache."""

from __future__ import annotations

from chat_tui.launch import WELCOME_QUESTION, local_username
from chat_tui.ui.assistant_actions import export_dir
from tests.support.cli import cli
from tests.support.local_app import welcomed_app
from tests.support.model_server import ModelServer
from tests.support.truth import assert_truthful
from tests.support.ui import wait_for


async def test_rule_10_a_regenerated_reply_takes_the_place_of_the_earlier_one():
    with ModelServer(["first"], delay=0.01) as model:
        async with welcomed_app(model.url) as (app, pilot, messages):
            question, earlier = messages.views
            assert earlier.author == "assistant" and not earlier.error
            model.control(delay=0.3)  # the new reply takes about 3 s
            await pilot.press("ctrl+t")
            assert messages.selected_view().id == earlier.id
            await pilot.press("g")
            # while the new reply is written, the earlier one is on screen
            assert await wait_for(pilot, lambda: len(messages.views) == 3
                                  and messages.views[2].streaming, timeout=30), (
                [(v.author, v.body[:30], v.streaming, v.deleted) for v in messages.views],
                [n.message for n in app._notifications])
            assert messages.views[1].id == earlier.id and not messages.views[1].deleted
            # once done, only the new reply shows, where the earlier one was
            assert await wait_for(pilot, lambda: len(messages.views) == 2
                                  and not messages.views[1].streaming, timeout=30)
            shown = messages.views
            assert shown[0] == question and shown[0].body == WELCOME_QUESTION
            assert shown[1].id != earlier.id and shown[1].author == "assistant"
            assert shown[1].body == f"saw 1: {local_username()}: {WELCOME_QUESTION}"
            assert not shown[1].deleted and not shown[1].error
            assert earlier.id not in messages._items
            assert app.store.get_message(earlier.id).deleted  # cached as a tombstone
            await assert_truthful(pilot, app)

            await pilot.press("ctrl+p", *"Export")
            await pilot.pause(0.5)
            await pilot.press("enter")
            assert await wait_for(pilot, lambda: list(export_dir().glob("*.md")))
            text = next(export_dir().glob("*.md")).read_text(encoding="utf-8")
            assert "*(deleted)*" not in text
            assert text.count("**assistant**") == 1 and shown[1].body in text
    done = cli("export", "--format", "md")
    assert done.returncode == 0, done.stderr
    assert "*(deleted)*" not in done.stdout and done.stdout.count("**assistant**") == 1
    assert f"saw 1: {local_username()}: {WELCOME_QUESTION}" in done.stdout

"""The model in the app (sync rule 9, docs/api.md): the conversation header shows the
model of an assistant conversation and follows a change made in the app at once; each
reply shows the model that wrote it, also offline in a cached answer; a stopped reply is
marked. Pilot tests: the real app, engine and server process; real SQLite caches."""

from __future__ import annotations

import asyncio
import io
import uuid
from datetime import UTC, datetime

from rich.console import Console
from textual.geometry import Region

from chat_tui.store import MessageView
from chat_tui.ui.clock import FixedClock
from chat_tui.ui.widgets.message_item import render_message
from chat_tui.ui.widgets.message_list import MessageList
from tests.support.ui import SIZE, online, shown, wait_for


def rendered_text(widget) -> str:
    """What the widget draws, as plain text (one line per row)."""
    lines = widget.render_lines(Region(0, 0, widget.region.width, widget.region.height))
    return "\n".join("".join(seg.text for seg in strip) for strip in lines)


async def answered_conversation(server_api) -> tuple[str, object]:
    """alice asks the (echo) assistant on the server; the conversation id and the reply."""
    alice = server_api("alice")
    cid = str(uuid.uuid4())
    await alice.put_conversation(cid, "Ask", [], True)
    await alice.put_message(cid, str(uuid.uuid4()), "what is the capital of france")
    deadline = asyncio.get_running_loop().time() + 15
    while True:
        page = await alice.messages(cid)
        last = page.messages[-1]
        if last.author == "assistant" and not last.streaming and last.body:
            return cid, last
        assert asyncio.get_running_loop().time() < deadline, "no assistant reply"
        await asyncio.sleep(0.1)


async def test_header_and_replies_show_the_model(server, login, make_app, server_api):
    cid, reply = await answered_conversation(server_api)
    assert reply.model == "echo"
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and shown(app, cid))
        title = app.query_one("#chat-title")
        assert "default model" in rendered_text(title)
        messages = app.query_one(MessageList)
        assert await wait_for(pilot, lambda: reply.id in messages._items)
        await pilot.pause()
        assert "echo" in rendered_text(messages._items[reply.id]).splitlines()[0]

        assert app.engine.update_conversation(cid, model="large-model")
        assert await wait_for(pilot, lambda: "large-model" in rendered_text(title))
        assert "default model" not in rendered_text(title)
        assert await wait_for(
            pilot, lambda: app.store.get_conversation(cid).queued_count == 0, timeout=10)
        page = await server_api("alice").list_conversations()
        assert [c.model for c in page if c.id == cid] == ["large-model"]

        server.stop()  # offline: the cached answer says which model gave it
        assert await wait_for(pilot, lambda: app.connectivity == "offline")
        await pilot.press(*"What's the capital of France?", "enter")
        assert await wait_for(pilot, lambda: messages._answers)
        (_, widget), = messages._answers.items()
        assert widget.border_title.startswith("cached answer from ")
        assert widget.border_title.endswith(" by echo")


def test_a_stopped_reply_and_its_model_are_marked():
    view = MessageView(id="m1", conversation_id="c1", author="assistant",
                       body="the first half", created_at=datetime(2026, 11, 22, tzinfo=UTC),
                       edited=False, deleted=False, streaming=False, error=False, mine=False,
                       state=None, failure_reason=None, sort_key=1, model="llama3.2",
                       stopped=True)
    console = Console(file=io.StringIO(), width=80, color_system=None, force_terminal=True)
    console.print(render_message(view, FixedClock()))
    header, body = console.file.getvalue().splitlines()[:2]
    assert "llama3.2" in header and "\u23f9 stopped" in header
    assert body.strip() == "the first half"
    # another author's message never shows a model, even a forged one
    other = MessageView(**{**view.__dict__, "author": "bob", "stopped": False})
    console = Console(file=io.StringIO(), width=80, color_system=None, force_terminal=True)
    console.print(render_message(other, FixedClock()))
    assert "llama3.2" not in console.file.getvalue()


async def test_g_regenerates_the_last_reply_and_the_earlier_one_stays_until_replaced(
        server, login, make_app, server_api):
    cid, reply = await answered_conversation(server_api)
    app = make_app(login("alice"))
    async with app.run_test(size=SIZE) as pilot:
        assert await wait_for(pilot, lambda: online(app) and shown(app, cid))
        messages = app.query_one(MessageList)
        assert await wait_for(pilot, lambda: reply.id in messages._items)
        await pilot.press("ctrl+t")
        assert messages.has_focus
        await pilot.press("g")
        # a new reply comes; the earlier one is on screen until the server replaces it
        assert await wait_for(pilot, lambda: any(
            v.author == "assistant" and v.id != reply.id for v in messages.views), timeout=15)
        # once the new one is done, it takes the earlier one's place (sync rule 10)
        assert await wait_for(pilot, lambda: [
            v.id for v in messages.views if v.author == "assistant" and not v.deleted
            and not v.streaming and v.body] and all(
            v.id != reply.id for v in messages.views), timeout=20)
        live = [v for v in messages.views if v.author == "assistant"]
        assert [v.id for v in live] != [reply.id] and len(live) == 1
        assert not live[0].deleted
        question = [v for v in messages.views if v.mine]
        assert [v.body for v in question] == ["what is the capital of france"]
        assert app.store.outbox_rows() == []


def test_rule_3n_the_problem_panel_names_settings_changes_and_regenerates():
    from chat_tui.store import OutboxProblem
    from chat_tui.ui.widgets.problems import describe

    change = OutboxProblem(None, "c1", "failed", "404 not_found: conversation not found",
                           "model: large", 7, "update_conversation")
    assert describe(change) == ('conversation change "model: large" failed: '
                                "404 not_found: conversation not found")
    again = OutboxProblem("m1", "c1", "blocked", "blocked behind update_conversation 7",
                          "a new reply", 8, "regenerate")
    assert describe(again) == 'regenerate "a new reply" blocked: waits for the action above'

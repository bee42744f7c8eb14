"""Rendering of one message (no app needed) and of notifications: assistant replies as Markdown with code
blocks, every body inert (untrusted text never becomes markup or control sequences)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from rich.console import Console

from chat_tui.store import MessageView
from chat_tui.ui.clock import FixedClock
from chat_tui.ui.widgets.message_item import enable_markdown, render_message


def view(author: str, body: str, **kw) -> MessageView:
    fields = dict(id="m1", conversation_id="c1", author=author, body=body,
                  created_at=datetime(2026, 11, 22, 14, 2, tzinfo=UTC), edited=False,
                  deleted=False, streaming=False, error=False, mine=author == "alice",
                  state="sent" if author == "alice" else None, failure_reason=None, sort_key=1)
    fields.update(kw)
    return MessageView(**fields)


def draw(renderable) -> str:
    console = Console(file=io.StringIO(), width=80, color_system="truecolor",
                      force_terminal=True)
    console.print(renderable)
    return console.file.getvalue()


def plain(renderable) -> str:
    console = Console(file=io.StringIO(), width=80, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def test_assistant_reply_is_markdown_with_a_highlighted_code_block():
    enable_markdown()
    body = "Use **this**:\n\n```python\nprint('hi')\n```\n"
    shown = plain(render_message(view("assistant", body), FixedClock()))
    assert "```" not in shown and "**" not in shown
    assert "print('hi')" in shown and "Use this:" in shown
    colored = draw(render_message(view("assistant", body), FixedClock()))
    assert "\x1b[" in colored  # styled (syntax highlighting), by Rich, not by the body


def test_markdown_keeps_controls_inert_and_links_plain():
    enable_markdown()
    body = "[site](http://evil.example) \x1b]8;;http://x\x07t\x1b]8;;\x07 \x1b[2J"
    out = draw(render_message(view("assistant", body), FixedClock()))
    assert "\x1b]8;" not in out and "\x1b[2J" not in out and "\x07" not in out
    assert "\u241b[2J" in out


def test_people_messages_stay_literal_and_states_show():
    text = plain(render_message(view("alice", "**not bold** [red]x[/red]", state="read",
                                     edited=True), FixedClock()))
    assert "**not bold** [red]x[/red]" in text
    assert "(edited)" in text and "read" in text and "14:02" in text
    failed = plain(render_message(view("alice", "x", state="failed",
                                       failure_reason="not a member"), FixedClock()))
    assert "failed" in failed and "not a member" in failed and "ctrl+r retry" in failed
    deleted = plain(render_message(view("bob", "gone", deleted=True), FixedClock()))
    assert "message deleted" in deleted and "gone" not in deleted


async def test_notifications_are_inert_text(tmp_path):
    """Toasts carry server reasons and exception texts: markup stays literal and escape
    sequences show as visible stand-ins, whoever calls ``notify``."""
    from chat_tui.store import Cache
    from chat_tui.ui.app import ChatApp

    store = Cache(tmp_path / "cache.db", "alice")
    store.open()
    try:
        app = ChatApp(store, None)
        async with app.run_test(size=(100, 30), notifications=True) as pilot:
            app.notify("[b]from the server[/b] \x1b[2J\x07done", title="[red]T\x1b]0;x\x07",
                       markup=True)
            await pilot.pause(0.3)
            [shown] = [str(toast.render()) for toast in app.screen.query("Toast")]
        assert shown == "[red]T\u241b]0;x\u2407\n[b]from the server[/b] \u241b[2J\u2407done"
    finally:
        store.close()

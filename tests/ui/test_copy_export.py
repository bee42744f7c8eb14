"""Copy a message (``c``), copy a code block of a reply (``y``; a picker when there are
several) through Textual's clipboard (OSC 52), and export the open conversation to
Markdown from the command palette. Real server process, real engine, real cache."""

from __future__ import annotations

from chat_tui.store.export_md import conversations_markdown
from chat_tui.ui.assistant_actions import export_dir
from chat_tui.ui.code_blocks import CodeBlock, code_blocks
from chat_tui.ui.screens.code_picker import CodePickerScreen
from chat_tui.ui.widgets.message_list import MessageList
from tests.support.ui import SIZE, online, shared_conversation, wait_for

TWO_BLOCKS = ("Two ways:\n\n```python\nprint('one')\n```\n\nor in the shell:\n\n"
              "~~~sh\necho two\necho three\n~~~\n")


def test_code_blocks_are_found_as_commonmark_fences():
    assert code_blocks(TWO_BLOCKS) == [CodeBlock("python", "print('one')"),
                                       CodeBlock("sh", "echo two\necho three")]
    assert code_blocks("no code here, only `inline`") == []
    # indented fence: up to its indentation is removed; a longer closing fence closes
    assert code_blocks("  ```js x\n  let a;\n    b;\n  `````\nafter") == [
        CodeBlock("js", "let a;\n  b;")]
    # an unclosed fence runs to the end; a backtick in the info string is no fence
    assert code_blocks("```\nopen\n") == [CodeBlock("", "open")]
    assert code_blocks("``` a`b\nx\n```\ny") == [CodeBlock("", "y")]
    assert CodeBlock("sh", "echo two\necho three").label() == "sh, 2 lines: echo two"


def toasts(app) -> list[str]:
    return [n.message for n in app._notifications]


async def test_copy_a_message_a_code_block_and_export(server_api, login, make_app):
    account = login("alice")
    _, cid, ids = await shared_conversation(
        server_api, "Snippets", ("Here is one:\n\n```python\nx = 1\n```", TWO_BLOCKS,
                                 "thanks, that is all"))
    app = make_app(account)
    async with app.run_test(size=SIZE) as pilot:
        messages = app.query_one(MessageList)
        assert await wait_for(pilot, lambda: online(app) and app.current_id == cid
                              and len(messages.views) == 3, timeout=15)
        await pilot.press("ctrl+t")
        await pilot.press("c")
        assert app.clipboard == "thanks, that is all"
        await pilot.press("up")
        assert messages.selected_view().id == ids[1]
        await pilot.press("c")
        assert app.clipboard == TWO_BLOCKS
        await pilot.press("y")
        assert await wait_for(pilot, lambda: isinstance(app.screen, CodePickerScreen))
        await pilot.press("down", "enter")
        assert await wait_for(pilot, lambda: app.clipboard == "echo two\necho three")
        assert "Copied the sh block (2 lines)." in toasts(app)
        await pilot.press("up")
        assert messages.selected_view().id == ids[0]
        await pilot.press("y")  # one block: copied at once
        assert app.clipboard == "x = 1" and not isinstance(app.screen, CodePickerScreen)

        await pilot.press("ctrl+p", *"Export")
        await pilot.pause(0.5)
        await pilot.press("enter")
        assert await wait_for(pilot, lambda: list(export_dir().glob("Snippets-*.md")))
        path = next(export_dir().glob("Snippets-*.md"))
        assert any(t == f"Exported to {path}" for t in toasts(app))
        text = path.read_text(encoding="utf-8")
        assert text == conversations_markdown(app.store.export([cid]))
        assert text.startswith("# Snippets\n\nMembers: ") and TWO_BLOCKS in text

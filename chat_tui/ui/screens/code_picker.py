"""Pick one of the code blocks of a message to copy (the message has several)."""

from __future__ import annotations

from collections.abc import Sequence

from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from chat_tui.ui.code_blocks import CodeBlock
from chat_tui.ui.safe_text import inert_line

__all__ = ["CodePickerScreen"]


class CodePickerScreen(ModalScreen["CodeBlock | None"]):
    """Lists ``blocks`` (language, line count, first line); Enter returns the highlighted
    :class:`~chat_tui.ui.code_blocks.CodeBlock`, Esc None."""

    DEFAULT_CSS = """
    CodePickerScreen { align: center middle; background: $background 60%; }
    #code-box { width: 80; max-width: 100%; height: auto; max-height: 80%;
                border: round $accent; padding: 0 1; background: $surface; }
    #code-list { height: auto; max-height: 16; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, blocks: Sequence[CodeBlock]) -> None:
        super().__init__()
        self.blocks = list(blocks)

    def compose(self):  # noqa: D102 - Textual hook
        with Vertical(id="code-box") as box:
            box.border_title = "Copy which code block?"
            yield Label("Enter copies the highlighted block; Esc cancels.")
            yield OptionList(*[Option(inert_line(f"{n}. {b.label()}", 100), id=str(n - 1))
                               for n, b in enumerate(self.blocks, 1)], id="code-list")

    def on_mount(self) -> None:  # noqa: D102 - Textual hook
        options = self.query_one(OptionList)
        options.highlighted = 0
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Enter (or a click) on a block: return it."""
        event.stop()
        self.dismiss(self.blocks[int(event.option.id or 0)])

    def action_cancel(self) -> None:
        """Close without copying."""
        self.dismiss(None)

"""A yes/no question before a destructive action (deleting a sent message): ``y`` or
Enter confirms, ``n`` or Esc keeps. Dismisses with True (confirmed) or False."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from chat_tui.ui.safe_text import inert

__all__ = ["ConfirmScreen"]


class ConfirmScreen(ModalScreen[bool]):
    """Asks ``question`` (plain text; ``detail``, e.g. the message's first line, is shown
    inert below it); ``action`` names what ``y`` does ("Delete")."""

    DEFAULT_CSS = """
    ConfirmScreen {
        align: center middle;
        background: $background 60%;
    }
    #confirm-box {
        width: 56;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: round $error;
        background: $surface;
        padding: 0 1;
    }
    #confirm-detail {
        height: auto;
        max-height: 3;
        margin: 1 0;
    }
    """

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, detail: str = "", *, action: str = "Yes") -> None:
        super().__init__()
        self._question = question
        self._detail = detail
        self._action = action

    def compose(self):  # noqa: D102 - Textual hook
        with Vertical(id="confirm-box") as box:
            box.border_title = self._action
            yield Static(Text(self._question, style="bold"), markup=False, id="confirm-question")
            if self._detail:
                yield Static(Text(inert(self._detail), style="dim"), markup=False,
                             id="confirm-detail")
            yield Static(Text(f"y / Enter: {self._action.lower()}  \u00b7  n / Esc: keep it"),
                         markup=False, id="confirm-keys")

    def action_answer(self, yes: bool) -> None:
        """Close with the answer."""
        self.dismiss(yes)

"""Help screen (``?`` or F1): every key binding, from the one table in ``keymap``."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from chat_tui.ui.keymap import ACTIONS, SCOPE_TITLES

__all__ = ["HelpScreen", "help_table"]


def help_table() -> Table:
    """A Rich table of :data:`chat_tui.ui.keymap.ACTIONS`, grouped by scope."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True, min_width=22)
    table.add_column()
    for scope, title in SCOPE_TITLES.items():
        table.add_row(Text(title, style="bold underline"), "")
        for entry in ACTIONS:
            if entry.scope == scope:
                table.add_row(entry.key_display or "palette", entry.help)
        table.add_row("", "")
    table.add_row(Text("Command palette", style="bold underline"), "")
    table.add_row("Ctrl+p", "every action above, searchable by name")
    return table


class HelpScreen(ModalScreen[None]):
    """Lists all bindings; Esc, q, ? or F1 closes it."""

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
        background: $background 60%;
    }
    #help-box {
        width: 90;
        max-width: 95%;
        height: 90%;
        border: round $accent;
        padding: 0 1;
        background: $surface;
    }
    """

    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close")]

    def compose(self):  # noqa: D102 - Textual hook
        with VerticalScroll(id="help-box") as box:
            box.border_title = "chat-tui keys"
            box.border_subtitle = "Esc closes"
            yield Static(help_table(), markup=False, id="help-table")

    async def action_dismiss(self, result: None = None) -> None:
        """Close the help screen."""
        self.dismiss(result)

"""Help screen (``?`` or F1): every key binding, from the one table in ``keymap``."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from chat_tui.ui.keymap import ACTIONS, SCOPE_TITLES

__all__ = ["HelpScreen", "help_sections", "help_table"]


def help_sections() -> list[tuple[str, list[tuple[str, str]]]]:
    """The help screen's content: ``(section title, [(keys, what they do), ...])`` for
    each scope of :data:`chat_tui.ui.keymap.SCOPE_TITLES` in order, then the command
    palette."""
    sections = []
    for scope, title in SCOPE_TITLES.items():
        rows = [(entry.key_display or "palette", entry.help)
                for entry in ACTIONS if entry.scope == scope]
        sections.append((title, rows))
    sections.append(("Command palette", [("Ctrl+p", "every action above, searchable by name")]))
    return sections


def help_table() -> Group:
    """The Rich renderable of :func:`help_sections`: each section's title on a line of its
    own (as wide as it needs: a long title never widens the key column), then a two-column
    grid of keys and descriptions; every grid has the same key column (the widest keys, at
    least 22 cells), so the descriptions line up and wrap in the width that is left (from
    60 columns up, each key keeps its description beside it)."""
    sections = help_sections()
    width = max(22, *(len(keys) for _, rows in sections for keys, _ in rows))
    parts: list[Text | Table] = []
    for title, rows in sections:
        parts.append(Text(title, style="bold underline"))
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold cyan", no_wrap=True, width=width)
        grid.add_column()
        for keys, text in rows:
            grid.add_row(keys, text)
        parts.append(grid)
        parts.append(Text(""))
    return Group(*parts[:-1])


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

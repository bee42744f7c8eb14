"""Search screen (``/`` or ctrl+f): full-text search over the cache, offline.

Runs ``store.search(query)`` (FTS5 over every cached conversation) as you type,
debounced; Enter opens the hit in context (``store.message_window_around``) by dismissing
with the chosen ``SearchHit``.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from chat_tui.ui.clock import Clock, format_time
from chat_tui.ui.safe_text import inert_line

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.store import SearchHit

__all__ = ["SearchScreen", "render_hit", "render_snippet"]

log = logging.getLogger(__name__)


def render_hit(hit: SearchHit, query: str, clock: Clock, width: int = 90) -> Text:
    """Two lines for a hit: conversation, author and time; then the snippet with the
    query's words highlighted (all inert text)."""
    head = Text(no_wrap=True, overflow="ellipsis")
    head.append(inert_line(hit.conversation_title, 40), style="bold")
    head.append("  " + inert_line(hit.author, 30), style="cyan")
    head.append("  " + format_time(hit.created_at, clock), style="dim")
    head.append("\n")
    head.append_text(render_snippet(hit.snippet, query, width))
    return head


_MARKED = re.compile(r"\[([^\[\]\n]*)\]")


def render_snippet(snippet: str, query: str, width: int = 90) -> Text:
    """The FTS snippet (``store.search`` marks matches as ``[word]``) as inert text with
    the matches highlighted. Brackets typed by users stay: only a bracketed run starting
    with one of the query's words (case-insensitive, the FTS prefix rule) is a marker."""
    words = [w.lower() for w in query.split()]
    line = inert_line(snippet)
    out = Text("  ", no_wrap=True, overflow="ellipsis")
    pos = 0
    for match in _MARKED.finditer(line):
        inner = match.group(1)
        if not any(inner.lower().startswith(w) for w in words):
            continue
        out.append(line[pos:match.start()])
        out.append(inner, style="bold yellow")
        pos = match.end()
    out.append(line[pos:])
    out.truncate(width + 2, overflow="ellipsis")
    return out


class SearchScreen(ModalScreen["SearchHit | None"]):
    """Query box and results; dismisses with the chosen ``SearchHit`` or None."""

    DEFAULT_CSS = """
    SearchScreen {
        align: center middle;
        background: $background 60%;
    }
    #search-box {
        width: 100;
        max-width: 95%;
        height: 80%;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    #search-status {
        height: 1;
        color: $text-muted;
    }
    #search-results {
        height: 1fr;
        border: none;
    }
    """

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("down", "to_results", "Results", show=False),
    ]
    DEBOUNCE = 0.15  # seconds between the last key and the query

    def __init__(self, store: Any, clock: Clock, query: str = "") -> None:
        super().__init__()
        self._store = store
        self._clock = clock
        self._initial = query
        self._timer: Timer | None = None
        self.hits: list[SearchHit] = []

    def compose(self):  # noqa: D102 - Textual hook
        with Vertical(id="search-box") as box:
            box.border_title = "Search cached messages"
            box.border_subtitle = "Enter opens \u00b7 Esc closes"
            yield Input(self._initial, placeholder="words to find (works offline)", id="search-input")
            yield Static(Text(""), markup=False, id="search-status")
            yield OptionList(id="search-results", markup=False)

    def on_mount(self) -> None:  # noqa: D102 - Textual hook
        self.query_one(Input).focus()
        if self._initial:
            self.run_search(self._initial)

    def on_input_changed(self, event: Input.Changed) -> None:
        """Debounce typing, then search."""
        if self._timer is not None:
            self._timer.stop()
        value = event.value
        self._timer = self.set_timer(self.DEBOUNCE, lambda: self.run_search(value))

    def run_search(self, query: str) -> None:
        """Query the cache and show the hits (at most 50)."""
        status = self.query_one("#search-status", Static)
        results = self.query_one("#search-results", OptionList)
        query = query.strip()
        if not query:
            self.hits = []
            results.clear_options()
            status.update(Text(""))
            return
        try:
            self.hits = list(self._store.search(query, limit=50))
        except Exception:  # noqa: BLE001 - a malformed query must never crash the app
            log.info("search %r failed", query, exc_info=True)
            self.hits = []
        width = max(20, self.size.width - 12)
        results.set_options(
            Option(render_hit(hit, query, self._clock, width), id=hit.message_id) for hit in self.hits
        )
        if self.hits:
            results.highlighted = 0
        count = len(self.hits)
        status.update(Text(f"{count} match{'es' if count != 1 else ''}" if count else "no matches",
                           style="dim"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the query box opens the highlighted (or first) hit."""
        results = self.query_one("#search-results", OptionList)
        if self._timer is not None:
            self._timer.stop()
            self.run_search(event.value)
        if self.hits:
            index = results.highlighted or 0
            self.dismiss(self.hits[index])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Enter or click on a result opens it."""
        self.dismiss(self.hits[event.option_index])

    def action_to_results(self) -> None:
        """Down from the query box moves into the results."""
        results = self.query_one("#search-results", OptionList)
        if self.hits and not results.has_focus:
            results.focus()

    def action_close(self) -> None:
        """Close without opening anything."""
        self.dismiss(None)

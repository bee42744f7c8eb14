"""Second baseline of the cold-start benchmark: chat-tui's screen drawn by Textual from fixed text.

The same containers and Textual widgets as chat-tui's whole screen (title bar of four
``Static``s, offline banner, an ``OptionList`` of two-line conversation rows, a
``VerticalScroll`` of message ``Static``s anchored at the bottom, a ``TextArea`` composer
and the ``Footer`` with chat-tui's key bindings), styled by chat-tui's own stylesheet
(``chat_tui/ui/styles/app.tcss``; the widget subclasses below carry the names its
selectors use, the composer its own rules). The text comes from a small JSON file the
benchmark writes from the cache before timing (``{"title", "conversations": [[title,
preview], ...], "messages": [[header, body], ...]}``): no SQLite, no store, no engine,
none of chat-tui's widgets.

It is what drawing this screen with Textual costs by itself: the floor under chat-tui's
cold start, between the bare one-``Static`` app and chat-tui (benchmarks/NOTES.md).
chat-tui's own first frame holds less (its composer, key bar and title bar's parts mount
right after it). Quits on ctrl+q.

Usage: ``python benchmarks/static_screen_app.py SCREEN_JSON [OPTION ...]``; the options
leave parts out, to see what each costs (``python -m benchmarks.screen_floor``):
``--no-stylesheet``, ``--no-composer``, ``--no-footer``, and ``--one-static`` (all the
messages in one ``Static`` instead of one widget each).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, OptionList, Static, TextArea

from chat_tui.ui.keymap import bindings_for

STYLESHEET = Path(__file__).resolve().parent.parent / "chat_tui" / "ui" / "styles" / "app.tcss"


class OfflineBanner(Static):
    """Named for the stylesheet's ``OfflineBanner`` rule."""


class ConversationList(OptionList):
    """Named for the stylesheet's ``ConversationList`` rules."""


class MessageList(VerticalScroll):
    """Named for the stylesheet's ``MessageList`` rules."""


class MessageItem(Static):
    """Named for the stylesheet's ``MessageItem`` rules."""

    DEFAULT_CSS = "MessageItem { height: auto; }"


class Composer(TextArea):
    """chat-tui's composer keys and style (the rules of ``Composer.DEFAULT_CSS`` in
    ``chat_tui/ui/widgets/composer.py``, which mounts after chat-tui's first frame)."""

    DEFAULT_CSS = """
    Composer { height: auto; min-height: 3; max-height: 10; border: round $panel-lighten-2; }
    Composer:focus { border: round $accent; }
    """
    BINDINGS = bindings_for("composer", prefix="")


class StaticScreenApp(App[None]):
    """chat-tui's first-frame layout with the text of ``screen`` (see module doc)."""

    BINDINGS = bindings_for("app")
    OPTIONS = ("--no-stylesheet", "--no-composer", "--no-footer", "--one-static")

    def __init__(self, screen: dict, options: tuple[str, ...] = ()) -> None:
        unknown = set(options) - set(self.OPTIONS)
        if unknown:
            raise SystemExit(f"unknown options {sorted(unknown)}; known: {self.OPTIONS}")
        self.options = options
        if "--no-stylesheet" not in options:
            self.CSS_PATH = str(STYLESHEET)
        super().__init__()
        self.content = screen

    def compose(self) -> ComposeResult:
        with Horizontal(id="titlebar"):
            yield Static("chat-tui", id="app-title")
            yield Static(self.content["title"], markup=False, id="chat-title")
            yield Static("", id="queue")
            yield Static("offline", id="sync")
        yield OfflineBanner("Offline: showing the cached conversations", markup=False,
                            id="offline")
        with Horizontal(id="body"):
            yield ConversationList(*(f"{title}\n  {preview}" for title, preview
                                     in self.content["conversations"]), id="conversations")
            with Vertical(id="chat"):
                with MessageList(id="messages"):
                    yield Static("\u2191 older messages", id="top-marker")
                    texts = [f"{header}\n{body}" for header, body in self.content["messages"]]
                    if "--one-static" in self.options:
                        yield MessageItem("\n\n".join(texts), markup=False)
                    else:
                        for text in texts:
                            yield MessageItem(text, markup=False)
                if "--no-composer" not in self.options:
                    yield Composer(id="composer", soft_wrap=True, show_line_numbers=False,
                                   highlight_cursor_line=False)
        if "--no-footer" not in self.options:
            yield Footer()

    def on_mount(self) -> None:
        self.query_one(MessageList).anchor()
        if "--no-composer" not in self.options:
            self.query_one(Composer).focus()


if __name__ == "__main__":
    StaticScreenApp(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8")),
                    tuple(sys.argv[2:])).run()

"""Baseline for the cold-start and memory benchmarks: a bare Textual app showing one Static.

Started the same way as ``chat-tui`` (same interpreter, same virtualenv, same terminal), it is the
floor that chat-tui's cold start is compared with (targets 1 and 6).
"""

from textual.app import App, ComposeResult
from textual.widgets import Static

READY_TEXT = "bare-textual-ready"


class BareApp(App[None]):
    """One Static with a known text; quits on ``q``."""

    BINDINGS = [("q", "quit", "Quit")]

    def compose(self) -> ComposeResult:
        yield Static(READY_TEXT)


if __name__ == "__main__":
    BareApp().run()

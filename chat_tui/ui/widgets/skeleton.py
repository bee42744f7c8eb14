"""The empty-cache skeleton: placeholder rows and a progress line during the initial sync.

Shown only when the cache holds no conversation (first login), never a blank screen
(issue 4, "Start"). The spinner is driven by a timer unless the app runs with animations
off (snapshot tests), so snapshots are deterministic.
"""

from __future__ import annotations

from rich.text import Text
from textual.containers import Vertical
from textual.widgets import Static

__all__ = ["Skeleton"]

_FRAMES = "\u280b\u2819\u2839\u2838\u283c\u2834\u2826\u2827\u2807\u280f"
_ROWS = (38, 22, 31, 12, 27, 35, 18)


class Skeleton(Vertical):
    """Grey placeholder message rows with a progress line (``show_progress``)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._frame = 0
        self._label = "Connecting to the server\u2026"
        self._status = Static(Text(""), markup=False, id="skeleton-status")

    def compose(self):  # noqa: D102 - Textual hook
        yield self._status
        for index, width in enumerate(_ROWS):
            yield Static(Text("\u2588" * 8), markup=False, classes="skeleton-author")
            yield Static(Text("\u2588" * width + ("" if index % 2 else " " + "\u2588" * 9)),
                         markup=False, classes="skeleton-line")

    def on_mount(self) -> None:  # noqa: D102 - Textual hook
        self._paint()
        if self.app.animation_level != "none":
            self.set_interval(0.1, self._tick)

    def _tick(self) -> None:
        self._frame = (self._frame + 1) % len(_FRAMES)
        self._paint()

    def _paint(self) -> None:
        self._status.update(Text(f"{_FRAMES[self._frame]} {self._label}", style="bold"))

    def show_progress(self, phase: str, done: int, total: int | None, state: str) -> None:
        """Describe the initial sync: ``phase`` and ``done``/``total`` conversations."""
        if state == "offline":
            self._label = "Offline - waiting for the server to load your conversations\u2026"
        elif phase == "initial" and total:
            self._label = f"Loading your conversations\u2026 {done} of {total}"
        elif phase == "initial":
            self._label = "Loading your conversations\u2026"
        else:
            self._label = "Connecting to the server\u2026"
        self._paint()

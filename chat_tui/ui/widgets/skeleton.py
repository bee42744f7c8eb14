"""The empty-cache skeleton: placeholder rows and a progress line during the initial sync.

Shown only when the cache holds no conversation (first login), never a blank screen.
Once a sync has finished and the account still has no conversation, it says so and what to
do next (:data:`EMPTY_TEXT`) instead of pretending to load. The spinner is driven by a
timer unless the app runs with animations
off (snapshot tests), so snapshots are deterministic.
"""

from __future__ import annotations

from rich.text import Text
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import Static

__all__ = ["EMPTY_TEXT", "Skeleton"]

EMPTY_TEXT = ("No conversations yet. Press ctrl+n to start one, with the assistant or "
              "with other people, or wait: a conversation someone starts with you "
              "appears here.")
"""The empty state: what an account without conversations shows after its first sync."""

_FRAMES = "\u280b\u2819\u2839\u2838\u283c\u2834\u2826\u2827\u2807\u280f"
_ROWS = (38, 22, 31, 12, 27, 35, 18)


class Skeleton(Vertical):
    """Grey placeholder message rows with a progress line (``show_progress``).

    ``shown``: whether it is displayed from the start. The placeholder rows are built the
    first time it is shown (:meth:`show`) and the spinner runs only while it is shown: a
    cache with conversations never builds them (15 widgets, ~5-10 ms of the first frame).
    """

    def __init__(self, *, id: str | None = None, shown: bool = True) -> None:
        super().__init__(id=id)
        self.display = shown
        self._frame = 0
        self._label = "Connecting to the server\u2026"
        self._status = Static(Text(""), markup=False, id="skeleton-status")
        self._built = False
        self._spinner: Timer | None = None

    def compose(self):  # noqa: D102 - Textual hook
        yield self._status
        if self.display:
            self._built = True
            yield from self._rows()

    @staticmethod
    def _rows() -> list[Static]:
        rows = []
        for index, width in enumerate(_ROWS):
            rows.append(Static(Text("\u2588" * 8), markup=False, classes="skeleton-author"))
            rows.append(Static(Text("\u2588" * width + ("" if index % 2 else " " + "\u2588" * 9)),
                               markup=False, classes="skeleton-line"))
        return rows

    def on_mount(self) -> None:  # noqa: D102 - Textual hook
        self._paint()
        self._run_spinner(self.display)

    def show(self, shown: bool) -> None:
        """Show (building the rows the first time) or hide the skeleton."""
        self.display = shown
        if shown and not self._built:
            self._built = True
            self.mount_all(self._rows())
        self._run_spinner(shown)

    def _run_spinner(self, shown: bool) -> None:
        if self.app.animation_level == "none":
            return
        if shown and self._spinner is None:
            self._spinner = self.set_interval(0.1, self._tick)
        elif shown:
            self._spinner.resume()
        elif self._spinner is not None:
            self._spinner.pause()

    def _tick(self) -> None:
        self._frame = (self._frame + 1) % len(_FRAMES)
        self._paint()

    def _paint(self) -> None:
        if self.has_class("-empty"):
            self._status.update(Text(self._label))
        else:
            self._status.update(Text(f"{_FRAMES[self._frame]} {self._label}", style="bold"))

    def show_progress(self, phase: str, done: int, total: int | None, state: str,
                      *, synced: bool = False) -> None:
        """Describe the initial sync: ``phase`` and ``done``/``total`` conversations,
        connectivity ``state`` (``login``: paused for a login). ``synced``: a sync has finished (the account's list is
        known): with no initial sync running, the empty state (:data:`EMPTY_TEXT`) shows
        instead of placeholder rows and a spinner."""
        empty = synced and phase != "initial" and state != "login"
        still = empty or state == "login"  # nothing loads: no spinner, no placeholder rows
        self.set_class(still, "-empty")
        self._run_spinner(self.display and not still)
        if state == "login":
            self._label = "Login needed (see above) before your conversations can load."
        elif empty:
            self._label = EMPTY_TEXT
        elif state == "offline":
            self._label = "Offline - waiting for the server to load your conversations\u2026"
        elif phase == "initial" and total:
            self._label = f"Loading your conversations\u2026 {done} of {total}"
        elif phase == "initial":
            self._label = "Loading your conversations\u2026"
        else:
            self._label = "Connecting to the server\u2026"
        self._paint()

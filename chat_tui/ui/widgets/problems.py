"""The problem panel: every action of the open conversation that waits for the user.

A failed, blocked or expired outbox action of any kind (a conversation create, a message
send, an edit, a delete, a read marker) is shown above the composer with its state and the
server's reason (``chat_tui.store.OutboxProblem``), so a refused action is never a dead
end: with the panel focused (ctrl+b) ``r`` retries, ``e`` edits, ``x`` discards and ``a``
sends an expired message anyway; the same actions are in the command palette. The panel
reads nothing itself: the chat screen gives it the problems
(:meth:`ProblemPanel.show`) whenever the outbox changes or another conversation opens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual.binding import Binding
from textual.widgets import Static

from chat_tui.ui.keymap import bindings_for
from chat_tui.ui.safe_text import inert_line

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.store import OutboxProblem

__all__ = ["ProblemPanel", "describe"]

_KINDS = {
    "create_conversation": "new conversation",
    "send": "message",
    "edit": "edit",
    "delete": "delete",
    "read": "read marker",
    "update_conversation": "conversation change",
    "regenerate": "regenerate",
    "leave_conversation": "leave",
    "add_member": "member change",
    "remove_member": "member change",
}
_MARKS = {"failed": "\u2717", "blocked": "\u29d7", "expired": "\u231b"}


def describe(problem: OutboxProblem) -> str:
    """One line for ``problem``: what it is, its state and why, e.g.
    ``new conversation "Ghosts" failed: 422 unknown usernames: nobody_x``. User text and
    the reason are made inert (:func:`~chat_tui.ui.safe_text.inert_line`)."""
    what = _KINDS.get(problem.kind, problem.kind)
    if problem.body_preview:
        what += f' "{inert_line(problem.body_preview, 40)}"'
    if problem.state == "blocked":
        return f"{what} blocked: waits for the action above"
    reason = inert_line(problem.reason, 200)
    return f"{what} {problem.state}" + (f": {reason}" if reason != problem.state else "")


class ProblemPanel(Static, can_focus=True):
    """The open conversation's actions that wait for the user, one line each, the selected
    one marked; hidden while there is none.

    State: ``problems`` (list of ``OutboxProblem`` shown, in outbox order) and
    ``selected`` (index into it). Keys (``problems`` scope of :mod:`chat_tui.ui.keymap`)
    run the chat screen's ``*_problem`` actions on :meth:`selected_problem`.
    """

    ROWS = 4
    """Problem lines shown at most (a window around the selection); the rest are counted."""

    BINDINGS = [
        *bindings_for("problems"),
        Binding("up,k", "move(-1)", "Select", show=False),
        Binding("down,j", "move(1)", "Select", show=False),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(Text(""), markup=False, id=id)
        self.problems: list[OutboxProblem] = []
        self.selected = 0
        self.display = False

    def show(self, problems: Sequence[OutboxProblem]) -> None:
        """Show ``problems`` (hide when empty); the selection stays on the same action
        when it is still there."""
        keep = self.selected_problem()
        self.problems = list(problems)
        ids = [p.outbox_id for p in self.problems]
        self.selected = ids.index(keep.outbox_id) if keep and keep.outbox_id in ids else 0
        self.display = bool(self.problems)
        self._paint()

    def selected_problem(self) -> OutboxProblem | None:
        """The selected action, or None when there is none."""
        if 0 <= self.selected < len(self.problems):
            return self.problems[self.selected]
        return None

    def action_move(self, step: int) -> None:
        """Select the action ``step`` rows down (negative: up), clamped."""
        if self.problems:
            self.selected = max(0, min(len(self.problems) - 1, self.selected + step))
            self._paint()

    def on_focus(self) -> None:  # noqa: D102 - Textual hook
        self._paint()

    def on_blur(self) -> None:  # noqa: D102 - Textual hook
        self._paint()

    def plain_text(self) -> str:
        """What the panel shows, as plain text (tests compare it with the outbox)."""
        return self._text().plain

    def _paint(self) -> None:
        self.update(self._text())

    def _text(self) -> Text:
        problems = self.problems
        text = Text(no_wrap=True, overflow="ellipsis")
        if not problems:
            return text
        count = len(problems)
        noun = "action waits" if count == 1 else "actions wait"
        text.append(f"\u26a0 {count} {noun} for you", style="bold")
        keys = ("  r retry \u00b7 e edit \u00b7 x discard \u00b7 Esc back" if self.has_focus
                else "  ctrl+b to retry, edit or discard")
        text.append(keys, style="dim")
        start = max(0, min(self.selected - self.ROWS // 2, count - self.ROWS))
        for index in range(start, min(count, start + self.ROWS)):
            problem = problems[index]
            mark = "\u25b8" if index == self.selected and self.has_focus else " "
            style = "bold red" if problem.state == "failed" else "yellow"
            text.append(f"\n{mark} {_MARKS.get(problem.state, '!')} ", style=style)
            text.append(describe(problem), style="reverse" if (
                index == self.selected and self.has_focus) else "")
        hidden = count - min(count, start + self.ROWS) + start
        if hidden:
            text.append(f"\n  \u2026 and {hidden} more (up/down)", style="dim")
        return text

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

    DEFAULT_CSS = """
    ProblemPanel {
        height: auto;
        max-height: 8;
        padding: 0 1;
        border-top: solid $error;
        background: $error 10%;
    }
    ProblemPanel:focus {
        background: $error 20%;
    }
    """

    ROWS = 4
    """Problem lines shown at most (a window around the selection; 2 when the lines are
    cut to the width, to leave room for the chosen one's whole reason); the rest are
    counted."""

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

    def watch_has_focus(self) -> None:  # noqa: D102 - Textual hook
        # Repaint once ``has_focus`` is set: a subclass's ``on_focus`` runs before the
        # base widget's handler sets it, and would draw the unfocused keys.
        self._paint()

    def plain_text(self) -> str:
        """What the panel shows (as last drawn), as plain text (tests compare it with
        the outbox)."""
        content = self.render()
        return getattr(content, "plain", str(content))

    def _paint(self) -> None:
        self.update(self._text())

    def on_resize(self) -> None:  # noqa: D102 - Textual hook
        self._paint()

    def _text(self) -> Text:
        """The panel's lines for its width: a header with the keys (shortened when they
        do not fit), one line per problem in a window around the selection (cut with an
        ellipsis when too long), and, when the chosen problem's line was cut (a narrow
        terminal, from 60 columns up), its whole description and reason below, wrapped:
        the server's reason is always readable in full."""
        problems = self.problems
        if not problems:
            return Text(no_wrap=True, overflow="ellipsis")
        width = self.content_size.width or 10_000  # unknown before the first layout
        focused = self.has_focus
        count = len(problems)
        noun = "action waits" if count == 1 else "actions wait"
        choices = (  # the longest that fits
            (f"\u26a0 {count} {noun} for you",
             "  r retry \u00b7 e edit \u00b7 x discard \u00b7 Esc back" if focused
             else "  ctrl+b to retry, edit or discard"),
            (f"\u26a0 {count} {noun} for you", "  r/e/x, Esc" if focused else "  ctrl+b"),
            (f"\u26a0 {count} {noun.split()[0]} waiting", "  r/e/x, Esc" if focused
             else "  ctrl+b"),
        )
        title, keys = next((c for c in choices if len(c[0]) + len(c[1]) <= width),
                           choices[-1])
        header = Text(title, style="bold")
        header.append(keys, style="dim")
        header.truncate(width, overflow="ellipsis")
        lines = [header]
        narrow = any(len(describe(p)) + 4 > width for p in problems)
        rows = 2 if narrow else self.ROWS
        start = max(0, min(self.selected - rows // 2, count - rows))
        chosen = self.selected if focused else 0
        cut = None
        for index in range(start, min(count, start + rows)):
            problem = problems[index]
            mark = "\u25b8" if index == self.selected and focused else " "
            style = "bold red" if problem.state == "failed" else "yellow"
            line = Text(f"{mark} {_MARKS.get(problem.state, '!')} ", style=style)
            line.append(describe(problem), style="reverse" if (
                index == self.selected and focused) else "")
            if line.cell_len > width:
                line.truncate(width, overflow="ellipsis")
                if index == chosen:
                    cut = problem
            lines.append(line)
        hidden = count - min(count, start + rows) + start
        if hidden:
            lines.append(Text(f"  \u2026 and {hidden} more (up/down)", style="dim",
                              no_wrap=True, overflow="ellipsis"))
        if cut is not None:
            lines.append(Text("  " + describe(cut), style="italic"))
        return Text("\n").join(lines)

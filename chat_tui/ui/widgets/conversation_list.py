"""The conversation list: title, unread count, queued count, failure mark, preview,
assistant marker, and the marker of an end-to-end encrypted Matrix room (not supported yet:
docs/sync.md M3).

Rows come from ``store.list_conversations()`` (most recent activity first, one indexed
query). Titles and previews are untrusted and rendered as inert :class:`rich.text.Text`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from chat_tui.ui.conversation_window import ROW_PAGE
from chat_tui.ui.safe_text import inert_line

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.store import ConversationView

__all__ = ["ENCRYPTED_MARK", "PROBLEM_MARK", "ConversationList", "render_conversation"]

PROBLEM_MARK = "\u2717"
"""The failure mark of a row (followed by how many of its actions wait for the user)."""

ENCRYPTED_MARK = "[E2E] "
"""Before the title of an end-to-end encrypted Matrix room: listed, its messages shown as
"encrypted message", nothing sent into it (docs/sync.md, rule M3)."""


def render_conversation(conv: ConversationView, *, current: bool, width: int = 30) -> Text:
    """Two lines for ``conv``: marker, title and counters; then the last-message preview.

    Counters: ``\u25f7N`` my actions waiting to be sent; :data:`PROBLEM_MARK` ``N`` my
    actions that wait for me (failed, expired, or blocked behind one: outbox rule 3,
    ``ConversationView.problem_count``), so a failure shows in the list whichever
    conversation is open; the unread count. ``width`` (cells) bounds the title and preview
    so counters stay visible.
    """
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append("\u258c" if current else " ", style="bold cyan")
    if conv.assistant:
        line.append("\u2726 ", style="bright_magenta")
    marker = 0
    if conv.encrypted:
        line.append(ENCRYPTED_MARK, style="red")
        marker = len(ENCRYPTED_MARK)
    badges = Text()
    waiting = conv.queued_count - conv.problem_count
    if waiting > 0:
        badges.append(f" \u25f7{waiting}", style="yellow")
    if conv.problem_count:
        badges.append(f" {PROBLEM_MARK}{conv.problem_count}", style="bold red")
    if conv.unread_count:
        badges.append(f" {conv.unread_count} ", style="bold reverse cyan")
    title_room = max(4, width - 3 - len(badges) - (2 if conv.assistant else 0) - marker)
    line.append(inert_line(conv.title, title_room) or "(untitled)",
                style="bold" if conv.unread_count or current else "")
    pad = width - line.cell_len - badges.cell_len
    if pad > 0:
        line.append(" " * pad)
    line.append_text(badges)
    preview = Text("  ", no_wrap=True, overflow="ellipsis")
    preview.append(inert_line(conv.last_message_preview or "", width - 2) or "no messages",
                   style="dim")
    line.append("\n")
    line.append_text(preview)
    return line


class ConversationList(OptionList):
    """Conversation list. Posts :class:`ConversationList.Opened` when one is chosen.

    ``conversations``: the ``ConversationView`` rows shown; ``current_id``: the open one.
    """

    class Opened(Message):
        """The user chose a conversation (Enter or click). ``conversation_id``: str."""

        def __init__(self, conversation_id: str) -> None:
            super().__init__()
            self.conversation_id = conversation_id

    class NeedMore(Message):
        """The rows reached the end of a window of the list (``show(complete=False)``):
        the screen reads a longer window and calls :meth:`show` again."""

    PAGE = ROW_PAGE
    """Rows built at a time. Only the rows near what is on screen exist as options; more are
    appended as the highlight or the scroll position nears the end (a cache of 10,000
    conversations built every row on each open: 2 s; benchmarks/NOTES.md)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, markup=False)
        self.conversations: list[ConversationView] = []
        self.current_id: str | None = None
        self._built_width = 0
        self._loaded = 0  # rows of ``conversations`` that exist as options
        self._first_frame = False  # rows were given before the first layout
        self.complete = True  # ``conversations`` is the whole list, not a window of it
        self._wanted = 0  # rows asked for beyond the window (built once it arrives)

    def _width(self) -> int:
        """Cells of a row's text: the list's content width less 3 (scrollbar, margin)."""
        return max(12, (self.size.width or self._styled_width() or 32) - 3)

    def _styled_width(self) -> int:
        """The content width the stylesheet gives the list before any layout: its
        ``width`` in cells less its border and padding; 0 when the width is not a fixed
        number of cells (a fraction or a percentage waits for the layout)."""
        width = self.styles.width
        if width is None or not width.is_cells:
            return 0
        return max(0, int(width.value) - self.styles.gutter.width)

    def _option(self, conv: ConversationView, width: int) -> Option:
        return Option(render_conversation(conv, current=conv.id == self.current_id, width=width),
                      id=conv.id)

    def show(self, conversations: Sequence[ConversationView], current_id: str | None, *,
             complete: bool = True) -> None:
        """Replace the rows with ``conversations``; keep the highlight on the same id.

        ``complete``: False when ``conversations`` is only a window (the most recent) of the
        list; scrolling past its end posts :class:`NeedMore`. When only the open
        conversation changed, or the new rows extend the old ones, the rows already built
        stay and just the old and new open rows are redrawn."""
        self.complete = complete
        if not self.size.width:
            # Not laid out yet (the first frame's on_mount): the rows are built at the
            # width the stylesheet gives the list (:meth:`_styled_width`), so the first
            # layout holds them and the first frame shows them. Without a width in cells
            # they wait for the first resize, which builds them once at the real width
            # (rows built at a guessed width are built again: ~10 ms for 100 rows).
            self._first_frame = True
            if not self._styled_width():
                self.conversations = list(conversations)
                self.current_id = current_id
                return
        highlighted = self.highlighted_option.id if self.highlighted_option else current_id
        previous = self.current_id
        width = self._width()
        same = (width == self._built_width and self._loaded
                and len(conversations) >= len(self.conversations)
                and all(a == b for a, b in zip(conversations, self.conversations, strict=False)))
        self.conversations = list(conversations)
        self.current_id = current_id
        ids = [c.id for c in self.conversations]
        target = highlighted if highlighted in ids else current_id
        wanted = max((ids.index(i) + 1 for i in (target, current_id) if i in ids), default=0)
        if same:
            # Rows for the highlight and the open row, within the rows given; beyond them
            # only when a longer window was asked for (the list was scrolled past its end).
            pending, self._wanted = self._wanted, 0
            wanted_rows = max(wanted + self.PAGE // 2, pending)
            self._load_until(wanted_rows if pending
                             else min(wanted_rows, len(self.conversations)))
            for cid in {previous, current_id} - {None}:
                if cid in ids and ids.index(cid) < self._loaded:
                    self.replace_option_prompt(cid, self._option(
                        self.conversations[ids.index(cid)], width).prompt)
        else:
            # The build of the first frame (rows given before the first layout) makes a
            # screenful of rows (a row is at least one line), later ones a page; the rest
            # comes as the list scrolls or the highlight moves down.
            first, self._first_frame = self._first_frame, False
            self._built_width = width
            rows = self.size.height or self.app.size.height  # a screenful, before layout
            self._loaded = min(len(ids), max(rows, wanted + 8) if first
                               else max(self.PAGE, wanted + self.PAGE // 2, self._wanted))
            self._wanted = 0
            self.set_options(self._option(c, width) for c in self.conversations[:self._loaded])
        if target in ids:
            self.highlighted = ids.index(target)

    def _load_until(self, count: int) -> None:
        """Append options until ``count`` rows exist (or every conversation does); past
        the end of a window, ask for a longer one (:class:`NeedMore`)."""
        if count > len(self.conversations) and not self.complete:
            if not self._wanted:
                self.post_message(self.NeedMore())
            self._wanted = max(self._wanted, count)
        count = min(count, len(self.conversations))
        if count > self._loaded:
            width = self._built_width or self._width()
            self.add_options(self._option(c, width)
                             for c in self.conversations[self._loaded:count])
            self._loaded = count

    def watch_highlighted(self, highlighted: int | None) -> None:  # noqa: D102 - Textual hook
        super().watch_highlighted(highlighted)
        # More rows when the highlight nears the end of the built ones (a quarter page,
        # or a quarter of a first frame's screenful, from the end).
        edge = min(self.PAGE // 4, max(1, self._loaded // 4))
        if highlighted is not None and highlighted >= self._loaded - edge:
            self._load_until(self._loaded + self.PAGE)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:  # noqa: D102
        super().watch_scroll_y(old_value, new_value)
        if new_value >= self.max_scroll_y - self.size.height * 2:
            self._load_until(self._loaded + self.PAGE)

    def on_resize(self) -> None:  # noqa: D102 - Textual hook
        if self.conversations and self._width() != self._built_width:
            self.show(self.conversations, self.current_id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Enter/click on a row opens that conversation."""
        event.stop()
        if event.option.id:
            self.post_message(self.Opened(event.option.id))

    def neighbour(self, step: int) -> str | None:
        """Id of the conversation ``step`` rows from the open one (wrapping), or None."""
        ids = [c.id for c in self.conversations]
        if not ids:
            return None
        index = ids.index(self.current_id) if self.current_id in ids else -step
        return ids[(index + step) % len(ids)]

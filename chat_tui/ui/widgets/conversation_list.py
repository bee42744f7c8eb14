"""The conversation list: title, unread count, queued count, preview, assistant marker.

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

from chat_tui.ui.safe_text import inert_line

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.store import ConversationView

__all__ = ["ConversationList", "render_conversation"]


def render_conversation(conv: ConversationView, *, current: bool, width: int = 30) -> Text:
    """Two lines for ``conv``: marker, title and counters; then the last-message preview.

    ``width`` (cells) bounds the title and preview so counters stay visible.
    """
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append("\u258c" if current else " ", style="bold cyan")
    if conv.assistant:
        line.append("\u2726 ", style="bright_magenta")
    badges = Text()
    if conv.queued_count:
        badges.append(f" \u25f7{conv.queued_count}", style="yellow")
    if conv.unread_count:
        badges.append(f" {conv.unread_count} ", style="bold reverse cyan")
    title_room = max(4, width - 3 - len(badges) - (2 if conv.assistant else 0))
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

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, markup=False)
        self.conversations: list[ConversationView] = []
        self.current_id: str | None = None

    def show(self, conversations: Sequence[ConversationView], current_id: str | None) -> None:
        """Replace the rows with ``conversations``; keep the highlight on the same id."""
        highlighted = self.highlighted_option.id if self.highlighted_option else current_id
        self.conversations = list(conversations)
        self.current_id = current_id
        width = max(12, (self.size.width or 32) - 3)
        self.set_options(
            Option(render_conversation(c, current=c.id == current_id, width=width), id=c.id)
            for c in conversations
        )
        ids = [c.id for c in conversations]
        target = highlighted if highlighted in ids else current_id
        if target in ids:
            self.highlighted = ids.index(target)

    def on_resize(self) -> None:  # noqa: D102 - Textual hook
        if self.conversations:
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

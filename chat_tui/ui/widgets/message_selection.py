"""Selecting a message in the message list (up/down or k/j when the list has the focus):
the message the message actions (edit, delete, retry, discard) apply to, highlighted and
scrolled into view, and the first visible message (the scroll position saved per
conversation).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.store import MessageView

__all__ = ["Selection"]


class Selection:
    """Mixin of :class:`~chat_tui.ui.widgets.message_list.MessageList`: ``selected_id``
    (the selected message's id, or None) over the list's ``views`` and ``_items``."""

    def action_select(self, step: int) -> None:
        """Move the selection by ``step`` messages (-1 up, +1 down), loading pages at the ends."""
        if not self.views:
            return
        ids = [v.id for v in self.views]
        if self.selected_id in ids:
            index = ids.index(self.selected_id) + step
        else:
            index = len(ids) - 1 if step < 0 else 0
        if index < 0:
            self.load_older()
            index = 0
        if index >= len(ids):
            if not self.at_newest:
                self.load_newer()
            index = len(ids) - 1
        self.select(ids[index])

    def select(self, message_id: str | None) -> None:
        """Select ``message_id`` (highlight it and scroll it into view); None clears."""
        if self.selected_id in self._items:
            self._items[self.selected_id].remove_class("-selected")
        self.selected_id = message_id
        item = self._items.get(message_id) if message_id else None
        if item is not None:
            item.add_class("-selected")
            if not self.is_anchored or message_id != self.views[-1].id:
                self.release_anchor()
            self.scroll_to_widget(item, animate=False, immediate=True)

    def selected_view(self) -> MessageView | None:
        """The selected message's ``MessageView``, or None."""
        if self.selected_id and self.selected_id in self._items:
            return self._items[self.selected_id].view
        return None

    def first_visible_id(self) -> str | None:
        """Id of the first message at least partly visible (the scroll anchor to save)."""
        top = self.scroll_y
        for view in self.views:
            item = self._items.get(view.id)
            if item is not None and item.virtual_region.bottom > top:
                return view.id
        return None

    def on_focus(self) -> None:  # noqa: D102 - Textual hook
        if self.selected_id is None and self.views:
            self.select(self.views[-1].id)

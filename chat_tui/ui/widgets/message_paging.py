"""Paging through a conversation's cached history in the message list: older pages load
from the cache as the view nears the top (``store.messages_before``), newer ones near the
bottom when the window does not reach the newest message (``store.messages_after``), the far
end is trimmed so the window stays within ``MessageList.MAX_WINDOW`` widgets, and when the
cache has nothing older the engine backfills one page from the server
(``Engine.backfill``, sync rule S5). The :class:`TopMarker` says which of these applies.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.widgets import Static

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.store import MessageView
    from chat_tui.ui.widgets.message_item import MessageItem

__all__ = ["Paging", "TopMarker"]

log = logging.getLogger(__name__)


class TopMarker(Static):
    """First row of the list: "loading older messages" or "start of the conversation"."""

    def show(self, *, open_: bool, loading: bool, at_start: bool, empty: bool) -> None:
        """Label for the list's state: no conversation open (``open_`` False), a backfill
        running (``loading``), nothing older anywhere (``at_start``), no messages (``empty``)."""
        if not open_:
            self.update(Text(""))
        elif loading:
            self.update(Text("\u2191 loading older messages from the server\u2026",
                             style="italic dim"))
        elif at_start or empty:
            label = "no messages yet - say hello" if empty else "start of the conversation"
            self.update(Text(label, style="dim"))
        else:
            self.update(Text("\u2191 older messages", style="dim"))


class Paging:
    """Mixin of :class:`~chat_tui.ui.widgets.message_list.MessageList`: loading pages at
    either end of the window and trimming the other end (the list's ``views``, ``_items``,
    ``_lock``, ``_busy``, ``_backfilling`` and ``_no_older``)."""

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:  # noqa: D102
        super().watch_scroll_y(old_value, new_value)
        if self.conversation_id is None or self._busy or not self.views:
            return
        if new_value <= self.EDGE and new_value <= old_value:
            self.load_older()
        elif new_value >= self.max_scroll_y - self.EDGE and not self.at_newest:
            self.load_newer()
        self.post_message(self.Scrolled())

    @work(exclusive=True, group="page", exit_on_error=False)
    async def load_older(self) -> int:
        """Prepend the page before the window from the cache (or backfill it); returns rows added."""
        cid = self.conversation_id
        if cid is None or not self.views or self._busy:
            return 0
        self._busy = True
        try:
            async with self._lock:
                if cid != self.conversation_id or not self.views:
                    return 0
                older = self.source.store.messages_before(cid, self.views[0].sort_key,
                                                            limit=self.PAGE)
                if older:
                    await self._prepend(older)
                    return len(older)
            if not self._no_older:
                await self._backfill(cid)
            return 0
        finally:
            self._busy = False

    async def _backfill(self, cid: str) -> None:
        store, engine = self.source.store, self.source.engine
        if engine is None or self._backfilling or not store.has_older(cid):
            self._no_older = True
            self._update_top()
            return
        self._backfilling = True
        self._update_top()
        try:
            added = await engine.backfill(cid)
        except Exception:  # noqa: BLE001 - offline or server error: keep what we have
            log.info("backfill of %s failed", cid, exc_info=True)
            added = 0
        finally:
            self._backfilling = False
        if cid != self.conversation_id:
            return
        if added and self.views:
            async with self._lock:
                older = store.messages_before(cid, self.views[0].sort_key, limit=self.PAGE)
                if older and cid == self.conversation_id:
                    await self._prepend(older)
        elif not store.has_older(cid):
            self._no_older = True
        self._update_top()

    async def _prepend(self, older: Sequence[MessageView]) -> None:
        first = self._items[self.views[0].id]
        offset = first.virtual_region.y - self.scroll_y
        self.release_anchor()
        items = [self._new_item(v) for v in older]
        self.views = list(older) + self.views
        await self.mount_all(items, after=self._top)
        excess = len(self.views) - self.MAX_WINDOW
        if excess > 0:
            dropped, self.views = self.views[-excess:], self.views[:-excess]
            await self._remove_views(dropped)
            self.at_newest = False
        self._update_top()
        self.call_after_refresh(self._restore_offset, first, offset)

    def _restore_offset(self, item: MessageItem, offset: float) -> None:
        self.scroll_to(y=item.virtual_region.y - offset, animate=False, immediate=True)

    @work(exclusive=True, group="page", exit_on_error=False)
    async def load_newer(self) -> int:
        """Append the page after the window from the cache; returns rows added."""
        cid = self.conversation_id
        if cid is None or not self.views or self._busy or self.at_newest:
            return 0
        self._busy = True
        try:
            async with self._lock:
                if cid != self.conversation_id or not self.views:
                    return 0
                newer = self.source.store.messages_after(cid, self.views[-1].sort_key,
                                                           limit=self.PAGE)
                if len(newer) < self.PAGE:
                    self.at_newest = True
                if newer:
                    await self._append(newer)
                return len(newer)
        finally:
            self._busy = False

    async def _append(self, newer: Sequence[MessageView]) -> None:
        items = [self._new_item(v) for v in newer]
        self.views = self.views + list(newer)
        await self.mount_all(items)
        excess = len(self.views) - self.MAX_WINDOW
        if excess > 0:
            keep = self._items[self.views[excess].id]
            offset = keep.virtual_region.y - self.scroll_y
            dropped, self.views = self.views[:excess], self.views[excess:]
            await self._remove_views(dropped)
            self._no_older = False
            self._update_top()
            self.call_after_refresh(self._restore_offset, keep, offset)

    async def jump_newest(self) -> None:
        """Show the newest page and follow new messages again."""
        if not self.at_newest:
            await self.open(self.conversation_id)
        else:
            self.anchor()

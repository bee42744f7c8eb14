"""The message list: a bounded window over a conversation's cached history.

Never one widget per message of a whole history (a long history must open fast): the
list holds at most :attr:`MessageList.MAX_WINDOW` message widgets. It opens on the newest
page (``store.messages_before(cid, None, PAGE)``) or on a window around a message
(``store.message_window_around``), loads older pages from the cache as the view nears the
top (``messages_before``), newer ones near the bottom when the window does not reach the
newest message (``messages_after``), trims the far end to stay bounded, and when the cache
has nothing older asks the engine to backfill one page from the server. Opening a
conversation of 100,000 cached messages therefore costs the same as one of 100: one
indexed query of ``PAGE`` rows and ``PAGE`` widgets.

The list reads through a :class:`HistorySource` (the chat screen: store, clock, engine)
given to it, and reports scrolling with a :class:`MessageList.Scrolled` message; it never
reaches into the app. Paging lives in :class:`~chat_tui.ui.widgets.message_paging.Paging`,
the selection in :class:`~chat_tui.ui.widgets.message_selection.Selection`; this module
holds the window itself: opening a conversation, live updates, cached answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.geometry import Size
from textual.message import Message

from chat_tui.ui.keymap import ACTIONS, bindings_for, is_typing
from chat_tui.ui.widgets.message_item import ASSISTANT, CachedAnswer, MessageItem
from chat_tui.ui.widgets.message_paging import Paging, TopMarker
from chat_tui.ui.widgets.message_selection import Selection

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.store import Cache, MessageView
    from chat_tui.sync.engine import Engine
    from chat_tui.ui.clock import Clock

__all__ = ["HistorySource", "MessageList"]

log = logging.getLogger(__name__)


class HistorySource(Protocol):
    """What the message list reads from: ``store`` (:class:`chat_tui.store.Cache`, read
    API), ``clock`` (:class:`chat_tui.ui.clock.Clock`) and ``engine`` (the running
    ``Engine`` for backfills, or None before it started / without network)."""

    @property
    def store(self) -> Cache: ...  # noqa: D102

    @property
    def clock(self) -> Clock: ...  # noqa: D102

    @property
    def engine(self) -> Engine | None: ...  # noqa: D102


class MessageList(Paging, Selection, VerticalScroll, can_focus=True):
    """Scrollable window of :class:`MessageItem` widgets for one conversation.

    State: ``conversation_id`` (str | None); ``views`` (ascending ``MessageView`` list
    currently mounted); ``at_newest`` (the window includes the newest cached message);
    ``selected_id`` (message id the message actions apply to, or None).
    """

    PAGE = 50
    MAX_WINDOW = 150
    MIN_ROWS = 3
    """Rows a message takes at least (header, one body line, the margin below it)."""
    EDGE = 3  # lines from the top/bottom edge at which the next page loads

    BINDINGS = [
        *bindings_for("messages"),
        Binding("up,k", "select(-1)", "Select", show=False),
        Binding("down,j", "select(1)", "Select", show=False),
    ]

    class Scrolled(Message):
        """The list scrolled (the screen saves the position after a pause)."""

    class Typed(Message):
        """A printable key that is none of the list's keys (:attr:`LIST_KEYS`): meant for
        the composer. ``key`` and ``character`` as in ``textual.events.Key``."""

        def __init__(self, key: str, character: str | None) -> None:
            super().__init__()
            self.key = key
            self.character = character

    LIST_KEYS = frozenset(key for entry in ACTIONS if entry.scope == "messages"
                          for key in entry.keys.split(","))
    """The list's documented keys (the ``messages`` scope of :mod:`chat_tui.ui.keymap`)."""

    def on_key(self, event: events.Key) -> None:
        """A printable key typed here that is none of :attr:`LIST_KEYS` goes to the
        composer (:class:`Typed`) instead of doing nothing or firing an action; so does
        every printable key after it until the list gets the focus again (the rest of a
        burst reaches the list even after the composer took the focus: the ``d`` and ``e``
        of "hold on, read" are typed, not a delete or an edit)."""
        if is_typing(event.key, event.is_printable) and (
                self._typing or event.key not in self.LIST_KEYS):
            event.stop()
            event.prevent_default()
            self._typing = True
            self.post_message(self.Typed(event.key, event.character))

    def on_focus(self) -> None:  # noqa: D102 - Textual hook (Selection's runs too)
        self._typing = False

    def __init__(self, source: HistorySource, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.source = source
        self.conversation_id: str | None = None
        self.views: list[MessageView] = []
        self._items: dict[str, MessageItem] = {}
        self._answers: dict[str, CachedAnswer] = {}
        self.at_newest = True
        self.selected_id: str | None = None
        self._typing = False  # a key went to the composer; the focus follows it
        self._busy = False
        self._backfilling = False
        self._no_older = False
        self._top = TopMarker(Text(""), markup=False, id="top-marker")
        self._pending: list[MessageView] = []
        # Serialises every change of the mounted window (open, live refresh, paging): an
        # engine refresh landing while a conversation opens must not mount into a
        # half-replaced window.
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ building
    def compose(self):  # noqa: D102 - Textual hook
        yield self._top
        for view in self._pending:
            item = self._new_item(view)
            yield item
        self._pending = []

    @classmethod
    def first_page(cls, rows: int) -> int:
        """Messages the first frame reads and mounts for a terminal ``rows`` high: enough
        to fill the pane even if every message is one line (``rows // MIN_ROWS`` plus a
        few), at most :attr:`PAGE`. Older ones load from the cache as the view nears the
        top, like any page. (50 widgets cost the first frame ~60 ms of mounting, layout
        and rendering at 120x40 where 15 are visible: benchmarks/NOTES.md.)"""
        return max(8, min(cls.PAGE, rows // cls.MIN_ROWS + 4))

    def preload(self, conversation_id: str | None, views: Sequence[MessageView], at_newest: bool) -> None:
        """Set the first window before mounting, so the first frame shows it (no await)."""
        self.conversation_id = conversation_id
        self.views = list(views)
        self._pending = list(views)
        self.at_newest = at_newest
        self._no_older = False

    def _new_item(self, view: MessageView) -> MessageItem:
        item = MessageItem(view, self.source.clock)
        if view.id == self.selected_id:
            item.add_class("-selected")
        self._items[view.id] = item
        return item

    def prime_viewport(self, height: int) -> None:
        """Before the first layout that shows this list, after it was laid out only while
        hidden: take ``height`` (rows) as its viewport's height. Textual scrolls an
        anchored widget to its end from the viewport of its previous layout, which for a
        list never shown is 0 rows: the first frame would draw the window scrolled past
        its end (a blank pane) and only the next layout, ~40 ms later, the newest
        messages. Does nothing once the list has a viewport, or for ``height`` <= 0."""
        size = self.container_size
        if size.height == 0 and height > 0:
            self._container_size = Size(size.width, height)

    def watch_virtual_size(self) -> None:
        """A window no taller than the pane cannot be scrolled up to its top edge, where
        the next older page loads (:meth:`Paging.watch_scroll_y`): ask for it once the
        layout is drawn, so the pane fills with history and the top marker tells whether
        there is any older ("start of the conversation")."""
        self.call_after_refresh(self._fill_when_short)

    def _fill_when_short(self) -> None:
        if (self.conversation_id is not None and self.views and not self._busy
                and not self._no_older and self.is_mounted
                and self.max_scroll_y <= self.EDGE):
            self.load_older()

    def on_mount(self) -> None:  # noqa: D102 - Textual hook
        self._check_older()
        self._update_top()
        if self.at_newest:
            self.anchor()

    def _check_older(self) -> None:
        """Set ``_no_older`` when neither the cache nor the server has anything older."""
        cid = self.conversation_id
        if cid is None:
            return
        before = self.views[0].sort_key if self.views else None
        try:
            self._no_older = not self.source.store.has_older(cid, before)
        except Exception:  # noqa: BLE001 - only a label depends on it
            log.info("has_older failed", exc_info=True)

    async def open(self, conversation_id: str | None, anchor_id: str | None = None,
                   *, select: bool = False) -> None:
        """Show ``conversation_id`` from the cache: its newest page, or a window around
        ``anchor_id`` (scrolled so that message is at the top and, with ``select``, selected).
        """
        async with self._lock:
            await self._open(conversation_id, anchor_id, select=select)

    async def _open(self, conversation_id: str | None, anchor_id: str | None,
                    *, select: bool) -> None:
        store = self.source.store
        self.conversation_id = conversation_id
        self._no_older = False
        self.selected_id = None
        views: list[MessageView] = []
        at_newest = True
        if conversation_id is not None:
            if anchor_id is not None:
                views = store.message_window_around(conversation_id, anchor_id, limit=self.PAGE)
                if not any(v.id == anchor_id for v in views):
                    views, anchor_id = [], None
                else:
                    newer = store.messages_after(conversation_id, views[-1].sort_key, limit=1)
                    at_newest = not newer
            if not views:
                views = store.messages_before(conversation_id, None, limit=self.PAGE)
        if select and anchor_id:
            self.selected_id = anchor_id
        self.views = list(views)
        self._check_older()
        await self._replace_all(views, at_newest)
        if anchor_id is not None and anchor_id in self._items:
            target = self._items[anchor_id]
            self.release_anchor()
            self.call_after_refresh(self._scroll_to_item, target)
        else:
            self.anchor()

    def _scroll_to_item(self, item: MessageItem, top: bool = True) -> None:
        if top:
            self.scroll_to(y=max(0, item.virtual_region.y - 1), animate=False, immediate=True)
        else:
            self.scroll_to_widget(item, animate=False, immediate=True)

    async def _replace_all(self, views: Sequence[MessageView], at_newest: bool) -> None:
        self._answers.clear()
        self._items.clear()
        self.views = list(views)
        self.at_newest = at_newest
        await self.remove_children([w for w in self.children if w is not self._top])
        items = [self._new_item(v) for v in views]
        if items:
            await self.mount_all(items)
        self._update_top()

    def _update_top(self) -> None:
        self._top.show(open_=self.conversation_id is not None, loading=self._backfilling,
                       at_start=self._no_older, empty=not self.views)

    async def _remove_views(self, dropped: Sequence[MessageView]) -> None:
        widgets: list[Any] = []
        for view in dropped:
            item = self._items.pop(view.id, None)
            if item is not None:
                widgets.append(item)
            answer = self._answers.pop(view.id, None)
            if answer is not None:
                widgets.append(answer)
        if widgets:
            await self.remove_children(widgets)

    # ------------------------------------------------------------------ live updates
    async def refresh_messages(self, message_ids: Sequence[str] = ()) -> None:
        """Re-read the window from the cache after ``MessagesChanged`` and reconcile widgets.

        At the newest end, the newest ``len(window) + len(message_ids)`` rows (bounded by
        :attr:`MAX_WINDOW`) are read, so new messages append and acknowledged local echoes
        move to their server position; elsewhere the window's own range is re-read.
        """
        async with self._lock:
            await self._refresh(message_ids)

    async def _refresh(self, message_ids: Sequence[str]) -> None:
        cid = self.conversation_id
        if cid is None:
            return
        store = self.source.store
        if self.at_newest or not self.views:
            limit = min(self.MAX_WINDOW, max(self.PAGE, len(self.views) + len(message_ids)))
            fresh = store.messages_before(cid, None, limit=limit)
            if self.views and len(fresh) == limit:
                # keep the window's old top when it is still inside what we read
                ids = [v.id for v in fresh]
                if self.views[0].id in ids:
                    fresh = fresh[ids.index(self.views[0].id):]
        else:
            rest = store.messages_after(cid, self.views[0].sort_key, limit=len(self.views) - 1)
            fresh = [self.views[0], *rest]
        await self._reconcile(fresh)

    async def _reconcile(self, fresh: Sequence[MessageView]) -> None:
        old_ids = [v.id for v in self.views]
        new_ids = [v.id for v in fresh]
        new_set = set(new_ids)
        gone = [v for v in self.views if v.id not in new_set]
        if gone:
            await self._remove_views(gone)
        old_set = set(old_ids)
        reorder = [i for i in old_ids if i in new_set] != [i for i in new_ids if i in old_set]
        previous: Any = self._top
        for view in fresh:
            item = self._items.get(view.id)
            if item is None:
                item = self._new_item(view)
                await self.mount(item, after=previous)
            else:
                item.show(view)
                if reorder:
                    self.move_child(item, after=previous)
            previous = self._answers.get(view.id, item)
            if reorder and previous is not item:
                self.move_child(previous, after=item)
        self.views = list(fresh)
        self._update_top()

    def rerender(self) -> None:
        """Re-render every item (after Markdown became available, or the clock changed)."""
        for item in self._items.values():
            item.show(item.view, force=True)
        for answer in self._answers.values():
            answer.rerender()

    def upgrade_markdown(self) -> None:
        """Re-render only the assistant replies on screen (once Markdown is enabled); the
        others look the same either way, so nothing imports the Markdown stack for them."""
        for item in self._items.values():
            if item.view.author == ASSISTANT:
                item.show(item.view)
        for answer in self._answers.values():
            answer.rerender()

    async def add_cached_answer(self, question_id: str, answer: MessageView) -> None:
        """Show ``answer`` (an earlier assistant reply) below the message ``question_id``."""
        async with self._lock:
            item = self._items.get(question_id)
            if item is None or question_id in self._answers:
                return
            widget = CachedAnswer(question_id, answer, self.source.clock)
            self._answers[question_id] = widget
            await self.mount(widget, after=item)

    @property
    def at_bottom(self) -> bool:
        """True when the newest message is on screen."""
        return self.at_newest and self.scroll_y >= self.max_scroll_y - 1

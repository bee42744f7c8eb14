"""The chat screen: conversation list, messages, composer; the flows between them.

First frame: :meth:`ChatScreen.compose` reads only the local cache (UI
state, a page of the conversation list, the newest messages of the last open
conversation), so the last conversation shows before any network call. It holds the
conversation list and the messages; what cannot be used in its first ~50 ms (the composer
and the key bar, the title bar's parts, the offline banner unless it shows from the start)
mounts right after it (:meth:`ChatScreen.on_chat_screen_drawn`). Engine
events (:mod:`chat_tui.sync.events`) arrive as :class:`~chat_tui.ui.messages.EngineEvent`
messages and are matched on their classes; connectivity and outbox counts are reactives
whose watchers update the banner and indicators; message and list refreshes are
coalesced into one per burst.

The screen reads only through the store's read API and acts only through the engine
façade (docs/engine.md). Its jobs live in mixins named after them: the message actions
in :class:`~chat_tui.ui.screens.chat_actions.MessageActions`, the failed actions in
:class:`~chat_tui.ui.screens.chat_problems.ProblemActions`, the handling of engine events
in :class:`~chat_tui.ui.screens.chat_status.EngineStatus`, the login-needed state in
:class:`~chat_tui.ui.screens.chat_login.LoginWatch`, opening conversations, focus, paging
and read markers in :class:`~chat_tui.ui.screens.chat_navigation.Navigation`, the
composer's arrival after the first frame in
:class:`~chat_tui.ui.screens.chat_early_keys.EarlyKeys`. User text is untrusted: see
:mod:`chat_tui.ui.safe_text`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import MountError
from textual.widgets import Static

from chat_tui.ui.conversation_window import ConversationWindow
from chat_tui.ui.keymap import bindings_for
from chat_tui.ui.safe_text import inert_line
from chat_tui.ui.screens.chat_actions import MessageActions
from chat_tui.ui.screens.chat_conversation import ConversationMenuActions
from chat_tui.ui.screens.chat_early_keys import EarlyKeys
from chat_tui.ui.screens.chat_login import LoginWatch
from chat_tui.ui.screens.chat_navigation import Navigation
from chat_tui.ui.screens.chat_problems import ProblemActions
from chat_tui.ui.screens.chat_replies import ReplyActions
from chat_tui.ui.screens.chat_status import EngineStatus
from chat_tui.ui.screens.saved_place import SavedPlace
from chat_tui.ui.widgets.conversation_list import ConversationList
from chat_tui.ui.widgets.message_item import enable_markdown
from chat_tui.ui.widgets.message_list import MessageList
from chat_tui.ui.widgets.skeleton import Skeleton
from chat_tui.ui.widgets.status import OfflineBanner, QueueIndicator, SyncIndicator

if TYPE_CHECKING:  # pragma: no cover
    from textual.widgets import TextArea

    from chat_tui.store import Cache, ConversationView, MessageView
    from chat_tui.store.first_frame import FirstFrameReader
    from chat_tui.sync.engine import Engine
    from chat_tui.ui.clock import Clock
    from chat_tui.ui.widgets.composer import Composer

__all__ = ["ChatScreen"]


class ChatScreen(EngineStatus, LoginWatch, ProblemActions, MessageActions, ReplyActions,
                 ConversationMenuActions, Navigation, EarlyKeys, Screen[None]):
    """The main screen of :class:`chat_tui.ui.app.ChatApp`.

    Args:
        store: the account's open cache (``chat_tui.store.Cache``); read on the first frame.
            Or the first frame's reader (``chat_tui.store.first_frame.FirstFrameReader``)
            with ``cache_open=False``: the app opens the cache after the first frame and
            hands it over with :meth:`install_cache`.
        clock: time source and display zone.
        cache_open: False while ``store`` is the first frame's reader.

    State: ``current_id`` (open conversation id or None); ``window``
    (:class:`~chat_tui.ui.conversation_window.ConversationWindow`, the rows of the list);
    reactives ``connectivity`` (``online``/``offline``/``connecting``), ``work_offline``,
    ``last_synced_at`` (UTC datetime or None), ``outbox`` (counts by outbox state) and
    ``sync_phase`` (``(phase, done, total)`` of the puller).
    """

    BINDINGS = bindings_for("app", owner="chat")

    connectivity: reactive[str] = reactive("connecting", init=False)
    work_offline: reactive[bool] = reactive(False, init=False)
    last_synced_at: reactive[datetime | None] = reactive(None, init=False)
    outbox: reactive[dict[str, int]] = reactive(dict, init=False)
    sync_phase: reactive[tuple[str, int, int | None]] = reactive(("idle", 0, None), init=False)

    class Drawn(Message, bubble=False):
        """Posted by the app once the first frame is on screen."""

    class Ready(Message):
        """The screen is complete (the app starts the engine now)."""

    def __init__(self, store: Cache | FirstFrameReader, clock: Clock, *,
                 cache_open: bool = True) -> None:
        super().__init__()
        self._store = store
        self.cache_ready = asyncio.Event()
        """Set once ``store`` is the open cache (at once unless ``cache_open`` is False)."""
        if cache_open:
            self.cache_ready.set()
        self._after_cache: list[Callable[[], object]] = []
        self._clock = clock
        self.window = ConversationWindow(store)
        self.current_id: str | None = None
        self._flush_timer: Timer | None = None
        self._list_timer: Timer | None = None
        self._dirty_messages: dict[str, set[str]] = {}
        self._last_read: dict[str, str] = {}
        self._partial_list = False
        self._initial_anchor: str | None = None
        self.messages = MessageList(self, id="messages")
        self.composer: Composer | None = None  # mounted right after the first frame
        self._early_keys: list[events.Key] | None = []
        self.conversation_list = ConversationList(id="conversations")
        self._title = Static(Text(""), markup=False, id="chat-title")
        self.queue_indicator = QueueIndicator(id="queue")
        self.sync_indicator = SyncIndicator(id="sync")
        self.banner = OfflineBanner(clock, id="offline")
        self.skeleton = Skeleton(id="skeleton")
        self.place = SavedPlace(store, self.messages, lambda: self.current_id, self.set_timer)

    # ------------------------------------------------------------------ sources
    @property
    def store(self) -> Cache:
        """The account's cache (``chat_tui.store.Cache``); until :attr:`cache_ready`, the
        first frame's reader, which answers the first frame's reads only."""
        return self._store  # type: ignore[return-value]

    def install_cache(self, cache: Cache) -> None:
        """Read and write through the open ``cache`` from now on (it replaces the first
        frame's reader), then run what waited for it (:meth:`after_cache`)."""
        self._store = self.window.store = self.place.store = cache
        self.cache_ready.set()
        waiting, self._after_cache = self._after_cache, []
        for callback in waiting:
            callback()

    def after_cache(self, callback: Callable[[], object]) -> None:
        """Run ``callback()`` once the cache is open (now when it is)."""
        if self.cache_ready.is_set():
            callback()
        else:
            self._after_cache.append(callback)

    @property
    def clock(self) -> Clock:
        """Time source and display zone (``chat_tui.ui.clock.Clock``)."""
        return self._clock

    @property
    def engine(self) -> Engine | None:
        """The app's running engine, or None (not started yet, or no network)."""
        return getattr(self.app, "engine", None)

    @property
    def conversations(self) -> list[ConversationView]:
        """The rows of the conversation list in memory (``ConversationView``)."""
        return self.window.rows

    @property
    def current_conversation(self) -> ConversationView | None:
        """The open conversation's ``ConversationView`` as the cache has it now, or None
        (none open, or it is gone or being left). Read from the cache, not the list's
        window: the window is re-read only after a burst of engine events
        (``LIST_COALESCE``), so a conversation just created and opened, or just renamed,
        is not there yet or stale. Before the cache is open: the window's row."""
        cid = self.current_id
        if cid is None:
            return None
        if not self.cache_ready.is_set():
            return self.window.get(cid)
        return self.store.get_conversation(cid)

    # ------------------------------------------------------------------ first frame
    def compose(self):  # noqa: D102 - Textual hook
        self._set_breakpoint_class()
        store = self.store
        state = store.get_ui_state()
        if state.work_offline:  # sync rule C3: still on from the last session
            self.set_reactive(ChatScreen.work_offline, True)
            self.set_reactive(ChatScreen.connectivity, "offline")
        # The first frame needs a screenful of rows: the rest of a long list is read after
        # it (10,000 conversations: 0.2 s; benchmarks/NOTES.md).
        self._partial_list = self.window.read_first_frame(state.last_conversation_id,
                                                          self.app.size.height)
        ids = self.window.ids()
        current = state.last_conversation_id if state.last_conversation_id in ids else None
        if current is None and ids:
            current = ids[0]
        self.current_id = current
        self.set_reactive(ChatScreen.outbox, dict(store.outbox_counts(reads=False)))

        views: list[MessageView] = []
        at_newest = True
        anchor = state.scroll_anchors.get(current) if current else None
        if current is not None:
            if anchor:
                views = list(store.message_window_around(current, anchor, limit=MessageList.PAGE))
                if views and any(v.id == anchor for v in views):
                    at_newest = not store.messages_after(current, views[-1].sort_key, limit=1)
                else:
                    views, anchor = [], None
            if not views:
                first = MessageList.first_page(self.app.size.height)
                views = list(store.messages_before(current, None, limit=first))
        self.messages.preload(current, views, at_newest)
        self._initial_anchor = anchor
        self._title.update(self._conversation_title())

        # The title bar's line is kept from the first frame; its parts mount right after
        # it, and so does the offline banner unless it shows from the start
        # (:meth:`_mount_status`).
        yield Horizontal(id="titlebar")
        if state.work_offline:
            yield self.banner
        with Horizontal(id="body") as body:
            body.display = False  # until the app's startup batch is over (reveal)
            yield self.conversation_list
            with Vertical(id="chat"):
                self.messages.display = bool(self.conversations)
                self.skeleton.display = not self.conversations
                yield self.skeleton
                yield self.messages

    def _set_breakpoint_class(self) -> None:
        """Give the screen its width class (the app's ``HORIZONTAL_BREAKPOINTS``) before
        the first layout. Textual sets it on the first resize, after a layout made
        without it, and a class change restyles and lays out the whole screen again."""
        width = self.app.size.width
        names = {name: False for _, name in self.app.HORIZONTAL_BREAKPOINTS}
        for edge, name in sorted(self.app.HORIZONTAL_BREAKPOINTS, reverse=True):
            if width >= edge:
                names[name] = True
                break
        self.update_classes(names, animate=False)

    def _conversation_title(self) -> Text:
        conv = self.current_conversation
        if conv is None:
            return Text("")
        title = Text(no_wrap=True, overflow="ellipsis")
        if conv.assistant:
            title.append("\u2726 ", style="bright_magenta")
        title.append(inert_line(conv.title, 60), style="bold")
        if conv.assistant:  # the model of its replies (sync rule 9)
            title.append("  \u00b7 " + inert_line(conv.model or "default model", 40), style="magenta")
        others = [m for m in conv.members if m != self.store.me]
        if others:
            title.append("  with " + inert_line(", ".join(others), 60), style="dim")
        return title

    def on_mount(self) -> None:  # noqa: D102 - Textual hook
        self.conversation_list.show(self.conversations, self.current_id,
                                    complete=self.window.complete)
        self.queue_indicator.show_counts(self.outbox)
        self.sync_indicator.show_state(state=self.connectivity)
        self._update_banner()
        if self._initial_anchor and self.current_id:
            self.messages.release_anchor()

    def reveal(self) -> None:
        """Show the body (conversation list, messages): the app calls it once Textual's
        startup ``batch_update`` is over (``App``'s ``Ready``). Until then the body is
        hidden, so the layouts and the render Textual makes inside that batch (two or
        three layouts and a render it drops) skip it, and it is laid out and rendered
        once, for the first frame (benchmarks/NOTES.md). The message list is told the
        height it gets (the screen's less the title bar and the banner, when shown: the
        layouts in the batch placed them), so that frame shows its newest messages
        (:meth:`MessageList.prime_viewport`)."""
        body = self.query_one("#body")
        above = sum(w.outer_size.height for w in self.children if w is not body and w.display)
        self.messages.prime_viewport(self.size.height - above)
        body.display = True
        if self._initial_anchor and self.current_id:
            self.call_after_refresh(self._scroll_to_initial_anchor)

    def _scroll_to_initial_anchor(self) -> None:
        item = self.messages._items.get(self._initial_anchor or "")
        if item is not None:
            self.messages._scroll_to_item(item)

    async def on_chat_screen_drawn(self, _: ChatScreen.Drawn) -> None:
        """The first frame is on screen: the composer and the key bar, the title bar's
        parts and the offline banner, Markdown, the whole list window, then :class:`Ready`
        (the app starts the engine)."""
        if not self._ready():  # the app closes before its first frame
            return
        await self._mount_composer()
        await self._mount_status()
        enable_markdown()
        self.messages.upgrade_markdown()
        if self._partial_list:
            self._partial_list = False
            self.refresh_conversations()
        if self.current_id:
            self.store.set_last_conversation(self.current_id)
        self.post_message(self.Ready())

    async def _mount_status(self) -> None:
        """Mount the title bar's parts (app name, conversation title, outbox and sync
        indicators) into the line the first frame kept for them, and the offline banner
        below it when the first frame did not show it: nothing there can be used in the
        first frame, and each widget styled, laid out and rendered before it delays it
        (benchmarks/NOTES.md). The widgets exist from the start, so the state set on them
        before they mount shows at once."""
        try:
            await self.query_one("#titlebar").mount_all([
                Static(Text("chat-tui", style="bold"), markup=False, id="app-title"),
                self._title, self.queue_indicator, self.sync_indicator])
            if not self.banner.is_attached:
                await self.mount(self.banner, after="#titlebar")
        except MountError:  # the app closed meanwhile
            return

    def engine_started(self) -> None:
        """Called by the app once the engine runs: send the read marker of what is shown."""
        self._mark_read()

    def save_state(self) -> None:
        """The app is closing: save the draft now, and the scroll position while the list
        is still on screen (once removed it no longer knows where it was scrolled).
        Nothing to save before the cache is open: the composer mounts after it."""
        if not self.cache_ready.is_set():
            return
        self.flush_draft()
        if self.messages.is_attached:
            self.place.save_anchor()

    def refresh_conversations(self, *, whole: bool = False) -> None:
        """Re-read the window of the conversation list (widened to hold the open one;
        ``whole``: this time the whole list); open the first one when none was open."""
        self.window.read(include=self.current_id, whole=whole)
        ids = self.window.ids()
        if self.current_id not in ids:
            self.current_id = None
        self.conversation_list.show(self.conversations, self.current_id,
                                    complete=self.window.complete)
        self._title.update(self._conversation_title())
        if self.current_id is None and ids:
            self.open_conversation(ids[0])
        self._update_skeleton()
        self._update_banner()

    def on_conversation_list_need_more(self, event: ConversationList.NeedMore) -> None:
        """The list was scrolled past the window: read a window twice as long."""
        event.stop()
        if self.window.grow():
            self.refresh_conversations()

    # ------------------------------------------------------------------ drafts, scroll
    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        """Typing: save the draft after a pause (:class:`SavedPlace`)."""
        if event.text_area is self.composer:
            self.place.draft_changed()

    def on_text_area_selection_changed(self, event: TextArea.SelectionChanged) -> None:
        """Cursor moves are part of the draft too."""
        if event.text_area is self.composer:
            self.place.draft_changed()

    def flush_draft(self) -> None:
        """Save the composer's draft for the open conversation now."""
        self.place.flush_draft()

    def on_message_list_scrolled(self, event: MessageList.Scrolled) -> None:
        """The message list scrolled: save the position after a pause."""
        event.stop()
        self.place.scrolled()

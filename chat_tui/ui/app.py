"""The Textual app: cache first, keyboard driven, honest about the network.

Startup (issue 4, "Start"): :meth:`ChatApp.compose` reads only the local cache (one
``Store``: UI state, conversation list, the newest page of the last open conversation,
its draft), so the first frame shows the last conversation before any network call. The
engine (``chat_tui.sync``: httpx, the outbox drain, the puller) is created and started
after the first frame by :meth:`ChatApp.start_engine`; Rich's Markdown renderer is allowed
then too, and imported by the first assistant reply on screen. Engine events arrive through
``Engine.subscribe`` and are coalesced into one refresh per burst. Only a window of a long
conversation list is kept in memory (:data:`LIST_WINDOW`).

The UI reads only through the store's read API and acts only through the engine façade
(docs/engine.md). User text is untrusted: see :mod:`chat_tui.ui.safe_text`.
"""

from __future__ import annotations

import asyncio
import difflib
import importlib
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import App, SystemCommand
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Static, TextArea

from chat_tui.ui.clock import Clock
from chat_tui.ui.keymap import bindings_for, palette_actions
from chat_tui.ui.safe_text import inert, inert_line
from chat_tui.ui.widgets.composer import Composer
from chat_tui.ui.widgets.conversation_list import ConversationList
from chat_tui.ui.widgets.footer import KeyFooter
from chat_tui.ui.widgets.message_item import ASSISTANT, enable_markdown
from chat_tui.ui.widgets.message_list import MessageList
from chat_tui.ui.widgets.skeleton import Skeleton
from chat_tui.ui.widgets.status import OfflineBanner, QueueIndicator, SyncIndicator

if TYPE_CHECKING:  # pragma: no cover
    from textual.notifications import SeverityLevel

    from chat_tui.store import ConversationView, MessageView, Store
    from chat_tui.sync.engine import Engine

__all__ = ["ChatApp", "EngineEvent"]

log = logging.getLogger(__name__)

EngineFactory = Callable[["Store"], "Engine | Awaitable[Engine]"]
"""Builds the engine for the store the first frame was drawn from (called after that frame)."""

BODY_LIMIT = 65_536  # bytes, docs/api.md "Limits"
FIRST_FRAME_CONVERSATIONS = 100  # rows read for the first frame; the window right after it
LIST_WINDOW = 400
"""Conversations kept in memory after the first frame (the most recent first); the window
doubles as the list scrolls past it, and widens to reach a conversation opened further
down. Reading 10,000 conversations whole cost ~0.15 s and 11 MB of peak memory
(benchmarks/NOTES.md, fix 20)."""


class EngineEvent(Message):
    """Carries one engine event (``chat_tui.sync.events``) onto the app's message queue."""

    def __init__(self, event: Any) -> None:
        super().__init__()
        self.event = event


class ChatApp(App[None]):
    """The chat-tui app.

    Args:
        store: the account's open cache (``chat_tui.store.Store``); read on the first frame.
        engine_factory: builds the ``Engine`` (sync or async callable taking the store);
            called after the first frame. ``None`` runs read-only (no network at all).
        clock: time source and display zone (tests pass a ``FixedClock``).
        start_engine: False keeps the engine stopped (tests of the first frame).
        on_ready: optional callback run after the engine started (embedded setup, tests).
    """

    CSS_PATH = "styles/app.tcss"
    TITLE = "chat-tui"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (90, "-wide")]
    """Screen classes by terminal width: below 90 columns the conversation list is narrower
    (``Screen.-narrow`` in the stylesheet), so the messages keep room to read."""
    BINDINGS = bindings_for("app")

    DRAFT_DEBOUNCE = 0.4  # seconds after the last keystroke before the draft is saved
    ANCHOR_DEBOUNCE = 0.5  # seconds after the last scroll before the position is saved
    REFRESH_COALESCE = 0.03  # seconds over which engine events are merged into one refresh
    LIST_COALESCE = 0.25  # seconds between two conversation-list re-reads (a streaming
    # reply changes the preview on every chunk; the list query grows with the account)

    def __init__(
        self,
        store: Store,
        engine_factory: EngineFactory | None = None,
        *,
        clock: Clock | None = None,
        start_engine: bool = True,
        on_ready: Callable[[ChatApp], Any] | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.engine: Engine | None = None
        self.clock = clock or Clock()
        self._engine_factory = engine_factory
        self._start_engine = start_engine
        self._on_ready = on_ready
        self._unsubscribe: Callable[[], None] | None = None
        self.conversations: list[ConversationView] = []
        self.current_id: str | None = None
        self.connectivity = "connecting"
        self.work_offline = False
        self.last_synced_at = None
        self.outbox: dict[str, int] = {}
        self.sync_phase = ("idle", 0, None)
        self._draft_timer: Timer | None = None
        self._anchor_timer: Timer | None = None
        self._flush_timer: Timer | None = None
        self._list_timer: Timer | None = None
        self._dirty_messages: dict[str, set[str]] = {}
        self._last_read: dict[str, str] = {}
        self._loading_draft = False
        self.engine_ready = False
        self._partial_list = False
        self._list_limit: int | None = LIST_WINDOW  # None: the whole list
        self.list_complete = True  # ``conversations`` is the whole list, not a window
        self._queued_total = 0  # queued actions over the whole list (the banner's count)

    # ------------------------------------------------------------------ first frame
    def compose(self):  # noqa: D102 - Textual hook
        store = self.store
        # The first frame needs a screenful of rows: the rest of a long list is read after
        # it (10,000 conversations: 0.2 s; benchmarks/NOTES.md).
        state = store.get_ui_state()
        if state.work_offline:  # sync rule C3: still on from the last session
            self.work_offline = True
            self.connectivity = "offline"
        first = FIRST_FRAME_CONVERSATIONS
        self.conversations = list(store.list_conversations(limit=first))
        self._partial_list = len(self.conversations) == first
        if self._partial_list and state.last_conversation_id not in {
                c.id for c in self.conversations}:
            self._partial_list = False
            self._read_window(include=state.last_conversation_id)
        else:
            self.list_complete = not self._partial_list
            self._count_queued()
        ids = [c.id for c in self.conversations]
        current = state.last_conversation_id if state.last_conversation_id in ids else None
        if current is None and ids:
            current = ids[0]
        self.current_id = current
        self.outbox = dict(store.outbox_counts())

        messages = MessageList(id="messages")
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
                first = MessageList.first_page(self.size.height)
                views = list(store.messages_before(current, None, limit=first))
        messages.preload(current, views, at_newest)
        self._initial_anchor = anchor

        with Horizontal(id="titlebar"):
            yield Static(Text("chat-tui", style="bold"), markup=False, id="app-title")
            yield Static(self._conversation_title(), markup=False, id="chat-title")
            yield QueueIndicator(id="queue")
            yield SyncIndicator(id="sync")
        yield OfflineBanner(self.clock, id="offline")
        with Horizontal(id="body"):
            conv_list = ConversationList(id="conversations")
            yield conv_list
            with Vertical(id="chat"):
                messages.display = bool(self.conversations)
                yield Skeleton(id="skeleton", shown=not self.conversations)
                yield messages
                yield Composer(id="composer")
        yield KeyFooter()

    def _conversation_title(self) -> Text:
        conv = self.current_conversation
        if conv is None:
            return Text("")
        title = Text(no_wrap=True, overflow="ellipsis")
        if conv.assistant:
            title.append("\u2726 ", style="bright_magenta")
        title.append(inert_line(conv.title, 60), style="bold")
        others = [m for m in conv.members if m != self.store.me]
        if others:
            title.append("  with " + inert_line(", ".join(others), 60), style="dim")
        return title

    @property
    def current_conversation(self) -> ConversationView | None:
        """The open conversation's ``ConversationView``, or None."""
        for conv in self.conversations:
            if conv.id == self.current_id:
                return conv
        return None

    def on_mount(self) -> None:  # noqa: D102 - Textual hook
        self.query_one(ConversationList).show(self.conversations, self.current_id,
                                              complete=self.list_complete)
        self.query_one(QueueIndicator).show_counts(self.outbox)
        self.query_one(SyncIndicator).show_state(state=self.connectivity)
        self._update_banner()
        composer = self.query_one(Composer)
        self._restore_draft(self.current_id)
        composer.focus()
        if self._initial_anchor and self.current_id:
            messages = self.query_one(MessageList)
            messages.release_anchor()
            self.call_after_refresh(self._scroll_to_initial_anchor)
        self.call_after_refresh(self._after_first_frame)

    def _scroll_to_initial_anchor(self) -> None:
        messages = self.query_one(MessageList)
        item = messages._items.get(self._initial_anchor or "")
        if item is not None:
            messages._scroll_to_item(item)

    def _after_first_frame(self) -> None:
        """Runs once the first frame is on screen: Markdown, then the engine."""
        enable_markdown()
        self.query_one(MessageList).upgrade_markdown()
        if self._partial_list:
            self._partial_list = False
            self.refresh_conversations()
        if self.current_id:
            self.store.set_last_conversation(self.current_id)
        if self._start_engine and self._engine_factory is not None:
            self.start_engine()

    @work(exclusive=True, group="engine", exit_on_error=False)
    async def start_engine(self) -> None:
        """Build the engine (imports httpx etc. off the first frame), subscribe, start it.

        The sync layer's imports (httpx, the engine: ~50 ms) run in a thread first, so the
        frames that finish the screen (conversation list, key bar) are drawn meanwhile
        instead of after them (benchmarks/NOTES.md, fix 25)."""
        factory = self._engine_factory
        if factory is None:
            return
        try:
            await asyncio.to_thread(importlib.import_module, "chat_tui.sync.engine")
            engine = factory(self.store)
            if isinstance(engine, Awaitable):
                engine = await engine
            self.engine = engine
            self._unsubscribe = engine.subscribe(self._engine_callback)
            if self.work_offline:  # kept from the last session (sync rule C3)
                engine.set_work_offline(True)
            await engine.start()
        except Exception as exc:  # noqa: BLE001 - keep the cached UI usable
            log.exception("engine failed to start")
            self.notify(f"Could not start syncing: {exc}", severity="error", markup=False,
                        timeout=10)
            return
        self.engine_ready = True
        self._mark_read()
        if self._on_ready is not None:
            result = self._on_ready(self)
            if isinstance(result, Awaitable):
                await result

    def _engine_callback(self, event: Any) -> None:
        # Called on the engine's loop (this app's loop, or another thread): post_message is
        # thread safe, so hand the event to Textual's queue either way.
        self.post_message(EngineEvent(event))

    async def on_unmount(self) -> None:  # noqa: D102 - Textual hook
        self.flush_draft()
        self._save_anchor()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.engine is not None:
            try:
                await self.engine.stop()
            except Exception:  # noqa: BLE001
                log.exception("engine stop failed")

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Show a toast. Always inert plain text (issue 4, "Untrusted text"): notifications
        carry server reasons, exception texts and conversation titles, so Rich markup is
        never parsed (``markup`` is ignored) and control characters are made visible
        (:func:`~chat_tui.ui.safe_text.inert`). ``timeout`` in seconds."""
        super().notify(inert(message), title=inert_line(title), severity=severity,
                       timeout=timeout, markup=False)

    # ------------------------------------------------------------------ engine events
    def on_engine_event(self, message: EngineEvent) -> None:
        """Dispatch one engine event; list/message refreshes are coalesced."""
        if not self._screen_ready():
            return
        event = message.event
        kind = type(event).__name__
        if kind == "ConnectivityChanged":
            was = self.connectivity
            self.connectivity = event.state
            self.work_offline = event.work_offline
            self.last_synced_at = event.last_synced_at
            self.query_one(SyncIndicator).show_state(state=event.state)
            self._update_banner()
            self._update_skeleton()
            if was != "online" and event.state == "online":
                self._mark_read()
        elif kind == "OutboxChanged":
            self.outbox = dict(event.counts)
            self.query_one(QueueIndicator).show_counts(self.outbox)
            self._update_banner()
        elif kind == "MessagesChanged":
            self._dirty_messages.setdefault(event.conversation_id, set()).update(event.message_ids)
            self._schedule_flush()
            self._schedule_list()
        elif kind == "ConversationsChanged":
            self._schedule_list()
        elif kind == "SyncProgress":
            self.sync_phase = (event.phase, event.done, event.total)
            self.query_one(SyncIndicator).show_state(phase=event.phase, done=event.done,
                                                     total=event.total)
            self._update_skeleton()
        elif kind == "EngineProblem":
            if event.kind == "cache":  # moved aside at open (sync rule D4): say so once
                self.notify(event.message, title="Cache replaced", severity="warning",
                            markup=False, timeout=20)
            elif event.active:
                self.notify(event.message, title="Sending paused", severity="error",
                            markup=False, timeout=15)

    def _schedule_flush(self) -> None:
        if self._flush_timer is None:
            self._flush_timer = self.set_timer(self.REFRESH_COALESCE, self._flush)

    def _schedule_list(self) -> None:
        if self._list_timer is None:
            self._list_timer = self.set_timer(self.LIST_COALESCE, self._flush_list)

    @property
    def refresh_pending(self) -> bool:
        """True while engine changes wait to be shown (coalescing timers not yet run)."""
        return self._list_timer is not None or self._flush_timer is not None

    def _flush_list(self) -> None:
        self._list_timer = None
        if self._screen_ready():
            self.refresh_conversations()

    def _screen_ready(self) -> bool:
        """True while the main screen's widgets exist (not before compose, not while the
        app shuts down): late engine events and timers are dropped then."""
        return bool(self.is_running and not self._exit
                    and self.screen_stack and self.screen_stack[0].query(ConversationList))

    async def _flush(self) -> None:
        self._flush_timer = None
        if not self._screen_ready():
            return
        dirty, self._dirty_messages = self._dirty_messages, {}
        if self.current_id in dirty:
            self.run_worker(self._refresh_current(tuple(dirty[self.current_id])),
                            group="refresh", exit_on_error=False)

    async def _refresh_current(self, message_ids: tuple[str, ...]) -> None:
        # A worker, never the app's own message handler: the window's lock may be held by
        # an opening conversation that needs the app's message pump to finish mounting.
        await self.query_one(MessageList).refresh_messages(message_ids)
        self._mark_read()

    def refresh_conversations(self, *, whole: bool = False) -> None:
        """Re-read the window of the conversation list (:data:`LIST_WINDOW`, widened to
        hold the open one; ``whole``: this time the whole list); open the first one when
        none was open."""
        self._read_window(whole=whole)
        ids = [c.id for c in self.conversations]
        if self.current_id not in ids:
            self.current_id = None
        self.query_one(ConversationList).show(self.conversations, self.current_id,
                                              complete=self.list_complete)
        self.query_one("#chat-title", Static).update(self._conversation_title())
        if self.current_id is None and ids:
            self.open_conversation(ids[0])
        self._update_skeleton()
        self._update_banner()

    def _read_window(self, include: str | None = None, *, whole: bool = False) -> None:
        """Read the ``_list_limit`` most recent conversations (``whole``: all of them) into
        ``conversations``; when ``include`` (default: the open one) is not among them, read
        the whole list once and widen the window to reach it from now on."""
        store = self.store
        limit = None if whole else self._list_limit
        views = list(store.list_conversations(limit=limit))
        complete = limit is None or len(views) < limit
        wanted = include or self.current_id
        if not complete and wanted is not None and all(v.id != wanted for v in views):
            views = list(store.list_conversations())
            complete = True
            ids = [v.id for v in views]
            if limit is not None and wanted in ids:
                self._list_limit = max(limit, ids.index(wanted) + ConversationList.PAGE)
        self.conversations = views
        self.list_complete = complete
        self._count_queued()

    def _count_queued(self) -> None:
        # Messages waiting (sends, edits, deletes; read markers are not counted): the sum
        # of the conversations' queued counts (``ConversationView.queued_count``), from the
        # store when only a window of the list is in memory.
        if self.list_complete:
            self._queued_total = sum(c.queued_count for c in self.conversations)
        else:
            from chat_tui.store.conversation_counts import queued_actions

            self._queued_total = queued_actions(self.store)

    def on_conversation_list_need_more(self, event: ConversationList.NeedMore) -> None:
        """The list was scrolled past the window: read a window twice as long."""
        event.stop()
        if self._list_limit is not None and not self.list_complete:
            self._list_limit *= 2
            self.refresh_conversations()

    def _update_banner(self) -> None:
        self.query_one(OfflineBanner).show_state(
            self.connectivity == "offline", self._queued_total, self.last_synced_at,
            self.work_offline)

    def _update_skeleton(self) -> None:
        empty = not self.conversations
        skeleton = self.query_one(Skeleton)
        skeleton.show(empty)
        self.query_one(MessageList).display = not empty
        if empty:
            phase, done, total = self.sync_phase
            skeleton.show_progress(phase, done, total, self.connectivity)

    # ------------------------------------------------------------------ navigation
    @work(exclusive=True, group="open", exit_on_error=False)
    async def open_conversation(self, conversation_id: str, anchor_id: str | None = None,
                                *, select: bool = False, focus_messages: bool = False) -> None:
        """Open ``conversation_id`` from the cache (at ``anchor_id`` when given; ``select``
        selects that message; ``focus_messages`` moves the focus to the list once open)."""
        if conversation_id != self.current_id:
            self.flush_draft()
            self._save_anchor()
        messages = self.query_one(MessageList)
        if not self.list_complete and all(c.id != conversation_id for c in self.conversations):
            self._read_window(include=conversation_id)  # opened further down (search)
        self.current_id = conversation_id
        self.store.set_last_conversation(conversation_id)
        if anchor_id is None:
            anchor_id = self.store.get_ui_state().scroll_anchors.get(conversation_id)
            select = False
        self.query_one(ConversationList).show(self.conversations, conversation_id,
                                              complete=self.list_complete)
        self.query_one("#chat-title", Static).update(self._conversation_title())
        composer = self.query_one(Composer)
        composer.stop_editing()
        self._restore_draft(conversation_id)
        await messages.open(conversation_id, anchor_id, select=select)
        if focus_messages:
            messages.focus()
        self._mark_read()

    def _restore_draft(self, conversation_id: str | None) -> None:
        composer = self.query_one(Composer)
        draft = self.store.get_draft(conversation_id) if conversation_id else None
        self._loading_draft = True
        if draft is None:
            composer.set_draft("", None)
        else:
            composer.set_draft(draft.text, tuple(draft.cursor))
        self._loading_draft = False

    def on_conversation_list_opened(self, event: ConversationList.Opened) -> None:
        """A conversation was chosen in the list."""
        self.open_conversation(event.conversation_id)
        self.query_one(Composer).focus()

    def action_prev_conversation(self) -> None:
        """Open the previous conversation in the list (from the first: the last one)."""
        target = self._neighbour(-1)
        if target:
            self.open_conversation(target)

    def action_next_conversation(self) -> None:
        """Open the next conversation in the list (from the last: the first one)."""
        target = self._neighbour(1)
        if target:
            self.open_conversation(target)

    def _neighbour(self, step: int) -> str | None:
        """Id of the conversation ``step`` rows from the open one (wrapping), reading past
        the window of the list when the step leaves it."""
        ids = [c.id for c in self.conversations]
        if not self.list_complete and self.current_id in ids:
            index = ids.index(self.current_id) + step
            if index >= len(ids) and self._list_limit is not None:
                self._list_limit *= 2  # past the window: a longer one
                self.refresh_conversations()
            elif index < 0:
                self.refresh_conversations(whole=True)  # wrapping to the oldest
        return self.query_one(ConversationList).neighbour(step)

    def action_focus_conversations(self) -> None:
        """Focus the conversation list."""
        self.query_one(ConversationList).focus()

    def action_focus_messages(self) -> None:
        """Focus the message list."""
        self.query_one(MessageList).focus()

    def action_focus_composer(self) -> None:
        """Focus the composer."""
        self.query_one(Composer).focus()

    def action_page_up(self) -> None:
        """Scroll the messages a page up (older pages load at the top)."""
        messages = self.query_one(MessageList)
        messages.release_anchor()
        messages.scroll_page_up(animate=False)
        if messages.scroll_y <= messages.EDGE:
            messages.load_older()

    def action_page_down(self) -> None:
        """Scroll the messages a page down."""
        messages = self.query_one(MessageList)
        messages.scroll_page_down(animate=False)
        if messages.scroll_y >= messages.max_scroll_y - messages.EDGE:
            messages.load_newer()

    def action_jump_newest(self) -> None:
        """Show the newest messages and follow new ones."""
        self.run_worker(self.query_one(MessageList).jump_newest(), group="open",
                        exit_on_error=False)

    # ------------------------------------------------------------------ drafts, scroll
    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        """Typing: save the draft after :attr:`DRAFT_DEBOUNCE` seconds of quiet."""
        if isinstance(event.text_area, Composer) and not self._loading_draft:
            self._schedule_draft()

    def on_text_area_selection_changed(self, event: TextArea.SelectionChanged) -> None:
        """Cursor moves are part of the draft too."""
        if isinstance(event.text_area, Composer) and not self._loading_draft:
            self._schedule_draft()

    def _schedule_draft(self) -> None:
        if self._draft_timer is not None:
            self._draft_timer.stop()
        self._draft_timer = self.set_timer(self.DRAFT_DEBOUNCE, self.flush_draft)

    def flush_draft(self) -> None:
        """Save the composer's draft (text and cursor) for the open conversation now."""
        if self._draft_timer is not None:
            self._draft_timer.stop()
            self._draft_timer = None
        if self.current_id is None:
            return
        try:
            composer = self.query_one(Composer)
        except Exception:  # noqa: BLE001 - app already torn down
            return
        text, cursor = composer.draft
        try:
            self.store.save_draft(self.current_id, text, cursor)
        except Exception:  # noqa: BLE001 - never lose the UI over a draft write
            log.exception("saving the draft failed")

    def scroll_moved(self) -> None:
        """Called by the message list on scroll: save the position after a pause."""
        if self._anchor_timer is not None:
            self._anchor_timer.stop()
        self._anchor_timer = self.set_timer(self.ANCHOR_DEBOUNCE, self._save_anchor)

    def _save_anchor(self) -> None:
        if self._anchor_timer is not None:
            self._anchor_timer.stop()
            self._anchor_timer = None
        try:
            messages = self.query_one(MessageList)
        except Exception:  # noqa: BLE001
            return
        cid = messages.conversation_id
        if cid is None:
            return
        anchor = None if messages.at_bottom else messages.first_visible_id()
        try:
            self.store.set_scroll_anchor(cid, anchor)
        except Exception:  # noqa: BLE001
            log.exception("saving the scroll position failed")

    def _mark_read(self) -> None:
        """Tell the engine the newest message of others on screen has been read."""
        engine, cid = self.engine, self.current_id
        messages = self.query_one(MessageList)
        if engine is None or cid is None or not messages.at_newest:
            return
        for view in reversed(messages.views):
            if not view.mine and view.state is None and view.seq is not None:
                if self._last_read.get(cid) != view.id:
                    self._last_read[cid] = view.id
                    try:
                        engine.mark_read(cid, view.id)
                    except Exception:  # noqa: BLE001
                        log.exception("mark_read failed")
                return

    # ------------------------------------------------------------------ sending
    def _need_engine(self) -> Engine | None:
        if self.engine is None:
            self.notify("Still starting up - try again in a moment.", markup=False)
        return self.engine

    async def on_composer_submitted(self, event: Composer.Submitted) -> None:
        """Enter in the composer: send, or save an edit."""
        await self._submit(event.text, event.editing_id)

    def action_send(self) -> None:
        """Send the composer's text (same as Enter in the composer)."""
        self.query_one(Composer).action_send()

    def action_newline(self) -> None:
        """Insert a newline in the composer."""
        composer = self.query_one(Composer)
        composer.focus()
        composer.action_newline()

    async def _submit(self, text: str, editing_id: str | None) -> None:
        composer = self.query_one(Composer)
        body = text.strip("\n")
        if not body.strip() or self.current_id is None:
            return
        if len(body.encode("utf-8")) > BODY_LIMIT:
            self.notify(f"Message too long: {len(body.encode('utf-8')):,} bytes, the limit is "
                        f"{BODY_LIMIT:,}. Nothing was sent; your text is still here.",
                        severity="error", markup=False)
            return
        engine = self._need_engine()
        if engine is None:
            return
        cid = self.current_id
        try:
            if editing_id is not None:
                engine.edit(editing_id, body)
                composer.stop_editing()
                return
            message_id = engine.send(cid, body)
        except Exception as exc:  # noqa: BLE001 - keep the text, say why
            log.exception("send failed")
            self.notify(f"Not sent: {exc}", severity="error", markup=False)
            return
        self._loading_draft = True
        composer.set_draft("", None)
        self._loading_draft = False
        self.flush_draft()
        conv = self.current_conversation
        offline_question = (conv is not None and conv.assistant
                            and self.connectivity != "online")
        self.run_worker(self._show_sent(cid, message_id, body, offline_question),
                        group="refresh", exit_on_error=False)

    async def _show_sent(self, cid: str, message_id: str, body: str, offline_question: bool) -> None:
        """Show the local echo at once (a worker: see :meth:`_refresh_current`), then,
        offline in an assistant conversation, a cached answer below it."""
        messages = self.query_one(MessageList)
        await messages.refresh_messages((message_id,))
        messages.anchor()
        if offline_question and cid == self.current_id:
            await self.show_cached_answer(cid, message_id, body)

    async def show_cached_answer(self, conversation_id: str, question_id: str, question: str) -> bool:
        """Offline in an assistant conversation: find an earlier, closely matching question of
        ours in the cache (``store.search``, FTS) and show the answer that followed it below
        the new question, labelled "cached answer from <date>". Returns True when shown."""
        conversations = (self.conversations if self.list_complete
                         else self.store.list_conversations())
        answer = find_cached_answer(self.store, conversations, question, exclude=question_id)
        if answer is None:
            return False
        await self.query_one(MessageList).add_cached_answer(question_id, answer)
        return True

    def on_composer_edit_last_requested(self, event: Composer.EditLastRequested) -> None:
        """Up in an empty composer."""
        self.action_edit_last()

    def action_edit_last(self) -> None:
        """Edit the selected own message, or the last own message of the conversation."""
        messages = self.query_one(MessageList)
        target = messages.selected_view() if messages.has_focus else None
        if target is None or not target.mine or target.deleted:
            target = next((v for v in reversed(messages.views) if v.mine and not v.deleted), None)
        if target is None:
            self.notify("No message of yours to edit here.", markup=False)
            return
        self.query_one(Composer).start_editing(target.id, target.body)

    def action_cancel_compose(self) -> None:
        """Stop editing and focus the message list."""
        self.query_one(Composer).action_cancel_compose()

    def _target(self, states: Iterable[str]) -> MessageView | None:
        """The selected own message in one of ``states``, else the first such problem here."""
        states = set(states)
        messages = self.query_one(MessageList)
        selected = messages.selected_view()
        if selected is not None and selected.mine and selected.state in states:
            return selected
        for view in messages.views:
            if view.mine and view.state in states:
                return view
        return None

    def _problem_id(self, states: Iterable[str]) -> str | None:
        target = self._target(states)
        if target is not None:
            return target.id
        states = set(states)
        for problem in self.store.problems():
            if problem.state in states and problem.message_id and \
                    problem.conversation_id == self.current_id:
                return problem.message_id
        return None

    def action_retry(self) -> None:
        """Retry a failed message (the selected one, else the first failed one here)."""
        mid = self._problem_id(("failed",))
        if mid is None:
            self.notify("No failed message here to retry.", markup=False)
            return
        engine = self._need_engine()
        if engine is not None:
            engine.retry(mid)

    def action_send_anyway(self) -> None:
        """Send an expired message anyway."""
        mid = self._problem_id(("expired",))
        if mid is None:
            self.notify("No expired message here.", markup=False)
            return
        engine = self._need_engine()
        if engine is not None:
            engine.send_anyway(mid)

    def action_discard(self) -> None:
        """Discard an unsent message and put its text back into the composer."""
        mid = self._problem_id(("failed", "expired", "queued", "blocked"))
        if mid is None:
            self.notify("No unsent message here to discard.", markup=False)
            return
        engine = self._need_engine()
        if engine is None:
            return
        text = engine.discard(mid)
        composer = self.query_one(Composer)
        if text and not composer.text.strip():
            composer.set_draft(text, None)
        composer.focus()

    def action_delete_message(self) -> None:
        """Delete the selected own message (leaves a tombstone)."""
        view = self.query_one(MessageList).selected_view()
        if view is None or not view.mine or view.deleted:
            self.notify("Select one of your messages to delete (up/down in the message list).",
                        markup=False)
            return
        engine = self._need_engine()
        if engine is not None:
            engine.delete(view.id)

    def action_toggle_work_offline(self) -> None:
        """Switch "work offline" on or off; it stays so across restarts (sync rule C3)."""
        engine = self._need_engine()
        if engine is not None:
            enabled = not self.work_offline
            self.store.set_work_offline(enabled)
            engine.set_work_offline(enabled)

    # ------------------------------------------------------------------ screens
    def action_help(self) -> None:
        """Show the help screen."""
        from chat_tui.ui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_search(self) -> None:
        """Open the search screen; the chosen hit opens in context."""
        from chat_tui.ui.screens.search import SearchScreen

        def opened(hit: Any) -> None:
            if hit is not None:
                self.open_conversation(hit.conversation_id, hit.message_id, select=True,
                                       focus_messages=True)

        if not isinstance(self.screen, SearchScreen):
            self.push_screen(SearchScreen(self.store, self.clock), opened)

    def action_new_conversation(self) -> None:
        """Ask for a new conversation (assistant or members) and open it."""
        from chat_tui.ui.screens.new_conversation import NewConversationScreen

        def created(result: Any) -> None:
            if result is None:
                return
            engine = self._need_engine()
            if engine is None:
                return
            try:
                cid = engine.create_conversation(result.title, result.members,
                                                 assistant=result.assistant)
            except Exception as exc:  # noqa: BLE001
                self.notify(f"Could not create the conversation: {exc}", severity="error",
                            markup=False)
                return
            self.refresh_conversations()
            self.open_conversation(cid)
            self.query_one(Composer).focus()

        self.push_screen(NewConversationScreen(), created)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every action of the keymap in the command palette, plus Textual's own."""
        for entry in palette_actions():
            keys = entry.key_display
            yield SystemCommand(entry.description, f"{entry.help} ({keys})",
                                partial(self.run_action, entry.action))
        yield from super().get_system_commands(screen)


# ---------------------------------------------------------------------- cached answers
_WORD = re.compile(r"\w+", re.UNICODE)


def _words(value: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(value)]


def similarity(a: str, b: str) -> float:
    """How closely two questions match, 0..1: the larger of word-set Jaccard and
    ``difflib`` ratio over the normalised words."""
    wa, wb = _words(a), _words(b)
    if not wa or not wb:
        return 0.0
    jaccard = len(set(wa) & set(wb)) / len(set(wa) | set(wb))
    ratio = difflib.SequenceMatcher(None, " ".join(wa), " ".join(wb)).ratio()
    return max(jaccard, ratio)


def find_cached_answer(store: Any, conversations: Iterable[Any], question: str, *,
                       exclude: str | None = None, threshold: float = 0.6) -> MessageView | None:
    """The assistant answer that followed the cached question closest to ``question``.

    Searches the cache (``store.search`` over the question's words, FTS5, offline), keeps
    hits that are our own messages in assistant conversations, scores them with
    :func:`similarity` (at least ``threshold``), and returns the first non-deleted,
    non-failed, finished assistant message after the best one (``MessageView``), or None.
    """
    words = [w for w in dict.fromkeys(_words(question)) if len(w) > 2][:8]
    if not words:
        return None
    assistant_ids = {c.id for c in conversations if c.assistant}
    # store.search needs every word of a query to occur: one query per word, pooled.
    hits: dict[str, Any] = {}
    for word in words:
        try:
            found = store.search(word, limit=20)
        except Exception:  # noqa: BLE001
            log.info("cached-answer search failed", exc_info=True)
            continue
        for hit in found:
            hits.setdefault(hit.message_id, hit)
    me = store.me
    best: tuple[float, Any] | None = None
    for hit in hits.values():
        if hit.message_id == exclude or hit.author != me or hit.conversation_id not in assistant_ids:
            continue
        window = store.message_window_around(hit.conversation_id, hit.message_id, limit=12)
        ids = [v.id for v in window]
        if hit.message_id not in ids:
            continue
        index = ids.index(hit.message_id)
        score = similarity(question, window[index].body)
        if score < threshold or (best is not None and score <= best[0]):
            continue
        for view in window[index + 1:]:
            if view.author == ASSISTANT:
                if not (view.deleted or view.error or view.streaming) and view.body.strip():
                    best = (score, view)
                break
            if view.mine:
                break
    return best[1] if best else None

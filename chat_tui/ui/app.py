"""The Textual app: cache first, keyboard driven, honest about the network.

:class:`ChatApp` holds what is the app's own: the stylesheet, the app's key bindings, the
engine's lifecycle, the notification rule (inert text) and the command palette. The flows
(open a conversation, compose, message actions, scrolling, drafts, read markers) live on
its default screen, :class:`~chat_tui.ui.screens.chat.ChatScreen`, whose first frame
reads only the local cache. The engine (``chat_tui.sync``: httpx, the outbox drain, the
puller) is created and started after that frame (:meth:`ChatApp.start_engine`); its
events go to the chat screen as :class:`~chat_tui.ui.messages.EngineEvent` messages.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App, SystemCommand
from textual.screen import Screen
from textual.widget import AwaitMount

from chat_tui.ui.assistant_actions import AssistantActions
from chat_tui.ui.clock import Clock
from chat_tui.ui.conversation_window import FIRST_FRAME_CONVERSATIONS, LIST_WINDOW
from chat_tui.ui.keymap import bindings_for, palette_actions
from chat_tui.ui.messages import EngineEvent
from chat_tui.ui.safe_text import inert, inert_line
from chat_tui.ui.screens.chat import ChatScreen

if TYPE_CHECKING:  # pragma: no cover
    from textual.notifications import SeverityLevel
    from textual.worker import Worker

    from chat_tui.store import Cache, ConversationView
    from chat_tui.store.first_frame import FirstFrameReader
    from chat_tui.sync.engine import Engine
    from chat_tui.ui.assistant_actions import ModelsHost

__all__ = ["FIRST_FRAME_CONVERSATIONS", "LIST_WINDOW", "ChatApp", "EngineEvent"]

log = logging.getLogger(__name__)

EngineFactory = Callable[["Cache"], "Engine | Awaitable[Engine]"]
"""Builds the engine for the store the first frame was drawn from (called after that frame)."""


class ChatApp(AssistantActions, App[None]):
    """The chat-tui app.

    Args:
        store: the account's open cache (``chat_tui.store.Cache``); read on the first frame.
        engine_factory: builds the ``Engine`` (sync or async callable taking the store);
            called after the first frame. ``None`` runs read-only (no network at all).
        clock: time source and display zone (tests pass a ``FixedClock``).
        start_engine: False keeps the engine stopped (tests of the first frame).
        on_ready: optional callback run after the engine started (embedded setup, tests).
        open_cache: when given, ``store`` is the first frame's reader
            (``chat_tui.store.first_frame.FirstFrameReader``): the first frame is drawn
            from it, then the reader is closed and ``open_cache()`` returns the open
            ``Cache`` the app uses from then on (``store``). Its errors end the app with
            the message (status 1).
        on_first_frame: optional callback run once, as soon as the first frame is on
            screen (before the composer, the cache and the engine); ``launch`` turns the
            garbage collector back on with it.
        models_host: in the local mode, what serves the assistant
            (:class:`~chat_tui.ui.assistant_actions.ModelsHost`, ``launch.LocalMode``): the
            settings screen reloads its providers, F4 takes its local model offer.

    The theme kept in ``config.toml`` applies from the first frame and a newly chosen
    one is kept (:class:`~chat_tui.ui.assistant_actions.AssistantActions`).

    ``chat`` is the main screen; the app's read-only properties (``current_id``,
    ``conversations``, ``connectivity``...) show its state.
    """

    CSS_PATH = "styles/app.tcss"
    TITLE = "chat-tui"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (90, "-wide")]
    """Screen classes by terminal width: below 90 columns the conversation list is narrower
    (``Screen.-narrow`` in the stylesheet), so the messages keep room to read."""
    BINDINGS = bindings_for("app", owner="app")

    def __init__(
        self,
        store: Cache,
        engine_factory: EngineFactory | None = None,
        *,
        clock: Clock | None = None,
        start_engine: bool = True,
        on_ready: Callable[[ChatApp], Any] | None = None,
        open_cache: Callable[[], Cache] | None = None,
        models_host: ModelsHost | None = None,
        on_first_frame: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__()
        self.models_host = models_host
        self.restore_theme()
        self.store: Cache = store  # type: ignore[assignment] - the reader until the cache opens
        self._open_cache = open_cache
        self.engine: Engine | None = None
        self.clock = clock or Clock()
        self._engine_factory = engine_factory
        self._start_engine = start_engine
        self._on_ready = on_ready
        self._on_first_frame = on_first_frame
        self._unsubscribe: Callable[[], None] | None = None
        self.engine_ready = False
        self.chat = ChatScreen(store, self.clock, cache_open=open_cache is None)

    def get_default_screen(self) -> Screen:  # noqa: D102 - Textual hook
        return self.chat

    async def on_mount(self) -> None:
        """The app is ready once the chat screen and all its widgets are mounted, as when
        the app composed them itself (a pilot, an ``on_ready`` caller, may query them)."""
        await AwaitMount(self.chat, [self.chat])

    def on_ready(self) -> None:
        """Textual's startup ``batch_update`` is over: show the chat screen's body (its
        layout and render inside the batch were frames Textual drops:
        :meth:`ChatScreen.reveal`); the rest of the screen follows the first frame."""
        self.chat.reveal()
        self.call_after_refresh(self._first_frame_drawn)
        self.watch_theme_changes()

    def _first_frame_drawn(self) -> None:
        if self._on_first_frame is not None:
            self._on_first_frame()
        if self._open_cache is None:
            self.chat.post_message(ChatScreen.Drawn())
        else:
            self._install_cache()

    @work(exclusive=True, group="cache", exit_on_error=False)
    async def _install_cache(self) -> None:
        """After the first frame: import the cache's modules (Peewee: ~50 ms) in a thread
        while the reader still serves the screen, then on this thread close the reader
        (before the cache opens, so the file keeps its clean stamp, sync rule D4), open
        the cache and hand it to the chat screen, which goes on with
        :class:`ChatScreen.Drawn`. A cache recovered on open (rule D4) is shown."""
        open_cache = self._open_cache
        assert open_cache is not None
        reader: FirstFrameReader = self.store  # type: ignore[assignment]
        try:
            await asyncio.to_thread(importlib.import_module, "chat_tui.store.cache")
            reader.close()
            cache = open_cache()
        except Exception as exc:  # noqa: BLE001 - nothing to show without the cache
            log.exception("cache failed to open")
            self.exit(return_code=1, message=f"chat-tui: cannot open the cache: {exc}")
            return
        self.store = cache
        self.chat.install_cache(cache)
        if cache.recovery is not None:
            self.notify(cache.recovery.message, severity="warning", timeout=15)
            self.chat.refresh_conversations()
        self.chat.post_message(ChatScreen.Drawn())

    # ------------------------------------------------------------------ the chat screen's state
    @property
    def current_id(self) -> str | None:
        """The open conversation's id, or None."""
        return self.chat.current_id

    @property
    def conversations(self) -> list[ConversationView]:
        """The conversation rows in memory (a window of the list unless ``list_complete``)."""
        return self.chat.conversations

    @property
    def current_conversation(self) -> ConversationView | None:
        """The open conversation's ``ConversationView``, or None."""
        return self.chat.current_conversation

    @property
    def list_complete(self) -> bool:
        """``conversations`` is the whole list, not a window of it."""
        return self.chat.window.complete

    @property
    def refresh_pending(self) -> bool:
        """True while engine changes wait to be shown."""
        return self.chat.refresh_pending

    @property
    def connectivity(self) -> str:
        """``online``, ``offline`` or ``connecting`` (sync rules C1-C3)."""
        return self.chat.connectivity

    @property
    def work_offline(self) -> bool:
        """The "work offline" switch (sync rule C3)."""
        return self.chat.work_offline

    @property
    def outbox(self) -> dict[str, int]:
        """Outbox counts by state (``queued``, ``sending``, ``failed``...)."""
        return self.chat.outbox

    @property
    def sync_phase(self) -> tuple[str, int, int | None]:
        """``(phase, done, total)`` of the puller (``chat_tui.sync.events.SyncProgress``)."""
        return self.chat.sync_phase

    def refresh_conversations(self, *, whole: bool = False) -> None:
        """Re-read the conversation list (see :meth:`ChatScreen.refresh_conversations`)."""
        self.chat.refresh_conversations(whole=whole)

    def open_conversation(self, conversation_id: str, anchor_id: str | None = None, *,
                          select: bool = False, focus_messages: bool = False) -> Worker:
        """Open a conversation (see :meth:`ChatScreen.open_conversation`); returns its worker."""
        return self.chat.open_conversation(conversation_id, anchor_id, select=select,
                                           focus_messages=focus_messages)

    # ------------------------------------------------------------------ engine lifecycle
    def on_chat_screen_ready(self, event: ChatScreen.Ready) -> None:
        """The first frame is on screen: start the engine (unless told not to)."""
        event.stop()
        if self._start_engine and self._engine_factory is not None:
            self.start_engine()

    @work(exclusive=True, group="engine", exit_on_error=False)
    async def start_engine(self) -> None:
        """Build the engine (imports httpx etc. off the first frame), subscribe, start it.

        The sync layer's imports (httpx, the engine: ~50 ms) run in a thread first, so the
        frames that finish the screen (conversation list, key bar) are drawn meanwhile
        instead of after them (benchmarks/NOTES.md). A failure is shown as a toast; the
        cached UI stays usable."""
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
            if self.chat.work_offline:  # kept from the last session (sync rule C3)
                engine.set_work_offline(True)
            await engine.start()
        except Exception as exc:  # noqa: BLE001 - keep the cached UI usable
            log.exception("engine failed to start")
            self.notify(f"Could not start syncing: {exc}", severity="error", timeout=10)
            return
        self.engine_ready = True
        self.chat.engine_started()
        self.show_local_offer()
        if self._on_ready is not None:
            result = self._on_ready(self)
            if isinstance(result, Awaitable):
                await result

    def _engine_callback(self, event: Any) -> None:
        # Called on the engine's loop (this app's loop, or another thread): post_message is
        # thread safe, so hand the event to the chat screen's queue either way.
        self.chat.post_message(EngineEvent(event))

    async def on_unmount(self) -> None:  # noqa: D102 - Textual hook
        self.chat.save_state()
        if self._theme_timer is not None:  # chosen just before quitting: keep it too
            self._theme_timer.stop()
            self.save_theme()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self.engine is not None:
            try:
                await self.engine.stop()
            except Exception:  # noqa: BLE001
                log.exception("engine stop failed")

    def action_toggle_work_offline(self) -> None:
        """Switch "work offline" on or off; it stays so across restarts (sync rule C3)."""
        enabled = not self.chat.work_offline

        def switch(engine: Engine) -> None:
            self.store.set_work_offline(enabled)
            engine.set_work_offline(enabled)

        self.chat.engine_call("Could not switch work offline", switch)

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Show a toast. Always inert plain text (user text is untrusted): notifications
        carry server reasons, exception texts and conversation titles, so Rich markup is
        never parsed (``markup`` is ignored) and control characters are made visible
        (:func:`~chat_tui.ui.safe_text.inert`). ``timeout`` in seconds. A toast identical
        to one still shown (text, title, severity) replaces it: repeated identical toasts
        collapse into one."""
        text, heading = inert(message), inert_line(title)
        for shown in list(self._notifications):
            # the same toast again (a key pressed repeatedly): one toast, shown anew
            if (shown.message, shown.title, shown.severity) == (text, heading, severity):
                self._unnotify(shown, refresh=False)
        super().notify(text, title=heading, severity=severity, timeout=timeout, markup=False)

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
                self.chat.open_conversation(hit.conversation_id, hit.message_id, select=True,
                                            focus_messages=True)

        if not self.chat.cache_ready.is_set():
            self.chat.after_cache(self.action_search)
        elif not isinstance(self.screen, SearchScreen):
            self.push_screen(SearchScreen(self.store, self.clock), opened)

    def action_new_conversation(self) -> None:
        """Ask for a new conversation (assistant or members; with the assistant, its model
        from the model picker and its system prompt, sync rule 9) and open it. The dialog
        checks the member names with the server when it can be asked and creates nothing
        while any is unknown (sync rule 3o); otherwise the create is queued, with a note
        that the names were not checked."""
        from chat_tui.ui.screens.new_conversation import (
            NewConversationScreen,
            server_member_check,
        )

        def created(result: Any) -> None:
            if result is None:
                return
            cid = self.chat.engine_call(
                "Could not create the conversation",
                lambda e: e.create_conversation(result.title, result.members,
                                                assistant=result.assistant,
                                                model=result.model,
                                                system_prompt=result.system_prompt),
                errors=(Exception,))
            if cid is None:
                return
            if result.members and not result.checked:
                self.notify("Member names not checked (the server could not be asked): "
                            "the conversation is queued; a refusal shows above the "
                            "composer (ctrl+b).", timeout=8)
            self.chat.refresh_conversations()
            self.chat.open_conversation(cid)
            self.chat.action_focus_composer()

        self.push_screen(NewConversationScreen(check=server_member_check(self.chat),
                                               matrix=self.is_matrix, store=self.store,
                                               refresh_models=self.refresh_model_list), created)

    @property
    def is_matrix(self) -> bool:
        """True when the engine is a Matrix account's (no assistant; invites)."""
        return bool(self.engine is not None and self.engine.is_matrix)

    def action_show_invites(self) -> None:
        """Show the Matrix account's pending invites, to accept or decline
        (:class:`~chat_tui.ui.screens.invites.InvitesScreen`)."""
        from chat_tui.ui.screens.invites import InvitesScreen

        if not self.is_matrix:
            self.notify("Invites are a Matrix feature; this account has none.", timeout=5)
        elif not isinstance(self.screen, InvitesScreen):
            self.push_screen(InvitesScreen(self.engine))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every action of the keymap in the command palette (run on the app or the chat
        screen, by owner), plus Textual's own."""
        for entry in palette_actions():
            target = self if entry.owner == "app" else self.chat
            keys = f" ({entry.key_display})" if entry.key_display else ""
            yield SystemCommand(entry.description, f"{entry.help}{keys}",
                                partial(self.run_action, entry.action, target))
        yield from super().get_system_commands(screen)



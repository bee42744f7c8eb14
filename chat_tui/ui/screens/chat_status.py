"""How the chat screen follows the engine: connectivity, outbox counts and sync progress
shown in the title bar, the offline banner and the skeleton; message and list changes
re-read from the cache, coalesced into one refresh per burst.

Engine events (:mod:`chat_tui.sync.events`) arrive as
:class:`~chat_tui.ui.messages.EngineEvent` messages and are matched on their classes; the
state they carry goes into the screen's reactives, whose watchers update the widgets.
"""

from __future__ import annotations

from chat_tui.ui.messages import EngineEvent

__all__ = ["EngineStatus"]


class EngineStatus:
    """Mixin of :class:`~chat_tui.ui.screens.chat.ChatScreen` (which declares the
    reactives ``connectivity``, ``work_offline``, ``last_synced_at``, ``outbox`` and
    ``sync_phase`` watched here)."""

    REFRESH_COALESCE = 0.03  # seconds over which engine events are merged into one refresh
    LIST_COALESCE = 0.25  # seconds between two conversation-list re-reads (a streaming
    # reply changes the preview on every chunk; the list query grows with the account)

    def on_engine_event(self, message: EngineEvent) -> None:
        """Apply one engine event (:mod:`chat_tui.sync.events`); refreshes are coalesced."""
        from chat_tui.sync import events  # the engine runs: the sync layer is imported

        if not self._ready():
            return
        match message.event:
            case events.ConnectivityChanged(state=state, work_offline=offline,
                                            last_synced_at=synced):
                self.work_offline = offline
                self.last_synced_at = synced
                self.connectivity = state
            case events.OutboxChanged(counts=counts):
                self.outbox = dict(counts)
                self.update_problems()
                self._schedule_list()  # the rows' counts and failure marks
            case events.MessagesChanged(conversation_id=cid, message_ids=ids):
                self._dirty_messages.setdefault(cid, set()).update(ids)
                self._schedule_flush()
                self._schedule_list()
            case events.ConversationsChanged():
                self._schedule_list()
            case events.SyncProgress(phase=phase, done=done, total=total):
                self.sync_phase = (phase, done, total)
            case events.InvitesChanged(invites=invites) if invites:
                # a Matrix account: say so once per change; F2 lists them
                count = len(invites)
                self.app.notify(f"{count} invite{'s' if count > 1 else ''} waiting: F2 "
                                "shows them", title="Matrix", timeout=10)
            case events.EngineProblem(kind="cache", message=text):
                # moved aside at open (sync rule D4): say so once
                self.app.notify(text, title="Cache replaced", severity="warning", timeout=20)
            case events.EngineProblem(kind="auth", active=active, message=text):
                self.login_state(active, text)  # a lasting banner, not a toast (rule 3l)
            case events.EngineProblem(active=True, message=text):
                self.app.notify(text, title="Sending paused", severity="error", timeout=15)

    def watch_connectivity(self, was: str, state: str) -> None:  # noqa: D102 - Textual hook
        self.sync_indicator.show_state(state=state)
        self._update_banner()
        self._update_skeleton()
        if was != "online" and state == "online":
            self._mark_read()

    def watch_work_offline(self) -> None:  # noqa: D102 - Textual hook
        self._update_banner()

    def watch_last_synced_at(self) -> None:  # noqa: D102 - Textual hook
        self._update_banner()
        self._update_skeleton()

    def watch_outbox(self, counts: dict[str, int]) -> None:  # noqa: D102 - Textual hook
        self.queue_indicator.show_counts(counts)
        self._update_banner()

    def watch_sync_phase(self, phase: tuple[str, int, int | None]) -> None:  # noqa: D102
        self.sync_indicator.show_state(phase=phase[0], done=phase[1], total=phase[2])
        self._update_skeleton()

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
        if self._ready():
            self.refresh_conversations()
            self.update_problems()

    def _ready(self) -> bool:
        """True while the screen's widgets exist (not before compose, not while the app
        shuts down): late engine events and timers are dropped then."""
        return bool(self.is_mounted and self.is_attached and self.app.is_running
                    and self.conversation_list.is_attached)

    async def _flush(self) -> None:
        self._flush_timer = None
        if not self._ready():
            return
        dirty, self._dirty_messages = self._dirty_messages, {}
        if self.current_id in dirty:
            self.run_worker(self._refresh_current(tuple(dirty[self.current_id])),
                            group="refresh", exit_on_error=False)

    async def _refresh_current(self, message_ids: tuple[str, ...]) -> None:
        # A worker, never the screen's own message handler: the window's lock may be held
        # by an opening conversation that needs the message pump to finish mounting.
        await self.messages.refresh_messages(message_ids)
        self._mark_read()

    def _update_banner(self) -> None:
        self.banner.show_state(
            self.connectivity == "offline", self.window.queued_total, self.last_synced_at,
            self.work_offline)

    def _update_skeleton(self) -> None:
        empty = not self.conversations
        skeleton = self.skeleton
        skeleton.show(empty)
        self.messages.display = not empty
        if empty:
            phase, done, total = self.sync_phase
            state = "login" if self.login_needed is not None else self.connectivity
            skeleton.show_progress(phase, done, total, state,
                                   synced=self.last_synced_at is not None)


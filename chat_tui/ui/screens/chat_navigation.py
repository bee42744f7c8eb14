"""Moving around the chat screen: opening a conversation (from the list, by key, from a
search hit), the focus keys, paging through the open conversation, and the read marker of
what is on screen once it is the newest.

Opening reads only the cache (docs/engine.md, "Cache read API"): the list row, the title,
the draft and a window of messages; the read marker goes to the engine
(``Engine.mark_read``), which queues it for the server.
"""

from __future__ import annotations

import logging

from textual import work

from chat_tui.ui.widgets.conversation_list import ConversationList

__all__ = ["Navigation"]

log = logging.getLogger(__name__)


class Navigation:
    """Mixin of :class:`~chat_tui.ui.screens.chat.ChatScreen`: which conversation is open,
    where the focus is, which page of messages shows, and what has been read.

    State: ``_last_read`` (conversation id -> id of the message last marked read here)."""

    _last_read: dict[str, str]

    @work(exclusive=True, group="open", exit_on_error=False)
    async def open_conversation(self, conversation_id: str, anchor_id: str | None = None,
                                *, select: bool = False, focus_messages: bool = False) -> None:
        """Open ``conversation_id`` from the cache (at ``anchor_id`` when given; ``select``
        selects that message; ``focus_messages`` moves the focus to the list once open;
        waits for the cache when the first frame's reader is still in place)."""
        await self.cache_ready.wait()
        # The open conversation's draft is saved first, also when that conversation is
        # opened again (Enter on its row, a search hit in it): its draft is read back
        # below, and the debounced save may not have run since the last key.
        self.flush_draft()
        if self.current_id is None:  # what was typed with none open goes into this one
            self.place.carry_into(conversation_id)
        if conversation_id != self.current_id:
            self.place.save_anchor()
        if not self.window.complete and self.window.get(conversation_id) is None:
            self.window.read(include=conversation_id)  # opened further down (search)
        self.current_id = conversation_id
        self.store.set_last_conversation(conversation_id)
        if anchor_id is None:
            anchor_id = self.store.get_ui_state().scroll_anchors.get(conversation_id)
            select = False
        self.conversation_list.show(self.conversations, conversation_id,
                                    complete=self.window.complete)
        self._title.update(self._conversation_title())
        if self.composer is not None:
            self.composer.stop_editing()
            self.place.restore_draft(conversation_id)
        self.update_problems()
        await self.messages.open(conversation_id, anchor_id, select=select)
        if focus_messages:
            self.messages.focus()
        self._mark_read()

    def on_conversation_list_opened(self, event: ConversationList.Opened) -> None:
        """A conversation was chosen in the list."""
        self.open_conversation(event.conversation_id)
        self.action_focus_composer()

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
        ids = self.window.ids()
        if not self.window.complete and self.current_id in ids:
            index = ids.index(self.current_id) + step
            if index >= len(ids) and self.window.grow():
                self.refresh_conversations()  # past the window: a longer one
            elif index < 0:
                self.refresh_conversations(whole=True)  # wrapping to the oldest
        return self.conversation_list.neighbour(step)

    # ------------------------------------------------------------------ focus
    def action_focus_conversations(self) -> None:
        """Focus the conversation list."""
        self.conversation_list.focus()

    def action_focus_messages(self) -> None:
        """Focus the message list."""
        self.messages.focus()

    def action_focus_composer(self) -> None:
        """Focus the composer (once it is mounted)."""
        if self.composer is not None:
            self.composer.focus()

    # ------------------------------------------------------------------ pages
    def action_page_up(self) -> None:
        """Scroll the messages a page up (older pages load at the top)."""
        messages = self.messages
        messages.release_anchor()
        messages.scroll_page_up(animate=False)
        if messages.scroll_y <= messages.EDGE:
            messages.load_older()

    def action_page_down(self) -> None:
        """Scroll the messages a page down."""
        messages = self.messages
        messages.scroll_page_down(animate=False)
        if messages.scroll_y >= messages.max_scroll_y - messages.EDGE:
            messages.load_newer()

    def action_jump_newest(self) -> None:
        """Show the newest messages and follow new ones."""
        self.run_worker(self.messages.jump_newest(), group="open", exit_on_error=False)

    # ------------------------------------------------------------------ read marker
    def _mark_read(self) -> None:
        """Tell the engine the newest message of others on screen has been read."""
        engine, cid, messages = self.engine, self.current_id, self.messages
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

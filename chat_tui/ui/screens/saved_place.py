"""Where the user was: the composer's draft and the message list's scroll position, saved
per conversation in the cache, debounced, so nothing typed is lost on a restart."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from textual.timer import Timer

    from chat_tui.store import Cache
    from chat_tui.ui.widgets.composer import Composer
    from chat_tui.ui.widgets.message_list import MessageList

__all__ = ["NO_CONVERSATION", "SavedPlace"]

log = logging.getLogger(__name__)

NO_CONVERSATION = ""
"""The draft key of what is typed while no conversation is open (an account without
conversations, or after the last one went): kept like any draft, across restarts, and
moved into the first conversation that opens (:meth:`SavedPlace.carry_into`)."""


class SavedPlace:
    """Saves the draft of ``composer`` and the scroll anchor of ``messages`` to ``store``.

    Args:
        store: the account's cache (``Cache.save_draft``, ``set_scroll_anchor``,
            ``get_draft``).
        messages: the chat screen's message list; ``composer`` is set once the
            composer is mounted (None before: no draft to save or load yet).
        current: returns the open conversation's id (str | None).
        set_timer: the screen's ``set_timer(delay_seconds, callback) -> Timer``.

    A failed write is logged, never raised: the UI does not go down over a draft.
    """

    DRAFT_DEBOUNCE = 0.4  # seconds after the last keystroke before the draft is saved
    ANCHOR_DEBOUNCE = 0.5  # seconds after the last scroll before the position is saved

    def __init__(self, store: Cache, messages: MessageList, current: Callable[[], str | None],
                 set_timer: Callable[[float, Callable[[], None]], Timer]) -> None:
        self.store = store
        self.composer: Composer | None = None
        self.messages = messages
        self._current = current
        self._set_timer = set_timer
        self._draft_timer: Timer | None = None
        self._anchor_timer: Timer | None = None
        self.loading = False  # the composer's text is being replaced, not typed

    def set_draft(self, text: str, cursor: tuple[int, int] | None) -> None:
        """Put ``text`` in the composer (cursor ``(row, column)``, None: at the end)
        without counting it as typing."""
        if self.composer is None:
            return
        self.loading = True
        try:
            self.composer.set_draft(text, cursor)
        finally:
            self.loading = False

    def restore_draft(self, conversation_id: str | None) -> None:
        """Load the saved draft of ``conversation_id`` (None: the text typed with no
        conversation open, :data:`NO_CONVERSATION`) into the composer, or an empty one."""
        draft = self.store.get_draft(conversation_id or NO_CONVERSATION)
        if draft is None:
            self.set_draft("", None)
        else:
            self.set_draft(draft.text, tuple(draft.cursor))

    def draft_changed(self) -> None:
        """The user typed or moved the cursor: save after :attr:`DRAFT_DEBOUNCE` of quiet."""
        if self.loading:
            return
        if self._draft_timer is not None:
            self._draft_timer.stop()
        self._draft_timer = self._set_timer(self.DRAFT_DEBOUNCE, self.flush_draft)

    def flush_draft(self) -> None:
        """Save the composer's draft (text and cursor) for the open conversation now."""
        if self._draft_timer is not None:
            self._draft_timer.stop()
            self._draft_timer = None
        if self.composer is None:
            return
        cid = self._current() or NO_CONVERSATION
        text, cursor = self.composer.draft
        try:
            self.store.save_draft(cid, text, cursor)
        except Exception:  # noqa: BLE001 - never lose the UI over a draft write
            log.exception("saving the draft failed")

    def carry_into(self, conversation_id: str) -> None:
        """The first conversation opens after text was typed with none open: that text
        (saved under :data:`NO_CONVERSATION`) becomes the end of ``conversation_id``'s
        draft, so it is in the composer there and nothing typed is lost."""
        try:
            kept = self.store.get_draft(NO_CONVERSATION)
            if kept is None or not kept.text:
                return
            draft = self.store.get_draft(conversation_id)
            if draft is None or not draft.text:
                self.store.save_draft(conversation_id, kept.text, kept.cursor)
            else:
                self.store.save_draft(conversation_id, draft.text + "\n" + kept.text,
                                      (0, 0))
            self.store.save_draft(NO_CONVERSATION, "")
        except Exception:  # noqa: BLE001 - never lose the UI over a draft write
            log.exception("moving the draft failed")

    def scrolled(self) -> None:
        """The message list scrolled: save the position after :attr:`ANCHOR_DEBOUNCE`."""
        if self._anchor_timer is not None:
            self._anchor_timer.stop()
        self._anchor_timer = self._set_timer(self.ANCHOR_DEBOUNCE, self.save_anchor)

    def save_anchor(self) -> None:
        """Save the first visible message as the conversation's scroll anchor now (None
        when the newest message is on screen: the list opens at the newest)."""
        if self._anchor_timer is not None:
            self._anchor_timer.stop()
            self._anchor_timer = None
        messages = self.messages
        cid = messages.conversation_id
        if cid is None:
            return
        anchor = None if messages.at_bottom else messages.first_visible_id()
        try:
            self.store.set_scroll_anchor(cid, anchor)
        except Exception:  # noqa: BLE001
            log.exception("saving the scroll position failed")

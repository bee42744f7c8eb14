"""The engine's actions on a conversation as a whole (docs/engine.md): change its title,
the assistant's model and its system prompt (sync rule 9), and ask the assistant for a new
reply (sync rule 10). Like every user action each is
one short transaction of the cache on the calling thread (the change shows at once and is
queued in order), then publishes and wakes the drain; none waits for the network."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chat_tui.store import ApplyResult

if TYPE_CHECKING:
    from chat_tui.store import Cache

#: "Leave this setting as it is" (a value of None means "the server's own").
UNCHANGED = object()


class ConversationActions:
    """Actions on a conversation's settings (a mixin of
    :class:`~chat_tui.sync.engine.Engine`); uses the engine's ``store`` and
    ``_after_action``."""

    store: Cache

    def update_conversation(self, conversation_id: str, *, title: object = UNCHANGED,
                            model: object = UNCHANGED,
                            system_prompt: object = UNCHANGED) -> bool:
        """Sync rule 9: change the conversation's ``title``, the assistant's ``model``
        (None: the server's default) and ``system_prompt`` (None: the server's own), each
        only when given: shown at once, queued after the conversation's earlier actions
        (``Cache.enqueue_update_conversation``). Returns False when nothing changes.

        Raises:
            StoreError: unknown conversation, a value out of its limits, a model or prompt
                for a conversation without the assistant.
        """
        changes = {name: value for name, value in (
            ("title", title), ("model", model), ("system_prompt", system_prompt))
            if value is not UNCHANGED}
        self.store.ensure_open()
        if self.store.enqueue_update_conversation(conversation_id, changes) is None:
            return False
        res = ApplyResult()
        res.touch(conversation_id)
        self._after_action(res)  # type: ignore[attr-defined]
        return True

    def _conversation_changed(self, conversation_id: str) -> None:
        res = ApplyResult()
        res.touch(conversation_id)
        self._after_action(res)  # type: ignore[attr-defined]

    def leave_conversation(self, conversation_id: str) -> None:
        """Sync rule 11: leave (delete from my list) the conversation: it leaves the list
        at once and the leave is queued after its earlier actions; with no person left on
        the server it is gone for everyone.

        Raises:
            StoreError: unknown conversation, or left already.
        """
        self.store.ensure_open()
        self.store.enqueue_leave(conversation_id)
        self._conversation_changed(conversation_id)

    def add_member(self, conversation_id: str, username: str) -> bool:
        """Sync rule 11: add a member to a conversation I created (shown at once, queued).
        Returns False when it is a member already.

        Raises:
            StoreError: unknown conversation, not its creator, a malformed username or the
                assistant.
        """
        self.store.ensure_open()
        if self.store.enqueue_member_change(conversation_id, username, True) is None:
            return False
        self._conversation_changed(conversation_id)
        return True

    def remove_member(self, conversation_id: str, username: str) -> bool:
        """Sync rule 11: remove a member from a conversation I created (shown at once,
        queued). Returns False when it is not a member.

        Raises:
            StoreError: unknown conversation, not its creator, a malformed username, the
                assistant or myself (leave instead).
        """
        self.store.ensure_open()
        if self.store.enqueue_member_change(conversation_id, username, False) is None:
            return False
        self._conversation_changed(conversation_id)
        return True

    def regenerate(self, message_id: str) -> str:
        """Sync rule 10: queue a new reply to the question the assistant reply
        ``message_id`` answers (regenerate it, or retry it when it failed); the earlier
        reply stays until the server replaces it. Returns the id the new reply will have.

        Raises:
            StoreError: unknown message, not an assistant reply, still being written,
                replaced already.
        """
        self.store.ensure_open()
        reply_id = self.store.enqueue_regenerate(message_id)
        msg = self.store.get_message(message_id)
        res = ApplyResult()
        if msg is not None:
            res.touch(msg.conversation_id)
        self._after_action(res)  # type: ignore[attr-defined]
        return reply_id


__all__ = ["UNCHANGED", "ConversationActions"]

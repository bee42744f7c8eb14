"""The engine's actions on a conversation as a whole (docs/engine.md): change its title,
the assistant's model and its system prompt (sync rule 9), and ask the assistant for a new
reply (sync rule 10), leave it or change its members (sync rule 11). Like every user action
each is one short transaction of the cache on the calling thread (the change shows at once
and is queued in order), then publishes and wakes the drain; none waits for the network.
A Matrix account renames, leaves and changes members the same way (its backend maps
them on the room's name, leave and forget, invite and kick); what needs chat-tui's server
(the assistant's settings, regenerate) raises StoreError there. Stopping a reply and
listing the models are asked of the server at once (nothing to queue)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chat_tui.store import ApplyResult, StoreError

if TYPE_CHECKING:
    from chat_tui.api.backend import Backend
    from chat_tui.store import Cache

#: "Leave this setting as it is" (a value of None means "the server's own").
UNCHANGED = object()


class ConversationActions:
    """Actions on a conversation's settings (a mixin of
    :class:`~chat_tui.sync.engine.Engine`); uses the engine's ``store`` and
    ``_after_action``; the ones that ask the server at once use ``_api`` and
    ``_gate``."""

    store: Cache
    _api: Backend | None

    def _refuse_on_matrix(self, what: str) -> None:
        """StoreError when the account is a Matrix one: ``what`` needs chat-tui's server."""
        if getattr(self, "is_matrix", False):
            raise StoreError(f"a Matrix account cannot {what}: it needs chat-tui's own server")

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
        if getattr(self, "is_matrix", False) and (model is not UNCHANGED
                                                   or system_prompt is not UNCHANGED):
            self._refuse_on_matrix("set the assistant's model or system prompt")
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

    def _member_id(self, username: str) -> str:
        """``username`` as the account's server names its users: as given for chat-tui's
        server; for a Matrix account a user id, a localpart (``bob``, ``@bob``) being a
        user of the account's homeserver (``@bob:<server name>``)."""
        if not getattr(self, "is_matrix", False):
            return username
        name = username.strip()
        if ":" in name:
            return name if name.startswith("@") else f"@{name}"
        server = str(getattr(self, "_user_id", "")).partition(":")[2]
        return f"@{name.lstrip('@')}:{server}" if server else name

    def leave_conversation(self, conversation_id: str) -> None:
        """Sync rule 11: leave (delete from my list) the conversation: it leaves the list
        at once and the leave is queued after its earlier actions; with no person left on
        the server it is gone for everyone (on Matrix: leave and forget the room).

        Raises:
            StoreError: unknown conversation, or left already.
        """
        self.store.ensure_open()
        self.store.enqueue_leave(conversation_id)
        self._conversation_changed(conversation_id)

    def add_member(self, conversation_id: str, username: str) -> bool:
        """Sync rule 11: add a member to a conversation I created (shown at once, queued;
        on Matrix an invite, ``username`` a user id or a localpart of my homeserver).
        Returns False when it is a member already.

        Raises:
            StoreError: unknown conversation, not its creator, a malformed username or the
                assistant.
        """
        self.store.ensure_open()
        if self.store.enqueue_member_change(conversation_id, self._member_id(username),
                                            True) is None:
            return False
        self._conversation_changed(conversation_id)
        return True

    def remove_member(self, conversation_id: str, username: str) -> bool:
        """Sync rule 11: remove a member from a conversation I created (shown at once,
        queued; on Matrix a kick, ``username`` as for :meth:`add_member`). Returns False
        when it is not a member.

        Raises:
            StoreError: unknown conversation, not its creator, a malformed username, the
                assistant or myself (leave instead).
        """
        self.store.ensure_open()
        if self.store.enqueue_member_change(conversation_id, self._member_id(username),
                                            False) is None:
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
        self._refuse_on_matrix("regenerate a reply")
        reply_id = self.store.enqueue_regenerate(message_id)
        msg = self.store.get_message(message_id)
        res = ApplyResult()
        if msg is not None:
            res.touch(msg.conversation_id)
        self._after_action(res)  # type: ignore[attr-defined]
        return reply_id

    # ------------------------------------------------------------------ asked at once

    def _online_api(self, what: str) -> Backend:
        """The running client of chat-tui's server for an action that cannot be queued
        (``what`` names it in the error): ``PermanentError`` for a Matrix account, which
        has no assistant (docs/sync.md, Matrix), ``TransientError`` while working offline
        or before start."""
        from chat_tui.api import PermanentError, TransientError

        if getattr(self, "is_matrix", False):
            raise PermanentError(f"a Matrix account has no assistant: {what} needs "
                                 "chat-tui's own server")
        if self._gate.work_offline:  # type: ignore[attr-defined]
            raise TransientError(f"working offline: {what} needs the server",
                                 reached_server=False)
        if self._api is None:
            raise TransientError(f"not connected yet: {what} needs the server",
                                 reached_server=False)
        return self._api

    async def stop_reply(self, message_id: str) -> None:
        """Stop the assistant reply ``message_id`` while it streams
        (``POST /v1/messages/{mid}/stop``, docs/api.md): the server keeps what was written
        and marks it ``stopped``; the sync brings that last version to every device, this
        one included (the server's own writes wake every long-poll). Not queued: a stop
        only means something while the reply is being written.

        Raises:
            chat_tui.api.ApiError: offline or working offline (``TransientError``), the
            reply is unknown (``PermanentError`` 404) or not an assistant reply (409).
        """
        api = self._online_api("stopping a reply")
        await api.stop_reply(message_id)

    async def list_models(self):
        """The models the server offers (``GET /v1/models``: a ``wire.ModelList``), also
        kept in the cache (``Cache.save_model_list``) so a model can be chosen offline.

        Raises:
            chat_tui.api.ApiError: offline, working offline, or refused.
        """
        api = self._online_api("listing the models")
        listing = await api.list_models()
        await self._worker.run(  # type: ignore[attr-defined]
            self.store.save_model_list, listing.to_json().decode("utf-8"))
        return listing


__all__ = ["UNCHANGED", "ConversationActions"]

"""Asking the assistant again through the outbox (docs/sync.md, rule 10): regenerate a
reply, or retry one that failed. The request is queued in order with the conversation's
other actions and carries the id of the new reply, chosen here, so a retry of the request
never makes a second reply; the earlier reply stays in the cache until the server
replaces it (its tombstone comes by sync)."""

from __future__ import annotations

import json
import uuid

from chat_tui.store.cachefile import CacheFile
from chat_tui.store.errors import StoreError
from chat_tui.store.outbox_state import OutboxState
from chat_tui.wire.limits import ASSISTANT_USERNAME


class ReplyChanges(CacheFile):
    """Regenerating assistant replies (part of :class:`~chat_tui.store.Cache`). Uses
    ``_append`` of :class:`~chat_tui.store.outbox.OutboxChanges`."""

    def last_reply(self, conversation_id: str) -> str | None:
        """The id of the newest assistant reply of the conversation that is cached and
        not deleted (what "regenerate" acts on when none is selected), or None."""
        M = self.m.Message
        row = (M.select(M.id).where((M.conv == self._ckey(conversation_id))
                                    & (M.author == ASSISTANT_USERNAME)
                                    & (M.deleted == False))  # noqa: E712
               .order_by(M.sort_key.desc()).first())
        return row.id if row is not None else None

    def enqueue_regenerate(self, message_id: str) -> str:
        """Sync rule 10: queue a new reply to the question the assistant reply
        ``message_id`` answers (``POST /v1/messages/{mid}/regenerate``), after the
        conversation's earlier actions, with a fresh id for the new reply (the idempotency
        key). A regenerate of the same reply already waiting (not in flight) is not queued
        twice: its reply id is returned. Returns the id the new reply will have.

        Raises:
            StoreError: unknown message, not an assistant reply, a reply still being
                written or already replaced.
        """
        M, Ob = self.m.Message, self.m.Outbox
        with self._write():
            row = M.get_or_none(M.id == message_id)
            if row is None:
                raise StoreError(f"unknown message {message_id}")
            if row.author != ASSISTANT_USERNAME:
                raise StoreError("only an assistant reply can be regenerated")
            if row.deleted:
                raise StoreError("this reply was replaced already")
            if row.streaming:
                raise StoreError("the reply is still being written: stop it first")
            waiting = (Ob.select().where((Ob.message_id == message_id)
                                         & (Ob.kind == "regenerate")
                                         & (Ob.state != OutboxState.SENDING)).first())
            if waiting is not None:
                return json.loads(waiting.payload)["reply_id"]
            reply_id = str(uuid.uuid4())
            self._append("regenerate", self._cid(row), message_id, {"reply_id": reply_id})
            return reply_id


__all__ = ["ReplyChanges"]

"""The user's changes to the cache (docs/sync.md, outbox rules 1 to 8): each user action
writes the local result (echo, pending edit or delete, read marker) and its outbox row in
one short transaction. The user's answers to an action that waits for them (retry, send
anyway, discard) are :mod:`chat_tui.store.outbox_answers`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from chat_tui.store.cachefile import CacheFile
from chat_tui.store.convert import now
from chat_tui.store.errors import StoreError
from chat_tui.store.outbox_conversation import check_settings
from chat_tui.store.outbox_state import OutboxState
from chat_tui.store.views import LOCAL_ECHO_BASE
from chat_tui.wire.limits import MAX_BODY_BYTES


def _may_be_on_server(send: Any) -> bool:
    """Whether an outbox ``send`` row (not in flight) may already be on the server: an
    attempt of it got no answer (a transient failure, or an interruption or a kill while it
    was ``sending``: its attempt is kept, outbox rule 4). A send refused at its only attempt,
    or never tried, is not (outbox rules 3 and 7)."""
    return send.transient_failures > 0 or send.attempts > (
        1 if send.state == OutboxState.FAILED else 0)


class OutboxChanges(CacheFile):
    """The user's actions on the outbox (part of :class:`~chat_tui.store.Cache`). Each one
    is a single ``BEGIN IMMEDIATE`` transaction on the calling thread; ``StoreError`` means
    nothing was changed. Uses ``_rows_for`` of :class:`~chat_tui.store.outbox_queue.OutboxQueue`,
    ``_count_unread`` of :class:`~chat_tui.store.reads.ReadModel` and the drafts of
    :class:`~chat_tui.store.ui_state.SavedUIState`."""

    def _append(self, kind: str, cid: str, mid: str | None, payload: dict) -> int:
        """Queue a new action at the end of the outbox; returns its id (FIFO sequence)."""
        t = now()
        return self.m.Outbox.insert(kind=kind, conversation_id=cid, message_id=mid,
                                    payload=json.dumps(payload), state=OutboxState.QUEUED,
                                    created_at=t, queued_at=t).execute()

    def enqueue_create_conversation(self, conversation_id: str, title: str,
                                    members: Sequence[str] = (), assistant: bool = False,
                                    model: str | None = None,
                                    system_prompt: str | None = None) -> str:
        """Create a conversation locally and queue its create (outbox rule 2: it reaches the
        server before its first message), with the assistant's ``model`` and
        ``system_prompt`` (None: the server's own; only with ``assistant``). Returns its id.

        Raises:
            StoreError: empty title or over 200 characters, a model or system prompt out of
                its limits or without the assistant (docs/api.md limits).
        """
        settings = check_settings({"title": title, "model": model,
                                   "system_prompt": system_prompt})
        if not assistant and (settings["model"] or settings["system_prompt"]):
            raise StoreError("only a conversation with the assistant has a model and a "
                             "system prompt")
        title = settings["title"] or ""
        names = sorted({m.strip().lower() for m in members if m.strip()} | {self._me}
                       | ({"assistant"} if assistant else set()))
        t = now()
        with self._write():
            self.m.Conversation.insert(
                id=conversation_id, title=title, creator=self._me, members=json.dumps(names),
                assistant=assistant, created_at=t, updated_at=t, last_activity_at=t,
                pending=True, has_more=False, model=settings["model"],
                system_prompt=settings["system_prompt"],
            ).execute()
            extra = {k: settings[k] for k in ("model", "system_prompt") if settings[k]}
            self._append("create_conversation", conversation_id, None,
                         {"title": title, "members": [m for m in names if m != "assistant"],
                          "assistant": assistant, **extra})
        return conversation_id

    def enqueue_send(self, conversation_id: str, body: str, message_id: str | None = None) -> str:
        """Outbox rule 1: in one transaction insert the local echo (queued), its outbox row
        keyed by a fresh UUID (the message id, the idempotency key) and clear the draft.
        Returns the message id.

        Raises:
            StoreError: unknown conversation, or an empty or too long body (nothing saved).
        """
        if not body.strip():
            raise StoreError("an empty message is not sent")
        if len(body.encode("utf-8")) > MAX_BODY_BYTES:
            raise StoreError(f"a message has at most {MAX_BODY_BYTES:,} bytes (docs/api.md)")
        mid = message_id or str(uuid.uuid4())
        C, M = self.m.Conversation, self.m.Message
        t = now()
        with self._write():
            conv = C.get_or_none(C.id == conversation_id)
            if conv is None or conv.removed:
                raise StoreError(f"unknown conversation {conversation_id}")
            oid = self._append("send", conversation_id, mid, {"body": body})
            M.insert(id=mid, conv=self._ckey(conversation_id), author=self._me, body=body,
                     created_at=t, sort_key=LOCAL_ECHO_BASE + oid).execute()
            C.update(last_activity_at=t).where(C.id == conversation_id).execute()
            self.m.Draft.delete().where(self.m.Draft.conversation_id == conversation_id).execute()
        return mid

    def _own_message(self, message_id: str):
        """The message row, when it is cached and mine. Raises StoreError otherwise."""
        M = self.m.Message
        row = M.get_or_none(M.id == message_id)
        if row is None:
            raise StoreError(f"unknown message {message_id}")
        if row.author != self._me:
            raise StoreError("only the author can edit or delete a message")
        return row

    def enqueue_edit(self, message_id: str, body: str) -> str:
        """Outbox rule 7: rewrite the queued send (never sent twice), or queue an edit after
        the send in flight / the sent message; the new body shows at once. Returns what was
        done: ``rewritten`` or ``queued``.

        Raises:
            StoreError: not my message, deleted, or an empty/too long body.
        """
        if not body.strip():
            raise StoreError("an edit cannot be empty; delete the message instead")
        if len(body.encode("utf-8")) > MAX_BODY_BYTES:
            raise StoreError(f"a message has at most {MAX_BODY_BYTES:,} bytes (docs/api.md)")
        M, Ob = self.m.Message, self.m.Outbox
        with self._write():
            row = self._own_message(message_id)
            if row.deleted or row.pending_deleted:
                raise StoreError("a deleted message cannot be edited")
            send = next(iter(self._rows_for(message_id, "send")), None)
            if send is not None and send.state != OutboxState.SENDING:
                # The user touched it: its expiry clock restarts (outbox rule 6). Its
                # attempts are kept: one may have reached the server (answer lost), and a
                # later delete must then go to the server too (rule 7).
                Ob.update(payload=json.dumps({"body": body}), state=OutboxState.QUEUED,
                          transient_failures=0, next_attempt_at=0, last_error=None,
                          queued_at=now()).where(Ob.id == send.id).execute()
                M.update(body=body).where(M.id == message_id).execute()
                return "rewritten"
            edits = [o for o in self._rows_for(message_id, "edit")
                     if o.state != OutboxState.SENDING]
            if edits:
                Ob.update(payload=json.dumps({"body": body}), state=OutboxState.QUEUED,
                          attempts=0, transient_failures=0, next_attempt_at=0,
                          last_error=None).where(Ob.id == edits[-1].id).execute()
            else:
                self._append("edit", self._cid(row), message_id,
                             {"body": body, "base_version": row.version})
            M.update(pending_body=body).where(M.id == message_id).execute()
            return "queued"

    def enqueue_delete(self, message_id: str) -> str:
        """Outbox rule 7: a queued (not in flight) send is removed with its local echo, so it
        is never sent, unless it may already be on the server (:func:`_may_be_on_server`):
        then it becomes a ``DELETE`` in its place; otherwise a delete is queued after what is
        in flight and the message shows deleted at once. Returns ``removed`` or ``queued``.

        Raises:
            StoreError: not my message.
        """
        M, Ob = self.m.Message, self.m.Outbox
        with self._write():
            row = self._own_message(message_id)
            send = next(iter(self._rows_for(message_id, "send")), None)
            idle_send = send is not None and send.state != OutboxState.SENDING
            if idle_send and _may_be_on_server(send):
                # The server may hold it: it is deleted there; a 404 answer means there
                # was nothing to delete (docs/reliability.md).
                self._send_becomes_delete(send)
                return "queued"
            if idle_send:
                Ob.delete().where((Ob.message_id == message_id)
                                  & (Ob.state != OutboxState.SENDING)).execute()
                M.delete().where(M.id == message_id).execute()
                return "removed"
            if row.deleted or any(o.kind == "delete" for o in self._rows_for(message_id)):
                return "queued"
            Ob.delete().where((Ob.message_id == message_id) & (Ob.kind == "edit")
                              & (Ob.state != OutboxState.SENDING)).execute()
            self._append("delete", self._cid(row), message_id, {})
            M.update(pending_deleted=True, pending_body=None).where(M.id == message_id).execute()
            return "queued"

    def _send_becomes_delete(self, send: Any) -> None:
        """Outbox rule 7: a send that may already be on the server (an attempt whose answer
        never came) is not dropped but turned, in its place in the queue, into a ``DELETE``
        of the same message id; the local echo shows deleted until it is answered (a 404
        then removes the echo). Other pending actions of the message go. In a write
        transaction."""
        M, Ob = self.m.Message, self.m.Outbox
        Ob.delete().where((Ob.message_id == send.message_id)
                          & (Ob.state != OutboxState.SENDING) & (Ob.id != send.id)).execute()
        Ob.update(kind="delete", payload="{}", state=OutboxState.QUEUED, attempts=0,
                  transient_failures=0, next_attempt_at=0, last_error=None,
                  ).where(Ob.id == send.id).execute()
        M.update(pending_deleted=True, pending_body=None).where(
            M.id == send.message_id).execute()

    def enqueue_read(self, conversation_id: str, message_id: str) -> bool:
        """Move my read marker to ``message_id`` locally and queue it (one queued read per
        conversation; a newer one replaces it). Returns False when the message is not an
        acknowledged message of that conversation or is older than the marker."""
        C, M, Ob = self.m.Conversation, self.m.Message, self.m.Outbox
        with self._write():
            msg = M.get_or_none((M.id == message_id) & (M.conv == self._ckey(conversation_id)))
            conv = C.get_or_none(C.id == conversation_id)
            if msg is None or conv is None or msg.seq is None:
                return False
            if conv.read_seq is not None and conv.read_seq >= msg.seq:
                return False
            C.update(read_seq=msg.seq, read_message_id=message_id,
                     unread_count=self._count_unread(conversation_id, msg.seq),
                     ).where(C.id == conversation_id).execute()
            queued = (Ob.select().where((Ob.conversation_id == conversation_id)
                                        & (Ob.kind == "read")
                                        & (Ob.state == OutboxState.QUEUED)).first())
            if queued is not None:
                Ob.update(message_id=message_id,
                          payload=json.dumps({"message_id": message_id})).where(
                    Ob.id == queued.id).execute()
            else:
                self._append("read", conversation_id, message_id, {"message_id": message_id})
            return True


__all__ = ["MAX_BODY_BYTES", "OutboxChanges"]

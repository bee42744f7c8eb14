"""The user's changes to the cache (docs/sync.md, outbox rules 1 to 8): each user action
writes the local result (echo, pending edit or delete, read marker) and its outbox row in
one short transaction; and the user's answers to an action that waits for them (retry,
send anyway, discard)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from chat_tui.store.cachefile import CacheFile
from chat_tui.store.convert import now
from chat_tui.store.errors import StoreError
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
                                    members: Sequence[str] = (), assistant: bool = False) -> str:
        """Create a conversation locally and queue its create (outbox rule 2: it reaches the
        server before its first message). Returns its id.

        Raises:
            StoreError: empty title or over 200 characters (docs/api.md limits).
        """
        title = title.strip()
        if not 1 <= len(title) <= 200:
            raise StoreError("a title has 1 to 200 characters")
        names = sorted({m.strip().lower() for m in members if m.strip()} | {self._me}
                       | ({"assistant"} if assistant else set()))
        t = now()
        with self._write():
            self.m.Conversation.insert(
                id=conversation_id, title=title, creator=self._me, members=json.dumps(names),
                assistant=assistant, created_at=t, updated_at=t, last_activity_at=t,
                pending=True, has_more=False,
            ).execute()
            self._append("create_conversation", conversation_id, None,
                         {"title": title, "members": [m for m in names if m != "assistant"],
                          "assistant": assistant})
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

    # ------------------------------------------------------------------ the user's answers

    def _problem_rows(self, message_id: str, states: Iterable[str]) -> list:
        """The message's actions in one of ``states``, FIFO. Raises StoreError when none."""
        rows = [o for o in self._rows_for(message_id) if o.state in states]
        if not rows:
            raise StoreError(f"message {message_id} has no action in state {'/'.join(states)}")
        return rows

    def retry(self, message_id: str) -> None:
        """A failed action of the message goes back to ``queued`` with its attempts reset
        and its expiry clock restarted (outbox rule 6: a retried message is not expired
        again at once).

        Raises:
            StoreError: the message has no failed action.
        """
        Ob = self.m.Outbox
        with self._write():
            ids = [o.id for o in self._problem_rows(message_id, (OutboxState.FAILED,))]
            Ob.update(state=OutboxState.QUEUED, attempts=0, transient_failures=0,
                      next_attempt_at=0, last_error=None, queued_at=now(),
                      ).where(Ob.id.in_(ids)).execute()

    def retry_action(self, outbox_id: int) -> None:
        """Sync rule 3n: the failed or expired action ``outbox_id``, whatever its kind (a
        conversation create, a send, an edit, a delete, a read marker), goes back to
        ``queued`` with its attempts reset and its expiry clock restarted (rules 3f, 6).

        Raises:
            StoreError: no such action, or it is neither failed nor expired (a blocked one
            names the action it waits behind).
        """
        Ob = self.m.Outbox
        with self._write():
            row = Ob.get_or_none(Ob.id == outbox_id)
            if row is None:
                raise StoreError(f"no outbox action {outbox_id}")
            if row.state not in (OutboxState.FAILED, OutboxState.EXPIRED):
                blocker = self._first_blocker(row.conversation_id)
                behind = (f"; it waits behind action {blocker}: retry or discard that one"
                          if blocker is not None and blocker < row.id else "")
                raise StoreError(f"outbox action {outbox_id} is {row.state}, not failed "
                                 f"or expired{behind}")
            Ob.update(state=OutboxState.QUEUED, attempts=0, transient_failures=0,
                      next_attempt_at=0, last_error=None, queued_at=now(),
                      ).where(Ob.id == outbox_id).execute()

    def discard_plan(self, outbox_id: int) -> list[str]:
        """What :meth:`discard_action` of ``outbox_id`` would do, one readable line each,
        for the user to read before it happens (sync rule 3n). For a conversation create:
        the local conversation and every action queued behind it, with the full text of
        each message and of the draft that go with it.

        Raises:
            StoreError: no such action, or it is being sent right now.
        """
        Ob, M = self.m.Outbox, self.m.Message
        row = self._discardable(outbox_id)
        if row.kind != "create_conversation":
            what = {"send": "the unsent message (its text goes back into the draft)",
                    "edit": "the edit (the message keeps the server's text; the new "
                            "text goes back into the draft)",
                    "delete": "the delete (the message stays)",
                    "read": "the read marker (the server keeps the older one)"}
            return [f"discard {row.kind} #{row.id}: {what.get(row.kind, 'the action')}"]
        C = self.m.Conversation
        conv = C.get_or_none(C.id == row.conversation_id)
        title = conv.title if conv is not None else row.conversation_id
        lines = [f"discard create_conversation #{row.id}: remove the local conversation "
                 f"{title!r} ({row.conversation_id})"]
        for o in Ob.select().where((Ob.conversation_id == row.conversation_id)
                                   & (Ob.id != row.id)).order_by(Ob.id):
            payload = json.loads(o.payload or "{}")
            body = payload.get("body")
            lines.append(f"  and {o.kind} #{o.id}" + (f": {body}" if body else ""))
        if conv is not None:
            n = M.select().where(M.conv == conv.pk).count()
            if n:
                lines.append(f"  and its {n} cached message(s)")
        draft = self.get_draft(row.conversation_id)
        if draft is not None and draft.text:
            lines.append(f"  and its draft: {draft.text}")
        return lines

    def _discardable(self, outbox_id: int):
        """The outbox row ``outbox_id`` when it may be discarded. Raises StoreError."""
        Ob = self.m.Outbox
        row = Ob.get_or_none(Ob.id == outbox_id)
        if row is None:
            raise StoreError(f"no outbox action {outbox_id}")
        if row.state == OutboxState.SENDING:
            raise StoreError(f"outbox action {outbox_id} is being sent right now; try again "
                             "when it has an answer")
        return row

    def discard_action(self, outbox_id: int) -> str:
        """Sync rule 3n: discard the action ``outbox_id`` (failed, expired, blocked or
        queued; never one in flight), whatever its kind. A send, edit or delete is
        :meth:`discard` of its message (its text back into the draft, rules 3g-3i); a read
        marker is dropped; a conversation create removes the local conversation with every
        action queued behind it, its cached messages and its draft (the caller shows
        :meth:`discard_plan` first). Returns the text that goes back to the user: a
        message's text (also put back into its draft), or for a create the text of its
        unsent messages and its draft, oldest first, separated by blank lines, so nothing
        typed is lost (the caller shows it); "" for a read marker.

        Raises:
            StoreError: no such action, or it is being sent right now.
        """
        Ob, M, C = self.m.Outbox, self.m.Message, self.m.Conversation
        row = self._discardable(outbox_id)
        if row.kind in ("send", "edit", "delete") and row.message_id:
            return self.discard(row.message_id)
        with self._write():
            row = self._discardable(outbox_id)
            if row.kind != "create_conversation":
                Ob.delete().where(Ob.id == outbox_id).execute()
                return ""
            cid = row.conversation_id
            actions = list(Ob.select().where(Ob.conversation_id == cid).order_by(Ob.id))
            if any(o.state == OutboxState.SENDING for o in actions):
                raise StoreError("an action of this conversation is being sent right now; "
                                 "try again when it has an answer")
            m = self.m
            texts = [json.loads(o.payload or "{}").get("body") or "" for o in actions
                     if o.kind in ("send", "edit")]
            draft = m.Draft.get_or_none(m.Draft.conversation_id == cid)
            if draft is not None and draft.text.strip():
                texts.append(draft.text)
            Ob.delete().where(Ob.conversation_id == cid).execute()
            M.delete().where(M.conv == self._ckey(cid)).execute()
            m.Draft.delete().where(m.Draft.conversation_id == cid).execute()
            m.ScrollAnchor.delete().where(m.ScrollAnchor.conversation_id == cid).execute()
            m.ReadMarker.delete().where(m.ReadMarker.conversation_id == cid).execute()
            m.Gap.delete().where(m.Gap.conversation == cid).execute()
            C.delete().where(C.id == cid).execute()
            if self._get_meta("last_conversation") == cid:
                self._set_meta("last_conversation", None)
            return "\n\n".join(t for t in texts if t.strip())

    def send_anyway(self, message_id: str) -> None:
        """Outbox rule 6: an expired send goes back to ``queued``; its expiry clock restarts.

        Raises:
            StoreError: the message is not expired.
        """
        Ob = self.m.Outbox
        with self._write():
            ids = [o.id for o in self._problem_rows(message_id, (OutboxState.EXPIRED,))]
            Ob.update(state=OutboxState.QUEUED, queued_at=now(), next_attempt_at=0,
                      last_error=None).where(Ob.id.in_(ids)).execute()

    def discard(self, message_id: str) -> str:
        """Remove the message's pending action (failed, expired, queued or blocked, never one
        in flight) and put its text back into the draft (outbox rule 3). A discarded send
        removes the local echo, or, when it may already be on the server
        (:func:`_may_be_on_server`), becomes a ``DELETE`` in its place (rule 7); a discarded
        edit or delete restores the server's copy, except a delete of a message the server
        never acknowledged (what a discarded send became), which removes the echo and
        returns "" (its text is in the draft already). Returns the text.

        Raises:
            StoreError: nothing to discard, or the action is being sent right now.
        """
        M, Ob = self.m.Message, self.m.Outbox
        with self._write():
            rows = self._problem_rows(message_id, (
                OutboxState.FAILED, OutboxState.EXPIRED, OutboxState.QUEUED))
            row = M.get_or_none(M.id == message_id)
            text = ""
            for o in rows:
                payload = json.loads(o.payload or "{}")
                text = payload.get("body") or text
            if not text and row is not None:
                text = row.body
            send = next((o for o in rows if o.kind == "send"), None)
            if send is not None and row is not None and _may_be_on_server(send):
                # The text still goes back to the draft, and the copy the server may hold is
                # deleted, not left to come back by sync (docs/reliability.md).
                self._send_becomes_delete(send)
            else:
                Ob.delete().where(Ob.id.in_([o.id for o in rows])).execute()
                kinds = {o.kind for o in rows}
                if row is not None:
                    if "send" in kinds:
                        M.delete().where(M.id == message_id).execute()
                    elif row.seq is None and not self._rows_for(message_id):
                        # A delete that a discarded send became (rule 7), refused by the
                        # server: the server never acknowledged this message, so there is no
                        # copy of it to restore and it must not show as sent; the echo goes
                        # (sync brings the server's copy back if it has one). Its text went
                        # to the draft with that first discard.
                        M.delete().where(M.id == message_id).execute()
                        text = ""
                    elif not self._rows_for(message_id):
                        M.update(pending_body=None, pending_deleted=False).where(
                            M.id == message_id).execute()
            cid = rows[0].conversation_id
            if text:
                draft = self.get_draft(cid)
                merged = text if draft is None or not draft.text else text + "\n" + draft.text
                self.save_draft(cid, merged, (0, 0))
            return text


    def update_create_conversation(self, outbox_id: int, title: str,
                                   members: Sequence[str] = (), assistant: bool = False) -> None:
        """Change a waiting conversation create (failed, expired or queued) to a new title,
        members and assistant flag, in the outbox and in the local conversation, and queue
        it again with its attempts reset (outbox rule 3p: the user edits what the server
        refused, for example an unknown username).

        Raises:
            StoreError: no such create, it is being sent right now, or the title is empty
                or over 200 characters (docs/api.md limits).
        """
        title = title.strip()
        if not 1 <= len(title) <= 200:
            raise StoreError("a title has 1 to 200 characters")
        Ob, C = self.m.Outbox, self.m.Conversation
        names = sorted({m.strip().lower() for m in members if m.strip()} | {self._me}
                       | ({"assistant"} if assistant else set()))
        with self._write():
            row = Ob.get_or_none((Ob.id == outbox_id) & (Ob.kind == "create_conversation"))
            if row is None:
                raise StoreError(f"outbox action {outbox_id} is not a conversation create")
            if row.state == OutboxState.SENDING:
                raise StoreError(f"outbox action {outbox_id} is being sent right now")
            payload = {"title": title, "members": [m for m in names if m != "assistant"],
                       "assistant": assistant}
            Ob.update(payload=json.dumps(payload), state=OutboxState.QUEUED, attempts=0,
                      transient_failures=0, next_attempt_at=0, last_error=None,
                      queued_at=now()).where(Ob.id == outbox_id).execute()
            C.update(title=title, members=json.dumps(names), assistant=assistant).where(
                (C.id == row.conversation_id) & (C.pending == True)).execute()  # noqa: E712


__all__ = ["MAX_BODY_BYTES", "OutboxChanges"]

"""The user's answers to an outbox action that waits for them (docs/sync.md, outbox rules
3, 6 and 7, sync rules 3n and 3p): retry, send anyway, discard (its text back into the
draft), and editing a refused conversation create."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from chat_tui.store.cachefile import CacheFile
from chat_tui.store.convert import now
from chat_tui.store.errors import StoreError
from chat_tui.store.outbox import _may_be_on_server
from chat_tui.store.outbox_state import OutboxState


class OutboxAnswers(CacheFile):
    """The user's answers to waiting actions (part of :class:`~chat_tui.store.Cache`).
    Each one is a single ``BEGIN IMMEDIATE`` transaction on the calling thread;
    ``StoreError`` means nothing was changed. Uses ``_rows_for`` and ``_first_blocker`` of
    :class:`~chat_tui.store.outbox_queue.OutboxQueue`, ``_send_becomes_delete`` of
    :class:`~chat_tui.store.outbox.OutboxChanges` and the drafts of
    :class:`~chat_tui.store.ui_state.SavedUIState`."""


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
                waits = blocker is not None and blocker < row.id
                behind = (f"; it waits behind action {blocker}: retry or discard that one"
                          if waits else "")
                state = "blocked" if waits else row.state  # as `outbox_list` names it
                raise StoreError(f"outbox action {outbox_id} is {state}, not failed "
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
                    "read": "the read marker (the server keeps the older one)",
                    "update_conversation": "the change of the conversation's settings "
                                           "(the earlier ones come back)",
                    "regenerate": "the request for a new reply (the earlier reply stays)",
                    "leave_conversation": "leaving the conversation (it comes back in the "
                                          "list)",
                    "add_member": "adding the member (the earlier members come back)",
                    "remove_member": "removing the member (the earlier members come "
                                     "back)"}
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
                if row.kind in ("update_conversation", "add_member", "remove_member"):
                    self._undo_update_conversation(row)
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
            kept = {k: v for k, v in json.loads(row.payload or "{}").items()
                    if k in ("model", "system_prompt") and assistant}
            payload = {"title": title, "members": [m for m in names if m != "assistant"],
                       "assistant": assistant, **kept}
            Ob.update(payload=json.dumps(payload), state=OutboxState.QUEUED, attempts=0,
                      transient_failures=0, next_attempt_at=0, last_error=None,
                      queued_at=now()).where(Ob.id == outbox_id).execute()
            C.update(title=title, members=json.dumps(names), assistant=assistant).where(
                (C.id == row.conversation_id) & (C.pending == True)).execute()  # noqa: E712


__all__ = ["OutboxAnswers"]

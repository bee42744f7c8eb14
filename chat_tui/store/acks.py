"""The drain's bookkeeping in the cache (docs/sync.md, outbox rules 3 to 8): marking an
action ``sending`` before its request, recording how an attempt ended (unreached,
interrupted, transient, permanent, paused), and storing the server's answer in place of
the local state when it succeeded (the ``ack_*`` methods)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from peewee import fn

from chat_tui.store.apply import INSERT_MESSAGE_SQL
from chat_tui.store.cachefile import CacheFile
from chat_tui.store.convert import now as _now
from chat_tui.store.convert import ts
from chat_tui.store.outbox_state import OutboxState
from chat_tui.store.results import ApplyResult, OutboxAction

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.store.records import ConversationRecord, MessageRecord, ReadMarkerRecord

_QUEUED, _SENDING = OutboxState.QUEUED.value, OutboxState.SENDING.value

# mark_next_sending and ack_message run once per message drained: their SQL is written
# once here (sqlite3 caches the prepared statements per connection), not built per call.

#: The conversation's head action when it may be sent now (queued, due, and not a send
#: older than max_queue_age), then the update that marks it. Two statements, not one
#: ``UPDATE ... RETURNING``: RETURNING needs SQLite 3.35, newer than some systems' Python
#: links against.
_NEXT_DUE_HEAD_SQL = f"""
SELECT id, kind, conversation_id, message_id, payload, attempts, transient_failures
  FROM outbox
 WHERE id = (SELECT min(id) FROM outbox WHERE conversation_id = ?)
   AND state = '{_QUEUED}' AND next_attempt_at <= ?
   AND NOT (kind = 'send' AND ? > 0 AND queued_at < ?)
"""
_MARK_SENDING_SQL = f"UPDATE outbox SET state = '{_SENDING}', attempts = attempts + 1 WHERE id = ?"

_CONVERSATION_PK_SQL = "SELECT pk FROM conversation WHERE id = ?"
_OUTBOX_KIND_PAYLOAD_SQL = "SELECT kind, payload FROM outbox WHERE id = ?"
_OUTBOX_DELETE_SQL = "DELETE FROM outbox WHERE id = ?"
_OUTBOX_TO_EDIT_SQL = (
    f"UPDATE outbox SET kind = 'edit', state = '{_QUEUED}', attempts = 0, "
    "transient_failures = 0, next_attempt_at = 0, last_error = NULL, payload = ? WHERE id = ?")
#: Whether any of my actions (send, edit, delete; not a read marker) still acts on it.
_OUTBOX_ACTS_ON_SQL = "SELECT 1 FROM outbox WHERE message_id = ? AND kind != 'read' LIMIT 1"
_MESSAGE_FOR_ACK_SQL = (
    "SELECT pk, version, body, deleted, pending_body, pending_deleted FROM message WHERE id = ?")
_MESSAGE_ACK_FULL_SQL = (
    "UPDATE message SET author = ?, body = ?, created_at = ?, edited_at = ?, seq = ?, "
    "version = ?, deleted = ?, streaming = ?, error = ?, sort_key = ?, model = ?, stopped = ?, "
    "pending_body = ?, pending_deleted = ? WHERE pk = ?")
#: The same without the columns the FTS triggers watch (body, deleted, pending_*).
_MESSAGE_ACK_META_SQL = (
    "UPDATE message SET author = ?, created_at = ?, edited_at = ?, seq = ?, version = ?, "
    "streaming = ?, error = ?, sort_key = ?, model = ?, stopped = ? WHERE pk = ?")
_MESSAGE_PENDING_SQL = "UPDATE message SET pending_body = ?, pending_deleted = ? WHERE id = ?"


class DrainAcks(CacheFile):
    """The write API of the engine's drain (part of :class:`~chat_tui.store.Cache`); each
    method is one write transaction (or joins the caller's :meth:`batch`). Uses ``_rows_for``
    and ``_action`` of :class:`~chat_tui.store.outbox_queue.OutboxQueue` and
    ``_upsert_conversation`` and ``_apply_marker`` of :class:`~chat_tui.store.apply.SyncApply`
    (an answer stores the server's copy the way a sync does)."""

    def auth_failed(self) -> bool:
        """True after a 401 until the next login clears it (outbox rule 3, 401)."""
        return self._get_meta("auth_failed") == "1"

    def set_auth_failed(self, failed: bool) -> None:
        """Remember or clear the 401 pause (survives restarts; ``chat-tui status`` shows it)."""
        with self._write():
            self._set_meta("auth_failed", "1" if failed else "0")

    def requeue_sending(self) -> int:
        """Outbox rule 4: on start every ``sending`` row goes back to ``queued`` (same key).
        Returns how many."""
        Ob = self.m.Outbox
        with self._write():
            return Ob.update(state=OutboxState.QUEUED).where(
                Ob.state == OutboxState.SENDING).execute()

    def mark_sending(self, outbox_id: int) -> OutboxAction | None:
        """Outbox rule 4: mark the action ``sending`` and count the attempt, before the
        request; returns the action as it is now, or None when it changed meanwhile."""
        Ob = self.m.Outbox
        with self._write():
            n = Ob.update(state=OutboxState.SENDING, attempts=Ob.attempts + 1).where(
                (Ob.id == outbox_id) & (Ob.state == OutboxState.QUEUED)).execute()
            if not n:
                return None
            return self._action(Ob.get_by_id(outbox_id))

    def mark_next_sending(self, conversation_id: str, max_queue_age: float = 0,
                          now: float | None = None) -> OutboxAction | None:
        """Outbox rules 2, 4 and 6: mark the conversation's head action ``sending`` (attempt
        counted) and return it, when it is ``queued``, due at ``now`` (epoch seconds,
        default the clock), and (a send) not older than ``max_queue_age`` seconds (0: no
        limit); else change nothing and return None. A send older than ``max_queue_age``
        is left for :meth:`expire_old` (the drain's next round)."""
        now = _now() if now is None else now
        with self._write():
            row = self.db.execute_sql(_NEXT_DUE_HEAD_SQL, (
                conversation_id, now, max_queue_age, now - max_queue_age)).fetchone()
            if row is None:
                return None
            self.db.execute_sql(_MARK_SENDING_SQL, (row[0],))
        oid, kind, cid, mid, payload, attempts, transient = row
        return OutboxAction(oid, kind, cid, mid, json.loads(payload or "{}"), attempts + 1,
                            transient)

    def record_unreached(self, outbox_id: int, reason: str) -> None:
        """The request never reached the server (connection refused, offline): back to
        ``queued``, the attempt does not count (outbox rule 5)."""
        Ob = self.m.Outbox
        with self._write():
            Ob.update(state=OutboxState.QUEUED, attempts=fn.MAX(Ob.attempts - 1, 0),
                      last_error=reason,
                      ).where((Ob.id == outbox_id) & (Ob.state == OutboxState.SENDING)).execute()

    def record_interrupted(self, outbox_id: int, reason: str) -> None:
        """The request was cut off by the client itself (work offline, stop) with its answer
        unknown: back to ``queued``, the attempt kept, as after a crash (outbox rule 4): it
        may have reached the server, which a later delete or discard must know
        (rules 3 and 7)."""
        Ob = self.m.Outbox
        with self._write():
            Ob.update(state=OutboxState.QUEUED, last_error=reason).where(
                (Ob.id == outbox_id) & (Ob.state == OutboxState.SENDING)).execute()

    def record_transient(self, outbox_id: int, delay: float, reason: str,
                         max_attempts: int) -> str:
        """Outbox rules 3 and 5: a transient failure that reached the server. The action
        stays ``queued`` (same key) until ``now + delay`` seconds, or becomes ``failed`` when
        it used ``max_attempts``. Returns the new state (an :class:`OutboxState`), or
        ``"gone"`` when the action no longer exists."""
        Ob = self.m.Outbox
        with self._write():
            row = Ob.get_or_none(Ob.id == outbox_id)
            if row is None:
                return "gone"
            if row.attempts >= max_attempts:
                Ob.update(state=OutboxState.FAILED,
                          last_error=f"gave up after {row.attempts} attempts: {reason}",
                          ).where(Ob.id == outbox_id).execute()
                return OutboxState.FAILED
            Ob.update(state=OutboxState.QUEUED, transient_failures=Ob.transient_failures + 1,
                      next_attempt_at=_now() + delay, last_error=reason,
                      ).where(Ob.id == outbox_id).execute()
            return OutboxState.QUEUED

    def record_permanent(self, outbox_id: int, reason: str) -> list[str]:
        """Outbox rule 3: a permanent failure: ``failed`` with the server's reason; later
        actions of the conversation are blocked behind it. Returns the ids of the
        messages now blocked in its conversation (``blocked_messages``), for the UI to
        redraw."""
        Ob = self.m.Outbox
        with self._write():
            Ob.update(state=OutboxState.FAILED, last_error=reason).where(
                Ob.id == outbox_id).execute()
            row = Ob.get_or_none(Ob.id == outbox_id)
            return self.blocked_messages(row.conversation_id) if row is not None else []

    def record_paused(self, outbox_id: int, reason: str) -> None:
        """401 or a local error: back to ``queued`` without counting the attempt."""
        self.record_unreached(outbox_id, reason)

    def _finish(self, outbox_id: int, message_id: str | None) -> None:
        """Remove a done action; when no other action acts on ``message_id`` any more, its
        pending edit or delete ends. In the caller's transaction."""
        Ob, M = self.m.Outbox, self.m.Message
        Ob.delete().where(Ob.id == outbox_id).execute()
        if message_id and not self._rows_for(message_id):
            M.update(pending_body=None, pending_deleted=False).where(
                M.id == message_id).execute()

    def ack_message(self, outbox_id: int, message: MessageRecord) -> ApplyResult:
        """Outbox rules 4 and 8: in one transaction, store the server's copy of the message
        in place of the local echo (same id, position by server seq; last-write-wins on
        ``version``, sync rule S3) and remove the action. Used for send, edit and delete
        answers.

        A send answered with a body other than the one sent (the server already had this
        idempotency key with the text before an edit rewrote the queued send: docs/api.md,
        PUT message, "the client follows up with a PATCH") is not finished: the same
        outbox row, still the head of its conversation, becomes that edit (outbox rule 7;
        docs/reliability.md).

        Runs once per message drained, so it is written in SQL prepared once (sqlite3
        caches the statements per connection) and writes the message row at most once:
        the server's fields and the end of my pending edit/delete in one ``UPDATE``, which
        leaves out the indexed columns when what the user sees does not change (the FTS
        triggers then have nothing to do). Building the Peewee queries costs more than
        running them (benchmarks/NOTES.md)."""
        res = ApplyResult()
        cid, mid = message.conversation_id, message.id
        db = self.db
        with self._write():
            ob = db.execute_sql(_OUTBOX_KIND_PAYLOAD_SQL, (outbox_id,)).fetchone()
            sent = json.loads(ob[1] or "{}").get("body") if ob is not None else None
            old = db.execute_sql(_MESSAGE_FOR_ACK_SQL, (mid,)).fetchone()
            fields = (message.author, message.body, ts(message.created_at),
                      ts(message.edited_at), message.seq, message.version,
                      int(message.deleted), int(message.streaming), int(message.error),
                      message.seq, message.model, int(message.stopped))
            rewrite = (ob is not None and ob[0] == "send" and not message.deleted
                       and sent is not None and sent != message.body)
            if rewrite:
                # Outbox rule 7: the answer's body is older than the one sent: the action
                # becomes the follow-up edit; the echo shows the sent text on top.
                db.execute_sql(_OUTBOX_TO_EDIT_SQL, (
                    json.dumps({"body": sent, "base_version": message.version}), outbox_id))
            else:
                db.execute_sql(_OUTBOX_DELETE_SQL, (outbox_id,))
            if old is None:  # (a row held is in a cached conversation: no stub needed)
                if db.execute_sql(_CONVERSATION_PK_SQL, (cid,)).fetchone() is None:
                    self._ensure_conversation_stub(cid)
                db.execute_sql(INSERT_MESSAGE_SQL, (mid, cid) + fields)
                res.added += 1
                if rewrite:  # (a new row has no pending edit or delete to end)
                    db.execute_sql(_MESSAGE_PENDING_SQL, (sent, 0, mid))
            else:
                pk, version, body, deleted, p_body, p_deleted = old
                newer = version is None or message.version > version
                if rewrite:
                    p_new = (sent, p_deleted)
                elif db.execute_sql(_OUTBOX_ACTS_ON_SQL, (mid,)).fetchone() is None:
                    p_new = (None, 0)  # no action of mine left on it: nothing pending
                else:
                    p_new = (p_body, p_deleted)
                pending_same = p_new[0] == p_body and bool(p_new[1]) == bool(p_deleted)
                if newer:
                    if (pending_same and body == message.body
                            and bool(deleted) == bool(message.deleted)):
                        # What the user sees (and the index holds) is unchanged.
                        db.execute_sql(_MESSAGE_ACK_META_SQL, (
                            fields[0],) + fields[2:6] + fields[7:] + (pk,))
                    else:
                        db.execute_sql(_MESSAGE_ACK_FULL_SQL, fields + p_new + (pk,))
                elif not pending_same:
                    db.execute_sql(_MESSAGE_PENDING_SQL, p_new + (mid,))
            res.touch(cid, mid)
        return res

    def ack_conversation(self, outbox_id: int, conversation: ConversationRecord) -> ApplyResult:
        """The server created (or already had) the conversation: store its copy, remove the
        action (outbox rule 2)."""
        res = ApplyResult()
        with self._write():
            self._upsert_conversation(conversation, res)
            self._finish(outbox_id, None)
        return res

    def ack_read(self, outbox_id: int, marker: ReadMarkerRecord) -> ApplyResult:
        """Cache the read marker in force and remove the action."""
        res = ApplyResult()
        with self._write():
            self._apply_marker(marker, res)
            self._finish(outbox_id, None)
        return res

    def ack_nothing_to_delete(self, outbox_id: int, message_id: str) -> ApplyResult:
        """A delete answered ``404``: the server never had the message (a send that never
        got through was deleted). Remove the action and the local echo (outbox rule 7)."""
        res = ApplyResult()
        M = self.m.Message
        with self._write():
            row = M.get_or_none(M.id == message_id)
            self._finish(outbox_id, None)
            if row is not None and row.seq is None and not self._rows_for(message_id):
                M.delete().where(M.id == message_id).execute()
                res.touch(self._cid(row), message_id)
        return res

    def drop_action(self, outbox_id: int) -> None:
        """Remove an action that has nothing left to do (for example a read marker of a
        message the server does not know)."""
        with self._write():
            self._finish(outbox_id, None)


__all__ = ["DrainAcks"]

"""Messages and read markers: pages, send, edit, delete, read (docs/api.md,
``GET …/messages``, ``PUT …/messages/{mid}``, ``PATCH`` and ``DELETE /v1/messages/{mid}``,
``POST …/read``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from peewee import Database

from chat_tui.server import pgbus
from chat_tui.server.data import shape
from chat_tui.server.data.base import Names, Principal, Repository, Write, member_where
from chat_tui.server.data.deltas import sql
from chat_tui.server.db import (
    bump_counter,
    current_origin,
    is_sqlite,
    read_transaction,
    utcnow,
    wake_on_commit,
    write_transaction,
)
from chat_tui.server.errors import ApiError, conflict, forbidden, not_found
from chat_tui.server.models import CHANGE_COUNTER, Conversation, Member, Message
from chat_tui.wire.limits import body_size_error
from chat_tui.wire.models import Message as WireMessage
from chat_tui.wire.models import MessagesPage

#: User ids a wake-up notice of the one-round-trip send carries at most: ids are
#: server-made UUIDs (36 ASCII characters and a space each), so a notice stays within
#: ``pgbus.MAX_PAYLOAD_BYTES`` with its head (kind, process id, origin device).
NOTICE_IDS = (pgbus.MAX_PAYLOAD_BYTES - 80) // 37


def check_body(body: str) -> None:
    """Enforce the message body limit, 1..65,536 UTF-8 bytes (docs/api.md).

    Raises ApiError 413 when longer, 422 when empty.
    """
    error = body_size_error(body)
    if error is not None:
        raise ApiError(*error)


class Messages(Repository):
    """The messages of the conversations and the members' read markers."""

    def __init__(self, db: Database, names: Names) -> None:
        super().__init__(db, names)
        # The send's statements, written once (no ORM on the send path; the drivers keep
        # each prepared per connection).
        self._member_sql = sql(db, (
            "SELECT 1 FROM member WHERE conversation_id = ? AND user_id = ?"))
        self._existing_sql = sql(db, (
            f"SELECT {shape.MESSAGE_COLUMNS} FROM message WHERE id = ?"))
        self._bump_sql = sql(db, (
            'UPDATE counter SET "value" = "value" + 1 WHERE name = ? RETURNING "value"'))
        self._conversation_sql = sql(db, (
            "UPDATE conversation SET message_count = message_count + 1, last_seq = ?, "
            "updated_at = ? WHERE id = ? RETURNING assistant, model, system_prompt"))
        self._insert_sql = sql(db, (
            "INSERT INTO message (id, conversation_id, author_id, body, created_at, seq, "
            "change_seq, version, deleted, streaming, error, stopped, ask_model, "
            "ask_system_prompt) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)"))
        self._stamp_sql = sql(db, (
            "UPDATE member SET change_seq = ? WHERE conversation_id = ? RETURNING user_id"))
        #: Sends written by the one-round-trip statement (PostgreSQL; tests, logs).
        self.one_statement_sends = 0
        #: User ids one wake-up notice of that statement carries at most.
        self.notice_ids = NOTICE_IDS

    def _rows(self, text: str, params: Sequence[Any]) -> list[tuple]:
        return self.db.execute_sql(text, params).fetchall()

    def page(self, p: Principal, cid: str, before: str | None, limit: int) -> MessagesPage:
        """docs/api.md ``GET …/messages``: the ``limit`` messages before message
        ``before`` (the newest when None), ascending by ``seq``, tombstones included.

        Raises ApiError 404 when the caller is not a member or ``before`` is not a message
        of ``cid``.
        """
        with read_transaction(self.db):
            self.membership(p.user_id, cid)
            query = Message.select().where(Message.conversation == cid)
            if before is not None:
                anchor = Message.get_or_none((Message.id == before) & (Message.conversation == cid))
                if anchor is None:
                    raise not_found("message `before` not found in this conversation")
                query = query.where(Message.seq < anchor.seq)
            rows = list(query.order_by(Message.seq.desc()).limit(limit + 1))
            has_more = len(rows) > limit
            rows = rows[:limit]
            rows.reverse()
            total = Conversation.get_by_id(cid).message_count
            return MessagesPage.construct(
                messages=tuple(shape.message(m, self.names) for m in rows),
                has_more=has_more,
                total_count=total,
            )

    def put(self, p: Principal, cid: str, mid: str, body: str) -> Write:
        """docs/api.md ``PUT …/messages/{mid}``: send (``created``); a repeat of ``mid`` by
        its author in the same conversation gives the stored message unchanged.

        Six statements, written by hand (the hot path of every send): the membership, the
        id's use, the change counter, the conversation (its count, last message and time,
        read back with the settings a reply to this message is written with), the message,
        and every member's change stamp (read back as the users to wake). The same rows as
        :meth:`put_reference`, which the tests compare it with.

        Raises ApiError 413/422 (body size), 404 (not a member), 409 (``mid`` used by
        another user or in another conversation).
        """
        check_body(body)
        if not is_sqlite(self.db) and not self.db.in_transaction():
            written = self._put_one_round_trip(p, cid, mid, body)
            if written is not None:
                return written
        with write_transaction(self.db):
            if not self._rows(self._member_sql, (cid, p.user_id)):
                raise not_found("conversation not found")
            existing = self._rows(self._existing_sql, (mid,))
            if existing:
                row = existing[0]
                if row[2] == p.user_id and row[1] == cid:
                    return Write(shape.message_row(row, self.names))
                raise conflict("this message id is already used by another message")
            [(seq,)] = self._rows(self._bump_sql, (CHANGE_COUNTER,))
            now = utcnow()
            [(assistant, model, system_prompt)] = self._rows(
                self._conversation_sql, (seq, now, cid))
            # The reply to it is written with the settings in force now, whatever changes
            # after (docs/api.md, PATCH /v1/conversations/{cid}).
            self.db.execute_sql(self._insert_sql, (
                mid, cid, p.user_id, body, now, seq, seq, False, False, False, False,
                model if assistant else None, system_prompt if assistant else None))
            affected = {uid for (uid,) in self._rows(self._stamp_sql, (seq, cid))}
            wake_on_commit(affected)
            return self._sent(p, cid, mid, body, now, seq, affected, assistant)

    def _put_one_round_trip(self, p: Principal, cid: str, mid: str, body: str) -> Write | None:
        """:meth:`put` on PostgreSQL in one round trip, when the caller is a member and
        ``mid`` is new (else None, nothing written: :meth:`put` then answers the repeat
        or the error).

        One query string of two statements, which PostgreSQL runs as one transaction:
        the change counter's row locked (``FOR UPDATE``, as every writer does,
        :func:`~chat_tui.server.db.write_transaction`), then one statement whose
        snapshot is taken after that lock, so it sees every write committed before:
        the membership and the id's use checked, and the writes of :meth:`put` (counter,
        conversation, message, every member's stamp) with the wake-up notices
        (:mod:`chat_tui.server.pgbus`: this process, the caller's device as the origin,
        the members' ids sorted, at most ``notice_ids`` a notice) sent with
        ``pg_notify`` inside it, so they are delivered with the commit. The write lock is
        held for the statement alone, not for a round trip per statement. The message's
        time is read in that statement, under the lock, as every writer reads it after
        taking the lock: times follow the counter. It is the database server's clock
        (UTC), which every process on the database shares.
        """
        origin = current_origin()
        head = f"{pgbus.WAKE} {pgbus.process_id()} {origin or '-'}"
        rows = self._rows(self._one_round_trip_sql, {
            "counter": CHANGE_COUNTER, "cid": cid, "uid": p.user_id, "mid": mid,
            "body": body, "channel": pgbus.CHANNEL, "head": head,
            "per_notice": self.notice_ids})
        if not rows:
            return None
        [(seq, now, assistant, members, _notices, _inserted)] = rows
        affected = set(members)
        self.one_statement_sends += 1
        return self._sent(p, cid, mid, body, now, seq, affected, assistant)

    def _sent(self, p: Principal, cid: str, mid: str, body: str, now: datetime, seq: int,
              affected: set[str], assistant: bool) -> Write:
        """The :class:`Write` of a new message ``mid`` of ``p`` in ``cid`` written at
        ``now`` (change ``seq``), waking ``affected``; with an assistant reply job when
        ``assistant``."""
        msg = WireMessage.construct(
            id=mid, conversation_id=cid, author=self.names.of(p.user_id), body=body,
            created_at=now, edited_at=None, seq=seq, version=1, deleted=False,
            streaming=False, error=False, model=None, stopped=False)
        job = (cid, mid) if assistant else None
        return Write(msg, created=True, affected=affected, assistant_job=job)

    #: The query of :meth:`_put_one_round_trip` (PostgreSQL, named parameters).
    _one_round_trip_sql = """
SELECT 1 FROM counter WHERE name = %(counter)s FOR UPDATE;
WITH clock AS MATERIALIZED (
  SELECT (clock_timestamp() AT TIME ZONE 'UTC')::timestamp AS now
), go AS (
  SELECT 1 WHERE EXISTS (SELECT 1 FROM member
                         WHERE conversation_id = %(cid)s AND user_id = %(uid)s)
         AND NOT EXISTS (SELECT 1 FROM message WHERE id = %(mid)s)
), bump AS (
  UPDATE counter SET "value" = "value" + 1
  WHERE name = %(counter)s AND EXISTS (SELECT 1 FROM go) RETURNING "value"
), conv AS (
  UPDATE conversation SET message_count = message_count + 1, last_seq = bump."value",
    updated_at = clock.now
  FROM bump, clock WHERE id = %(cid)s RETURNING assistant, model, system_prompt
), ins AS (
  INSERT INTO message (id, conversation_id, author_id, body, created_at, seq, change_seq,
    version, deleted, streaming, error, stopped, ask_model, ask_system_prompt)
  SELECT %(mid)s, %(cid)s, %(uid)s, %(body)s, clock.now, bump."value", bump."value", 1,
    false, false, false, false,
    CASE WHEN conv.assistant THEN conv.model END,
    CASE WHEN conv.assistant THEN conv.system_prompt END
  FROM bump, conv, clock
  RETURNING 1
), stamp AS (
  UPDATE member SET change_seq = bump."value" FROM bump
  WHERE conversation_id = %(cid)s RETURNING user_id
), notices AS (
  SELECT pg_notify(%(channel)s, %(head)s || ' ' || string_agg(user_id, ' ' ORDER BY user_id))
  FROM (SELECT user_id, (row_number() OVER (ORDER BY user_id) - 1) / %(per_notice)s AS part
        FROM stamp) AS numbered
  GROUP BY part
)
SELECT bump."value", clock.now, conv.assistant,
  (SELECT array_agg(user_id) FROM stamp),
  (SELECT count(*) FROM notices), (SELECT count(*) FROM ins)
FROM bump, conv, clock"""

    def put_reference(self, p: Principal, cid: str, mid: str, body: str) -> Write:
        """:meth:`put` through the ORM: the reference its tests compare it with. Same
        answers, same rows, same errors.

        Raises ApiError 413/422 (body size), 404 (not a member), 409 (``mid`` used by
        another user or in another conversation).
        """
        check_body(body)
        with write_transaction(self.db):
            self.membership(p.user_id, cid)
            existing = Message.get_or_none(Message.id == mid)
            if existing is not None:
                if existing.author_id == p.user_id and existing.conversation_id == cid:
                    return Write(shape.message(existing, self.names))
                raise conflict("this message id is already used by another message")
            conv = Conversation.get_by_id(cid)
            msg, affected = self.append_message(
                cid, id=mid, author=p.user_id, body=body,
                # The reply to it is written with the settings in force now, whatever
                # changes after (docs/api.md, PATCH /v1/conversations/{cid}).
                ask_model=conv.model if conv.assistant else None,
                ask_system_prompt=conv.system_prompt if conv.assistant else None,
            )
            job = (cid, mid) if conv.assistant else None
            return Write(
                shape.message(msg, self.names), created=True, affected=affected,
                assistant_job=job,
            )

    def _own_message(self, p: Principal, mid: str) -> Message:
        msg = self.member_message(p.user_id, mid)
        if msg.author_id != p.user_id:
            raise forbidden("only the author can edit or delete a message")
        return msg

    def edit(self, p: Principal, mid: str, body: str) -> Write:
        """docs/api.md ``PATCH /v1/messages/{mid}``: set the body, ``edited_at`` and a new
        ``version``; the same body again leaves the message unchanged.

        Raises ApiError 413/422 (body size), 404 (unknown or not a member), 403 (another
        member's message), 409 (a tombstone).
        """
        check_body(body)
        with write_transaction(self.db):
            msg = self._own_message(p, mid)
            if msg.deleted:
                raise conflict("the message was deleted; a tombstone cannot be edited")
            if msg.body == body:
                return Write(shape.message(msg, self.names))
            now = utcnow()
            affected = self.rewrite_message(msg, now, body=body, edited_at=now)
            return Write(shape.message(msg, self.names), affected=affected)

    def delete(self, p: Principal, mid: str) -> Write:
        """docs/api.md ``DELETE /v1/messages/{mid}``: leave a tombstone (empty body, not
        streaming, a new ``version``); deleting a tombstone leaves it unchanged.

        Raises ApiError 404 (unknown or not a member), 403 (another member's message).
        """
        with write_transaction(self.db):
            msg = self._own_message(p, mid)
            if msg.deleted:
                return Write(shape.message(msg, self.names))
            affected = self.rewrite_message(
                msg, utcnow(), body="", deleted=True, streaming=False
            )
            return Write(shape.message(msg, self.names), affected=affected)

    def mark_read(self, p: Principal, cid: str, message_id: str) -> Write:
        """docs/api.md ``POST …/read``: move the caller's read marker forward to
        ``message_id``, never back; the value is the marker in force.

        Raises ApiError 404 (not a member, or not a message of ``cid``).
        """
        with write_transaction(self.db):
            member = self.membership(p.user_id, cid)
            msg = Message.get_or_none((Message.id == message_id) & (Message.conversation == cid))
            if msg is None:
                raise not_found("message not found in this conversation")
            if msg.seq <= member.read_seq:
                return Write(shape.read_marker(member, self.names))
            seq = bump_counter()
            Member.update(read_seq=msg.seq, read_message_id=msg.id, read_change_seq=seq).where(
                member_where(cid, p.user_id)
            ).execute()
            affected = self.touch(cid, seq, None)
            member = Member.get(member_where(cid, p.user_id))
            return Write(shape.read_marker(member, self.names), affected=affected)

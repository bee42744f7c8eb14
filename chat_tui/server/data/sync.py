"""The delta sync read (docs/api.md, ``GET /v1/sync``), without the long-poll wait,
which the route does.

A read after a cursor is the hot path of every woken long-poll. It is written for that:
hand-written SQL (no ORM) and the conversations from
:class:`~chat_tui.server.data.deltas.DeltaCache`, read and shaped once per change for
every member's devices. It first tries one statement, which is one database snapshot by
itself (no transaction, one round trip): the cursor, the caller's conversations changed
after ``since`` with their stamps and read positions, and the conversations it left.
When every changed conversation's snapshot at its stamp is already in the cache and
answers the caller's cursor, that is the whole read: the snapshot of a stamp is the
conversation as every database snapshot holding that stamp sees it (the change-stamp
rule, :mod:`~chat_tui.server.data.deltas`). Otherwise (a snapshot to build, an unread
count or messages older than a snapshot's tail, a conversation left) the read runs again
in a read transaction, where the missing parts are read. An initial sync (no cursor)
reads through the ORM (:meth:`Sync.read_reference`), which is also the reference the
fast path is tested against.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from peewee import Database, chunked

from chat_tui.server.data import shape
from chat_tui.server.data.base import Names, Principal, Repository
from chat_tui.server.data.conversations import Conversations
from chat_tui.server.data.deltas import ConversationDelta, DeltaCache, sql
from chat_tui.server.db import current_cursor, read_transaction
from chat_tui.server.errors import cursor_expired
from chat_tui.server.models import CHANGE_COUNTER, Conversation, Departure, Member, Message
from chat_tui.wire.limits import SYNC_PAGE
from chat_tui.wire.models import Conversation as ConversationView
from chat_tui.wire.models import Message as WireMessage
from chat_tui.wire.models import SyncConversation, SyncResponse

#: Longest ``since`` the server parses (digits); longer ones are unknown cursors.
MAX_CURSOR_DIGITS = 18


def parse_cursor(since: str) -> int:
    """A ``since`` value as the change counter it names.

    Raises ApiError 410 ``cursor_expired`` when it is not a counter of this server's form.
    """
    if not (since.isascii() and since.isdigit()) or len(since) > MAX_CURSOR_DIGITS:
        raise cursor_expired()
    return int(since)


def empty_answer(since: int) -> SyncResponse:
    """The answer of a long-poll that ends with nothing new: the same ``cursor``."""
    return SyncResponse.construct(
        cursor=str(since), initial=False, conversations=(), read_markers=()
    )


def _answer(cursor: int, since: int,
            parts: list[tuple[ConversationDelta, int, tuple[tuple[WireMessage, ...], bool]]],
            removed: list[SyncConversation]) -> SyncResponse:
    """The answer after ``since`` at ``cursor``: per changed conversation its snapshot,
    the caller's unread count and its ``(messages, limited)``, newest conversation first,
    then the ``removed`` entries; the read markers that moved after ``since``."""
    parts = sorted(parts, key=lambda part: part[0].order, reverse=True)
    entries = [
        SyncConversation.construct(
            conversation=ConversationView.construct(**snapshot.fields, unread_count=unread),
            messages=messages, limited=limited, removed=False)
        for snapshot, unread, (messages, limited) in parts
    ]
    markers = [marker for snapshot, _, _ in parts for marker in snapshot.markers_after(since)]
    return SyncResponse.construct(
        cursor=str(cursor),
        initial=False,
        conversations=(*entries, *removed),
        read_markers=tuple(markers),
    )


class Sync(Repository):
    """What changed for a caller after a cursor; ``deltas`` is the shared snapshot cache."""

    def __init__(self, db: Database, names: Names, conversations: Conversations) -> None:
        super().__init__(db, names)
        self.conversations = conversations
        self.deltas = DeltaCache(db, names)
        self._cursor_sql = sql(db, 'SELECT "value" FROM counter WHERE name = ?')
        self._changed_sql = sql(db, (
            "SELECT conversation_id, change_seq, read_seq FROM member "
            "WHERE user_id = ? AND change_seq > ? AND change_seq <= ?"))
        self._unread_sql = sql(db, (
            "SELECT COUNT(*) FROM message WHERE conversation_id = ? AND seq > ? "
            "AND author_id <> ? AND NOT deleted"))
        self._created_sql = sql(db, (
            f"SELECT {shape.MESSAGE_COLUMNS} FROM message WHERE conversation_id = ? "
            f"AND seq > ? ORDER BY seq DESC LIMIT {SYNC_PAGE + 1}"))
        self._edited_sql = sql(db, (
            f"SELECT {shape.MESSAGE_COLUMNS} FROM message WHERE conversation_id = ? "
            "AND change_seq > ? AND seq <= ?"))
        self._departed_sql = sql(db, (
            "SELECT conversation_id FROM departure "
            "WHERE user_id = ? AND change_seq > ? AND change_seq <= ?"))
        # One statement, one snapshot: the cursor (kind 0), the caller's changed
        # conversations (1) and the ones it left (2). No bound at the cursor is needed:
        # a stamp is written in the transaction that moves the counter to it.
        self._changes_sql = sql(db, (
            'SELECT 0, NULL, "value", NULL FROM counter WHERE name = ? '
            "UNION ALL SELECT 1, conversation_id, change_seq, read_seq FROM member "
            "WHERE user_id = ? AND change_seq > ? "
            "UNION ALL SELECT 2, conversation_id, change_seq, NULL FROM departure "
            "WHERE user_id = ? AND change_seq > ?"))
        #: Reads answered by the one statement / by the read transaction (tests, logs).
        self.one_statement_reads = 0
        self.transaction_reads = 0

    def _rows(self, text: str, params: Sequence[Any]) -> list[tuple]:
        return self.db.execute_sql(text, params).fetchall()

    def has_changes(self, p: Principal, since: int) -> bool:
        """Whether any conversation of the caller changed after ``since`` (one index probe).

        Raises ApiError 410 when ``since`` is newer than the server's newest cursor.
        """
        self.db.connect(reuse_if_open=True)
        if since > current_cursor():
            raise cursor_expired()
        return (
            Member.select().where((Member.user == p.user_id) & (Member.change_seq > since)).exists()
            or Departure.select()
            .where((Departure.user == p.user_id) & (Departure.change_seq > since))
            .exists()
        )

    def read(self, p: Principal, since: int | None) -> SyncResponse:
        """docs/api.md ``GET /v1/sync``: every conversation of the caller that changed
        after ``since`` (all of them when None) with its changed messages, and the read
        markers that moved; the cursor and the rows are read in one database snapshot
        (one statement with the shared snapshots, else a read transaction: module doc).

        Conversations come newest first (``updated_at``, then id, descending); read
        markers in no particular order.

        Raises ApiError 410 for a cursor newer than the server's.
        """
        if since is None:
            return self.read_reference(p, None)
        self.db.connect(reuse_if_open=True)
        found = self._read_one_statement(p, since)
        if found is not None:
            self.one_statement_reads += 1
            return found
        self.transaction_reads += 1
        with read_transaction(self.db):
            [(cursor,)] = self._rows(self._cursor_sql, (CHANGE_COUNTER,))
            if since > cursor:
                raise cursor_expired()
            changed = self._rows(self._changed_sql, (p.user_id, since, cursor))
            parts = []
            for cid, stamp, read_seq in changed:
                snapshot = self.deltas.get(cid, stamp)
                unread = snapshot.unread_for(p.username, read_seq)
                if unread is None:
                    [(unread,)] = self._rows(self._unread_sql, (cid, read_seq, p.user_id))
                messages = snapshot.messages_after(since)
                if messages is None:
                    messages = self._messages_after(cid, since)
                parts.append((snapshot, unread, messages))
            member_of = {cid for cid, _stamp, _read in changed}
            left = [cid for (cid,) in self._rows(self._departed_sql, (p.user_id, since, cursor))
                    if cid not in member_of]
            removed = self._removed_entries(p, left) if left else []
            return _answer(cursor, since, parts, removed)

    def _read_one_statement(self, p: Principal, since: int) -> SyncResponse | None:
        """:meth:`read` from one statement and the snapshots in the cache; None when it
        needs more (see the module doc). Raises ApiError 410 like :meth:`read`."""
        rows = self._rows(self._changes_sql, (CHANGE_COUNTER, p.user_id, since, p.user_id,
                                              since))
        cursor = None
        changed = []
        member_of = set()
        left = False
        for kind, cid, seq, read_seq in rows:
            if kind == 0:
                cursor = seq
            elif kind == 1:
                changed.append((cid, seq, read_seq))
                member_of.add(cid)
            else:
                left = True
        if cursor is None:  # no counter row: the transaction's read says what is wrong
            return None
        if since > cursor:
            raise cursor_expired()
        if left and any(cid not in member_of for kind, cid, *_ in rows if kind == 2):
            return None  # a removed entry: the conversation as it is now, read in it
        parts = []
        for cid, stamp, read_seq in changed:
            snapshot = self.deltas.cached(cid, stamp)
            if snapshot is None:
                return None
            unread = snapshot.unread_for(p.username, read_seq)
            messages = snapshot.messages_after(since)
            if unread is None or messages is None:
                return None
            parts.append((snapshot, unread, messages))
        return _answer(cursor, since, parts, [])

    def _messages_after(self, cid: str, since: int) -> tuple[tuple[WireMessage, ...], bool]:
        """The ``messages`` and ``limited`` of a sync entry of ``cid`` after ``since``,
        from the database (a cursor older than its snapshot's tail): the newest
        :data:`SYNC_PAGE` created after ``since``, plus every older message changed after
        it, ascending by ``seq``."""
        created = self._rows(self._created_sql, (cid, since))
        limited = len(created) > SYNC_PAGE
        rows = {r[0]: r for r in created[:SYNC_PAGE]}
        for r in self._rows(self._edited_sql, (cid, since, since)):
            rows[r[0]] = r
        ordered = sorted(rows.values(), key=lambda r: r[6])
        return tuple(shape.message_row(r, self.names) for r in ordered), limited

    def read_reference(self, p: Principal, since: int | None) -> SyncResponse:
        """:meth:`read` through the ORM, every conversation read and shaped for this
        caller alone: the initial sync's path, and the reference of the fast path's
        tests. Same answer, same errors."""
        with read_transaction(self.db):
            cursor = current_cursor()
            if since is not None and since > cursor:
                raise cursor_expired()
            members = Member.select(Member.conversation).where(Member.user == p.user_id)
            if since is not None:
                members = members.where((Member.change_seq > since) & (Member.change_seq <= cursor))
            cids = [cid for (cid,) in members.tuples()]
            convs = []
            for batch in chunked(cids, 500):
                convs.extend(Conversation.select().where(Conversation.id.in_(batch)))
            convs.sort(key=lambda c: (c.updated_at, c.id), reverse=True)
            views = self.conversations.views(p.user_id, convs)
            entries = []
            for conv, view in zip(convs, views, strict=True):
                messages, limited = self._messages(conv.id, since, cursor)
                entries.append(
                    SyncConversation.construct(
                        conversation=view,
                        messages=tuple(shape.message(m, self.names) for m in messages),
                        limited=limited,
                        removed=False,
                    )
                )
            entries.extend(self._departures(p, since, cursor, set(cids)))
            markers = []
            for batch in chunked(cids, 500):
                query = Member.select().where(
                    Member.conversation.in_(batch) & Member.read_message_id.is_null(False)
                )
                if since is not None:
                    query = query.where(
                        (Member.read_change_seq > since) & (Member.read_change_seq <= cursor)
                    )
                markers.extend(shape.read_marker(m, self.names) for m in query)
            return SyncResponse.construct(
                cursor=str(cursor),
                initial=since is None,
                conversations=tuple(entries),
                read_markers=tuple(markers),
            )

    def _departures(
        self, p: Principal, since: int | None, cursor: int, member_of: set[str]
    ) -> list[SyncConversation]:
        """``removed`` entries for the conversations the caller left, or was removed from,
        after ``since`` and not rejoined (none in an initial sync, docs/api.md
        ``/v1/sync``); ``member_of`` are the conversations it is in that changed."""
        if since is None:
            return []
        left = [
            cid
            for (cid,) in Departure.select(Departure.conversation)
            .where(
                (Departure.user == p.user_id)
                & (Departure.change_seq > since)
                & (Departure.change_seq <= cursor)
            )
            .tuples()
            if cid not in member_of
        ]
        return self._removed_entries(p, left)

    def _removed_entries(self, p: Principal, left: list[str]) -> list[SyncConversation]:
        """The ``removed: true`` entries of the conversations ``left`` (ids) as the caller
        sees them, newest first like the other entries; shared by both reads."""
        convs = []
        for batch in chunked(left, 500):
            convs.extend(Conversation.select().where(Conversation.id.in_(batch)))
        convs.sort(key=lambda c: (c.updated_at, c.id), reverse=True)
        return [
            SyncConversation.construct(conversation=view, messages=(), limited=False, removed=True)
            for view in self.conversations.views(p.user_id, convs)
        ]

    def _messages(self, cid: str, since: int | None, cursor: int) -> tuple[list[Message], bool]:
        """Messages of ``cid`` for a sync after ``since`` and whether it is ``limited``:
        the newest :data:`SYNC_PAGE` created after ``since``, plus every edit or tombstone
        of an older message (docs/api.md, ``GET /v1/sync``)."""
        low = since if since is not None else 0
        created = list(
            Message.select()
            .where((Message.conversation == cid) & (Message.seq > low) & (Message.seq <= cursor))
            .order_by(Message.seq.desc())
            .limit(SYNC_PAGE + 1)
        )
        limited = len(created) > SYNC_PAGE
        created = created[:SYNC_PAGE]
        result = {m.id: m for m in created}
        if since is not None:
            for m in Message.select().where(
                (Message.conversation == cid)
                & (Message.change_seq > since)
                & (Message.change_seq <= cursor)
                & (Message.seq <= since)
            ):
                result[m.id] = m
        return sorted(result.values(), key=lambda m: m.seq), limited

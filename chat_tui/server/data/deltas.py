"""Shared conversation snapshots for the delta sync (docs/api.md, ``GET /v1/sync``).

When a change wakes the long-polls of a conversation's members, every woken device reads
the same conversation in the same state. :class:`DeltaCache` reads and shapes that state
once, as a :class:`ConversationDelta`, and hands it to every device that asks; each
device's own cursor still decides what it gets (:meth:`ConversationDelta.messages_after`,
:meth:`ConversationDelta.markers_after`), and its unread count is its own.

A snapshot is keyed by ``(conversation id, stamp)``, the stamp being the caller's
``Member.change_seq`` of that conversation in its read transaction. The key is sound
because of the change-stamp rule of the server's writers (``chat_tui.server.models``):
every transaction that changes anything of a conversation (its row, its messages, a
member's read marker, its members) stamps every member's ``change_seq`` with the
transaction's change counter value; a member who leaves or is removed gets a
``departure`` row instead and reads no snapshot of it again. So in every database
snapshot where a member's stamp of a conversation is ``S``, the conversation's last change is the one at
``S``, and its rows are the same. Stamps come from the database, so the rule holds
whichever process made the change.

The SQL is written once per database (no ORM on this path; ``sqlite3`` keeps each
statement prepared per connection). Thread safe: the cache is shared by the worker
threads of the server; a snapshot is immutable once built, and one conversation's
snapshot is built by one thread at a time (the others wait for it).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from peewee import Database

from chat_tui.server.data import shape
from chat_tui.server.data.base import Names, as_utc
from chat_tui.wire.limits import SYNC_PAGE
from chat_tui.wire.models import Message, ReadMarker

#: Messages a snapshot holds: the conversation's most recently changed ones. A cursor
#: older than the oldest change among them is answered by an exact query instead.
TAIL_ROWS = 64
#: Snapshots kept at most (least recently used ones go first).
MAX_SNAPSHOTS = 10_000
#: Approximate bytes of message text and objects the snapshots may hold together.
MAX_BYTES = 32 * 1024 * 1024
#: Per-snapshot bookkeeping counted against :data:`MAX_BYTES` besides message bodies.
_OVERHEAD = 400


def sql(db: Database, text: str) -> str:
    """``text`` written with ``?`` placeholders, in the placeholder style of ``db``."""
    return text if db.param == "?" else text.replace("?", db.param)


@dataclass(frozen=True)
class ConversationDelta:
    """One conversation at one stamp, shaped for sync answers.

    ``fields``: the Conversation object's fields except ``unread_count`` (docs/api.md,
    Conversation); ``order``: the answer's sort key ``(updated_at, id)``; ``tail``: the
    messages whose ``change_seq`` is above ``low`` as ``(change_seq, Message)``, ascending
    by ``seq`` (every such message: ``low`` is -1 when the tail holds the whole
    conversation); ``markers``: every read marker set, as ``(read_change_seq,
    ReadMarker)``; ``size``: approximate bytes held.
    """

    cid: str
    stamp: int
    fields: dict[str, Any]
    order: tuple[Any, str]
    low: int
    tail: tuple[tuple[int, Message], ...]
    markers: tuple[tuple[int, ReadMarker], ...]
    size: int

    def messages_after(self, since: int) -> tuple[tuple[Message, ...], bool] | None:
        """The ``messages`` and ``limited`` of a sync entry after cursor ``since``
        (docs/api.md, ``GET /v1/sync``): the newest :data:`SYNC_PAGE` messages created
        after ``since`` and every message created at or before it and changed after it,
        ascending by ``seq``; ``limited`` when more were created. None when the snapshot
        cannot tell (``since`` is older than ``low``): the caller queries instead."""
        if since < self.low:
            return None
        changed = [m for cs, m in self.tail if cs > since]
        created = [m for m in changed if m.seq > since]
        limited = len(created) > SYNC_PAGE
        if limited:
            first_kept = created[-SYNC_PAGE].seq
            changed = [m for m in changed if m.seq <= since or m.seq >= first_kept]
        return tuple(changed), limited

    def markers_after(self, since: int) -> list[ReadMarker]:
        """The read markers of the conversation that moved after ``since``."""
        return [marker for rcs, marker in self.markers if rcs > since]

    def unread_for(self, username: str, read_seq: int) -> int | None:
        """docs/api.md, Conversation ``unread_count`` of the member ``username`` whose
        read marker is at ``read_seq``: messages by others after it, tombstones excluded.
        None when the tail does not hold every message after ``read_seq`` (a message
        created after it changed after it too, so that is when ``read_seq < low``): the
        caller counts in the database then."""
        if read_seq < self.low:
            return None
        return sum(1 for _, m in self.tail
                   if m.seq > read_seq and not m.deleted and m.author != username)


class DeltaCache:
    """:class:`ConversationDelta` snapshots, one per conversation (the newest stamp read),
    least recently used evicted past :data:`MAX_SNAPSHOTS` or :data:`MAX_BYTES`."""

    def __init__(self, db: Database, names: Names, *, max_snapshots: int = MAX_SNAPSHOTS,
                 max_bytes: int = MAX_BYTES) -> None:
        self.db = db
        self.names = names
        self.max_snapshots = max_snapshots
        self.max_bytes = max_bytes
        self._snapshots: OrderedDict[str, ConversationDelta] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._building = [threading.Lock() for _ in range(64)]
        #: Snapshots read from the database / handed out from memory (for tests and logs).
        self.built = 0
        self.reused = 0
        self._conversation_sql = sql(db, (
            "SELECT id, title, creator_id, assistant, created_at, updated_at, last_seq, "
            "model, system_prompt "
            "FROM conversation WHERE id = ?"))
        self._members_sql = sql(db, (
            "SELECT user_id, read_message_id, read_seq, read_change_seq "
            "FROM member WHERE conversation_id = ?"))
        self._tail_sql = sql(db, (
            f"SELECT {shape.MESSAGE_COLUMNS}, change_seq FROM message "
            "WHERE conversation_id = ? AND change_seq <= ? "
            f"ORDER BY change_seq DESC LIMIT {TAIL_ROWS + 1}"))
        self._by_seq_sql = sql(db, f"SELECT {shape.MESSAGE_COLUMNS} FROM message WHERE seq = ?")

    def get(self, cid: str, stamp: int) -> ConversationDelta:
        """The snapshot of ``cid`` at ``stamp``; call inside the read transaction in which
        the caller's ``Member.change_seq`` of ``cid`` was read as ``stamp``."""
        found = self._cached(cid, stamp)
        if found is not None:
            return found
        with self._building[hash(cid) % len(self._building)]:
            found = self._cached(cid, stamp)  # another thread built it meanwhile
            if found is not None:
                return found
            snapshot = self._build(cid, stamp)
            self._store(snapshot)
            return snapshot

    def cached(self, cid: str, stamp: int) -> ConversationDelta | None:
        """The snapshot of ``cid`` at ``stamp`` when the cache holds it, else None; when
        another thread is building a snapshot of ``cid``, after that build (the devices
        woken by one change ask at once, and one of them builds). Nothing is read: callable
        outside a transaction."""
        found = self._cached(cid, stamp)
        if found is None:
            with self._building[hash(cid) % len(self._building)]:
                pass  # a build of it under way ends first
            found = self._cached(cid, stamp)
        return found

    def _cached(self, cid: str, stamp: int) -> ConversationDelta | None:
        with self._lock:
            snapshot = self._snapshots.get(cid)
            if snapshot is None or snapshot.stamp != stamp:
                return None
            self._snapshots.move_to_end(cid)
            self.reused += 1
            return snapshot

    def _store(self, snapshot: ConversationDelta) -> None:
        with self._lock:
            old = self._snapshots.get(snapshot.cid)
            if old is not None:
                if old.stamp > snapshot.stamp:
                    return  # a reader of an older database snapshot: keep the newer one
                self._bytes -= old.size
            self._snapshots[snapshot.cid] = snapshot
            self._snapshots.move_to_end(snapshot.cid)
            self._bytes += snapshot.size
            self.built += 1
            while self._snapshots and (len(self._snapshots) > self.max_snapshots
                                       or self._bytes > self.max_bytes):
                _, evicted = self._snapshots.popitem(last=False)
                self._bytes -= evicted.size

    def _rows(self, text: str, params: Sequence[Any]) -> list[tuple]:
        return self.db.execute_sql(text, params).fetchall()

    def _build(self, cid: str, stamp: int) -> ConversationDelta:
        [conv] = self._rows(self._conversation_sql, (cid,))
        (_, title, creator_id, assistant, created_at, updated_at, last_seq, model,
         system_prompt) = conv
        members = self._rows(self._members_sql, (cid,))
        names = self.names.of_many([creator_id, *(uid for uid, *_ in members)])
        rows = self._rows(self._tail_sql, (cid, stamp))
        low = -1
        if len(rows) > TAIL_ROWS:
            low = rows[TAIL_ROWS][-1]
            rows = [r for r in rows[:TAIL_ROWS] if r[-1] > low]
        tail = sorted(((r[-1], shape.message_row(r, self.names)) for r in rows),
                      key=lambda item: item[1].seq)
        last = None
        if last_seq is not None:
            last = next((m for _, m in tail if m.seq == last_seq), None)
            if last is None:
                [row] = self._rows(self._by_seq_sql, (last_seq,))
                last = shape.message_row(row, self.names)
        markers = tuple(
            (rcs, ReadMarker.construct(conversation_id=cid, username=names[uid],
                                       message_id=mid, seq=rseq))
            for uid, mid, rseq, rcs in members if mid is not None)
        updated = as_utc(updated_at)
        fields = {
            "id": cid,
            "title": title,
            "creator": names[creator_id],
            "members": tuple(sorted(names[uid] for uid, *_ in members)),
            "assistant": bool(assistant),
            "created_at": as_utc(created_at),
            "updated_at": updated,
            "last_message": last,
            "model": model,
            "system_prompt": system_prompt,
        }
        size = _OVERHEAD * (1 + len(tail) + len(members)) + sum(
            len(m.body) for _, m in tail) + (len(last.body) if last else 0)
        return ConversationDelta(
            cid=cid, stamp=stamp, fields=fields, order=(updated, cid), low=low,
            tail=tuple(tail), markers=markers, size=size)

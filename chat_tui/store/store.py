"""The account cache: one SQLite file, its read API for the UI and its write API for the
engine (docs/sync.md has the rules each write method implements).

Threading: Peewee keeps one connection per thread. The UI thread reads and runs the small
user actions (one short ``BEGIN IMMEDIATE`` transaction each); the engine runs big work
(sync pages, backfill, retention, migrations) on its single database worker thread. Every
write transaction is ``BEGIN IMMEDIATE`` and every connection has ``busy_timeout``, so two
writers wait for each other instead of failing with "database is locked" (sync rule D1).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peewee import SQL, DatabaseError, SqliteDatabase, fn

from chat_tui.store import migrations
from chat_tui.store.models import (
    CREATED_DAY,
    FTS_SCHEMA,
    FTS_TRIGGERS,
    INDEX_SCHEMA,
    SCHEMA_VERSION,
    build_models,
)
from chat_tui.store.views import (
    LOCAL_ECHO_BASE,
    OUTBOX_STATES,
    ConversationView,
    Draft,
    Gap,
    MessageView,
    OutboxProblem,
    SearchHit,
    SortKey,
    UIState,
)
from chat_tui.wire.limits import MAX_BODY_BYTES

if TYPE_CHECKING:  # the wire models load pydantic, which the first frame does not need
    from chat_tui.store.records import (
        ConversationRecord,
        MessageRecord,
        PageRecord,
        ReadMarkerRecord,
        SyncRecord,
    )

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000
PRAGMAS = [
    ("auto_vacuum", "incremental"),  # only takes effect on a new file (before any table)
    ("journal_mode", "wal"),
    ("foreign_keys", 1),
    ("busy_timeout", BUSY_TIMEOUT_MS),
    ("synchronous", 2),  # FULL: a committed outbox row survives power loss
]


#: Rows (messages, conversations) applied per write transaction by :meth:`Store.apply_sync`:
#: a user action waits at most one such chunk (tens of milliseconds), never a whole
#: response (sync rules S2 and D1).
APPLY_CHUNK_ROWS = 250


#: Messages deleted per retention transaction (sync rule R1; keeps each write short).
RETENTION_CHUNK = 2000

#: :meth:`Store.mark_next_sending`: the conversation's head action when it may be sent now
#: (queued, due, and not a send older than max_queue_age), then the update that marks it.
#: Two statements, not one ``UPDATE ... RETURNING``: RETURNING needs SQLite 3.35, newer
#: than some systems' Python links against.
_NEXT_DUE_HEAD_SQL = """
SELECT id, kind, conversation_id, message_id, payload, attempts, transient_failures
  FROM outbox
 WHERE id = (SELECT min(id) FROM outbox WHERE conversation_id = ?)
   AND state = 'queued' AND next_attempt_at <= ?
   AND NOT (kind = 'send' AND ? > 0 AND queued_at < ?)
"""
_MARK_SENDING_SQL = "UPDATE outbox SET state = 'sending', attempts = attempts + 1 WHERE id = ?"


# Store.ack_message, once per message drained: SQL written once, not built per call.
_CONVERSATION_PK_SQL = "SELECT pk FROM conversation WHERE id = ?"
_OUTBOX_KIND_PAYLOAD_SQL = "SELECT kind, payload FROM outbox WHERE id = ?"
_OUTBOX_DELETE_SQL = "DELETE FROM outbox WHERE id = ?"
_OUTBOX_TO_EDIT_SQL = (
    "UPDATE outbox SET kind = 'edit', state = 'queued', attempts = 0, transient_failures = 0, "
    "next_attempt_at = 0, last_error = NULL, payload = ? WHERE id = ?")
#: Whether any of my actions (send, edit, delete; not a read marker) still acts on it.
_OUTBOX_ACTS_ON_SQL = "SELECT 1 FROM outbox WHERE message_id = ? AND kind != 'read' LIMIT 1"
_MESSAGE_FOR_ACK_SQL = (
    "SELECT pk, version, body, deleted, pending_body, pending_deleted FROM message WHERE id = ?")
_MESSAGE_ACK_FULL_SQL = (
    "UPDATE message SET author = ?, body = ?, created_at = ?, edited_at = ?, seq = ?, "
    "version = ?, deleted = ?, streaming = ?, error = ?, sort_key = ?, pending_body = ?, "
    "pending_deleted = ? WHERE pk = ?")
#: The same without the columns the FTS triggers watch (body, deleted, pending_*).
_MESSAGE_ACK_META_SQL = (
    "UPDATE message SET author = ?, created_at = ?, edited_at = ?, seq = ?, version = ?, "
    "streaming = ?, error = ?, sort_key = ? WHERE pk = ?")
_MESSAGE_PENDING_SQL = "UPDATE message SET pending_body = ?, pending_deleted = ? WHERE id = ?"


class _FairWriteLock:
    """A reentrant lock that hands itself out in arrival order (FIFO).

    Every write transaction of this process on one cache file takes it before ``BEGIN
    IMMEDIATE`` (sync rule D1), so in-process writers queue here instead of spinning in
    SQLite's busy handler. FIFO matters: the sync worker applies a big response chunk after
    chunk, and a plain ``threading.Lock`` released and taken again by the same thread lets it
    cut in front of a waiting user action every time.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self._queue: deque[object] = deque()

    def acquire(self) -> None:
        """Wait (FIFO) until no other thread holds it; reentrant for the holder."""
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return
            ticket = object()
            self._queue.append(ticket)
            while self._owner is not None or self._queue[0] is not ticket:
                self._cond.wait()
            self._queue.popleft()
            self._owner, self._depth = me, 1
            self._cond.notify_all()  # the next ticket re-checks

    def release(self) -> None:
        """Release one level; the next waiter in line gets it when the depth reaches 0."""
        with self._cond:
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._cond.notify_all()


_WRITE_LOCKS: dict[str, _FairWriteLock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock_for(path: Path) -> _FairWriteLock:
    """The process-wide write lock of the cache file at ``path`` (one per real path)."""
    key = os.path.realpath(path)
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(key, _FairWriteLock())


def _may_be_on_server(send: Any) -> bool:
    """Whether an outbox ``send`` row (not in flight) may already be on the server: an
    attempt of it got no answer (a transient failure, or an interruption or a kill while it
    was ``sending``: its attempt is kept, outbox rule 4). A send refused at its only attempt,
    or never tried, is not (outbox rules 3 and 7)."""
    return send.transient_failures > 0 or send.attempts > (1 if send.state == "failed" else 0)


class StoreError(Exception):
    """A local action cannot be done; ``str()`` is a readable reason. Nothing was changed."""


class SchemaTooNew(StoreError):
    """The cache file was written by a newer chat-tui (``PRAGMA user_version`` higher than
    :data:`~chat_tui.store.models.SCHEMA_VERSION`); it is left untouched."""


def _now() -> float:
    return time.time()


def _ts(dt: datetime | None) -> float | None:
    return None if dt is None else dt.timestamp()


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _preview(text: str, width: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


@dataclass
class ApplyResult:
    """What a write changed, for the engine's events: ``conversations`` (set of ids),
    ``messages`` (conversation id -> set of message ids), ``added`` (int, messages new to
    the cache)."""

    conversations: set[str] = field(default_factory=set)
    messages: dict[str, set[str]] = field(default_factory=dict)
    added: int = 0

    def touch(self, cid: str, mid: str | None = None) -> None:
        """Record that conversation ``cid`` changed and, when given, its message ``mid``
        (both ids are str). Never raises."""
        self.conversations.add(cid)
        if mid is not None:
            self.messages.setdefault(cid, set()).add(mid)

    def merge(self, other: ApplyResult) -> ApplyResult:
        """Add ``other``'s conversations, messages and ``added`` count into this result;
        returns ``self`` (for chaining). ``other`` is not changed."""
        self.conversations |= other.conversations
        for cid, mids in other.messages.items():
            self.messages.setdefault(cid, set()).update(mids)
        self.added += other.added
        return self


@dataclass(frozen=True)
class OutboxAction:
    """One outbox row handed to the drain worker (a snapshot, not a live row)."""

    id: int
    kind: str
    conversation_id: str
    message_id: str | None
    payload: dict
    attempts: int
    transient_failures: int


class Store:
    """The cache of one account, in the SQLite file ``path``.

    Create with ``Store(path, me)`` and call :meth:`open` (the engine does it on its worker
    thread: it may migrate). ``me`` is the account's username (docs/api.md).

    Raises (from :meth:`open`):
        SchemaTooNew: the file comes from a newer version.
    """

    def __init__(self, path: Path | str, me: str, *, user_id: str = "", server_url: str = ""):
        self.path = Path(path)
        self._me = me
        self._user_id = user_id
        self._server_url = server_url
        self.db = SqliteDatabase(
            str(self.path), pragmas=PRAGMAS, lock_type="IMMEDIATE", timeout=BUSY_TIMEOUT_MS / 1000
        )
        self.m = build_models(self.db)
        self._wlock = _write_lock_for(self.path)
        #: The thread inside :meth:`batch` (holding the write lock), or None.
        self._batch_owner: int | None = None
        self._opened = False
        #: Set by :meth:`open` when the file was unreadable and replaced (sync rule D4).
        self.recovery: CacheRecovery | None = None
        #: Whether the last open ran the full ``PRAGMA quick_check`` (sync rule D4).
        self.full_check = False

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction (``BEGIN IMMEDIATE``) under the process's write lock of
        this file (sync rule D1); nested calls become savepoints of the outer one, except
        inside :meth:`batch`, whose one transaction they join."""
        self._wlock.acquire()
        try:
            if self._batch_owner == threading.get_ident():
                yield  # inside batch() on this thread: part of its transaction
                return
            with self.db.atomic():
                yield
        finally:
            self._wlock.release()

    # ------------------------------------------------------------------ lifecycle

    @property
    def me(self) -> str:
        """Username of the account (str)."""
        return self._me

    @property
    def is_open(self) -> bool:
        """True once :meth:`open` succeeded."""
        return self._opened

    def open(self) -> None:
        """Create or migrate the file and make it ready. Idempotent.

        Before a migration a copy ``<name>.v<old>.bak`` is written next to the file. Runs
        big work: call it from a worker thread when a UI is running.

        Raises:
            SchemaTooNew: ``PRAGMA user_version`` is newer than this code.
            peewee.DatabaseError: the file is not a SQLite database.
        """
        if self._opened:
            return
        self._wlock.acquire()
        try:
            self._open_locked()
        finally:
            self._wlock.release()

    def _open_locked(self) -> None:
        if self._opened:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._open_file()
            return
        except SchemaTooNew:
            raise
        except (sqlite3.DatabaseError, DatabaseError) as exc:
            reason = str(exc) or type(exc).__name__
        log.error("cache %s is unreadable (%s): moving it aside", self.path, reason)
        self.db.close()
        salvaged = _salvage_outbox(self.path)
        moved = _move_aside(self.path)
        self._open_file()
        recovered = self._requeue_salvaged(salvaged) if salvaged is not None else 0
        self.recovery = CacheRecovery(self.path, moved, reason, salvaged is not None,
                                      recovered)
        log.warning("%s", self.recovery.message)

    def _open_file(self) -> None:
        """Open, create or migrate the file, then ``PRAGMA quick_check`` it (sync rule D4).

        Raises sqlite3.DatabaseError / peewee.DatabaseError when it is not a healthy
        SQLite cache, SchemaTooNew when it is too new."""
        state = self._file_state()  # before any connection makes a WAL file
        version = migrations.read_version(self.path)
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"{self.path} was written by a newer chat-tui (schema v{version}, this one "
                f"knows v{SCHEMA_VERSION}); upgrade chat-tui, or move the file away to start "
                "a fresh cache"
            )
        self.db.connect(reuse_if_open=True)
        if version == 0 and not self.db.get_tables():
            with self._write():
                self.db.create_tables(self.m.all)
                for sql in INDEX_SCHEMA + FTS_SCHEMA + FTS_TRIGGERS:
                    self.db.execute_sql(sql)
                self.db.execute_sql(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version < SCHEMA_VERSION:
            migrations.migrate(self.db, self.path, version, self.m)
        else:
            # The full check reads the whole file (0.7 s warm, 6 s cold for 1,000,000
            # messages): skipped when the file is exactly as a clean close left it.
            self.full_check = state is None or state != self._read_stamp()
            check = self.db.execute_sql(
                "PRAGMA quick_check" if self.full_check else "PRAGMA quick_check(outbox)"
            ).fetchone()[0]
            if check != "ok":
                self.db.close()
                raise DatabaseError(f"quick_check: {check}")
        with self._write():
            for key, value in (("me", self._me), ("user_id", self._user_id),
                               ("server_url", self._server_url)):
                if value:
                    self._set_meta(key, value)
        self._opened = True

    def ensure_open(self) -> None:
        """:meth:`open` unless already open (for headless, synchronous callers)."""
        if not self._opened:
            self.open()

    def relax_durability(self) -> None:
        """Commit with ``synchronous=NORMAL`` on the calling thread's connection (sync rule
        D1a): for the engine's worker, whose writes (server copies, acknowledgements, the
        cursor, attempt counts) can all be fetched or re-sent again with the same key if a
        power loss undoes them. In WAL mode the file stays consistent; the next ``FULL``
        commit (every user action) makes them durable too. Halves the fsyncs of a drain."""
        self.ensure_open()
        self.db.execute_sql("PRAGMA synchronous = NORMAL")

    def close(self) -> None:
        """Close this thread's connection (other threads close their own). When it was the
        last one (SQLite checkpointed and removed the WAL), record the file's size and
        modification time in ``<file>.clean``: the next open skips the full check while
        the file is unchanged (sync rule D4)."""
        if not self.db.is_closed():
            self.db.close()
        if self._opened:
            state = self._file_state()
            if state is not None:
                with contextlib.suppress(OSError):
                    _clean_stamp(self.path).write_text(state, encoding="ascii")

    def _file_state(self) -> str | None:
        """``"<size> <mtime ns>"`` of the file, or None when it is missing or has a WAL
        (open elsewhere, or not closed cleanly)."""
        if Path(str(self.path) + "-wal").exists():
            return None
        try:
            st = self.path.stat()
        except OSError:
            return None
        return f"{st.st_size} {st.st_mtime_ns}"

    def _read_stamp(self) -> str | None:
        try:
            return _clean_stamp(self.path).read_text(encoding="ascii")
        except (OSError, ValueError):
            return None

    def _requeue_salvaged(self, rows: list[dict]) -> int:
        """Put the outbox rows read from a damaged file into the fresh cache, in their
        order, with their ids (idempotency keys): a message the server already has is
        acknowledged once, never duplicated. Returns how many messages (sends) came back."""
        C, M = self.m.Conversation, self.m.Message
        sends = 0
        with self._write():
            for row in rows:
                kind, cid, mid = row["kind"], row["conversation_id"], row["message_id"]
                payload = json.loads(row["payload"] or "{}")
                if kind == "read":
                    continue  # a read marker is not user text; the next read sets it again
                if kind == "create_conversation":
                    now = _now()
                    C.insert(id=cid, title=payload.get("title") or "…", creator=self._me,
                             members=json.dumps(sorted(set(payload.get("members", []))
                                                       | {self._me})),
                             assistant=bool(payload.get("assistant")), created_at=now,
                             updated_at=now, last_activity_at=now, pending=True,
                             has_more=False).on_conflict_ignore().execute()
                else:
                    self._ensure_conversation_stub(cid)
                state = row["state"] if row["state"] in ("failed", "expired") else "queued"
                oid = self.m.Outbox.insert(
                    kind=kind, conversation_id=cid, message_id=mid, payload=row["payload"],
                    state=state, last_error=row.get("last_error"),
                    created_at=row.get("created_at") or _now(),
                    queued_at=row.get("queued_at") or row.get("created_at") or _now(),
                ).execute()
                if kind == "send":
                    sends += 1
                    M.insert(id=mid, conv=self._ckey(cid), author=self._me,
                             body=payload.get("body", ""),
                             created_at=row.get("created_at") or _now(),
                             sort_key=LOCAL_ECHO_BASE + oid).on_conflict_ignore().execute()
        return sends

    # ------------------------------------------------------------------ keys

    def _ckey(self, conversation_id: str):
        """The conversation's integer key (``conversation.pk``, what ``message.conv`` holds
        since v4) as a subquery for a query or an insert: ``NULL`` when the conversation is
        not cached (no message matches; an insert fails as a foreign key would)."""
        C = self.m.Conversation
        return C.select(C.pk).where(C.id == conversation_id)

    def _cid(self, row) -> str:
        """The conversation id (UUID string) of a message row."""
        C = self.m.Conversation
        return C.select(C.id).where(C.pk == row.conv).scalar()

    # ------------------------------------------------------------------ meta

    def _get_meta(self, key: str) -> str | None:
        row = self.m.Meta.get_or_none(self.m.Meta.key == key)
        return None if row is None else row.value

    def _set_meta(self, key: str, value: str | None) -> None:
        self.m.Meta.insert(key=key, value=value).on_conflict_replace().execute()

    def get_cursor(self) -> str | None:
        """The ``/v1/sync`` cursor of the last applied response, or None (initial sync next)."""
        return self._get_meta("cursor")

    def last_synced_at(self) -> datetime | None:
        """UTC time the last ``/v1/sync`` response was applied, or None."""
        value = self._get_meta("last_synced_at")
        return _dt(float(value)) if value else None

    def auth_failed(self) -> bool:
        """True after a 401 until the next login clears it (outbox rule 3, 401)."""
        return self._get_meta("auth_failed") == "1"

    def set_auth_failed(self, failed: bool) -> None:
        """Remember or clear the 401 pause (survives restarts; ``chat-tui status`` shows it)."""
        with self._write():
            self._set_meta("auth_failed", "1" if failed else "0")

    def last_retention_at(self) -> float | None:
        """Epoch seconds of the last retention run, or None."""
        value = self._get_meta("last_retention_at")
        return float(value) if value else None

    # ------------------------------------------------------------------ read API (UI)

    def list_conversations(self, limit: int | None = None,
                           ids: Iterable[str] | None = None) -> list[ConversationView]:
        """Conversations (not removed), most recent activity first, then by title; only
        the first ``limit`` when given (a first frame
        needs a screenful, not 10,000 rows); only those whose id is in ``ids`` when given
        (a refresh after an engine event re-reads what changed: one indexed lookup each,
        never the whole list). Ids not found (unknown or removed) are left out."""
        where, params = "", []
        if ids is not None:
            wanted = list(dict.fromkeys(ids))
            if not wanted:
                return []
            if len(wanted) > 500:  # SQLite's variable limit; a big change reads everything
                keep = set(wanted)
                return [v for v in self.list_conversations(limit) if v.id in keep]
            where = f" AND c.id IN ({', '.join('?' * len(wanted))})"
            params = wanted
        sql = f"""
        SELECT c.id, c.title, c.members, c.assistant, c.last_activity_at, c.unread_count,
               c.pending,
               (SELECT CASE WHEN m.deleted OR m.pending_deleted THEN '(deleted)'
                            ELSE m.author || ': ' || coalesce(m.pending_body, m.body) END
                  FROM message m WHERE m.conv = c.pk
                  ORDER BY m.sort_key DESC LIMIT 1) AS preview,
               (SELECT count(*) FROM outbox o
                 WHERE o.conversation_id = c.id AND o.kind != 'read') AS queued
          FROM conversation c WHERE NOT c.removed{where}
         ORDER BY coalesce(c.last_activity_at, 0) DESC, c.title
         LIMIT ?
        """
        out = []
        rows = self.db.execute_sql(sql, (*params, -1 if limit is None else limit)).fetchall()
        for row in rows:
            cid, title, members, assistant, activity, unread, pending, preview, queued = row
            out.append(ConversationView(
                id=cid, title=title, members=tuple(json.loads(members or "[]")),
                assistant=bool(assistant),
                last_message_preview=None if preview is None else _preview(preview),
                last_activity_at=_dt(activity), unread_count=unread or 0,
                queued_count=queued or 0, pending=bool(pending),
            ))
        return out

    def get_conversation(self, conversation_id: str) -> ConversationView | None:
        """One conversation (not removed), or None."""
        found = self.list_conversations(ids=(conversation_id,))
        return found[0] if found else None

    def find_conversation(self, id_or_title: str) -> ConversationView:
        """The conversation whose id is, or whose title equals (case-insensitive), the text.

        Raises:
            StoreError: none matches, or several conversations have that title.
        """
        views = self.list_conversations()
        for view in views:
            if view.id == id_or_title:
                return view
        matches = [v for v in views if v.title.casefold() == id_or_title.casefold()]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise StoreError(f"no conversation with id or title {id_or_title!r}")
        raise StoreError(f"several conversations are titled {id_or_title!r}: use the id")

    def _views(self, rows: Sequence, cid: str | None = None) -> list[MessageView]:
        """Views of message rows of ONE conversation (``cid``, looked up when None)."""
        if not rows:
            return []
        cid = cid if cid is not None else self._cid(rows[0])
        Ob = self.m.Outbox
        ids = [r.id for r in rows]
        actions: dict[str, list] = {}
        # A read-marker row names the message it marks read, but it is not an action OF that
        # message: it never changes the message's state (review finding, outbox rule 8).
        for o in (Ob.select().where(Ob.message_id.in_(ids) & (Ob.kind != "read"))
                  .order_by(Ob.id)):
            actions.setdefault(o.message_id, []).append(o)
        blocker = self._first_blocker(cid)
        others_read = (
            self.m.ReadMarker.select(fn.MAX(self.m.ReadMarker.seq))
            .where((self.m.ReadMarker.conversation_id == cid)
                   & (self.m.ReadMarker.username != self._me))
            .scalar()
        )
        out = []
        for r in rows:
            mine = r.author == self._me
            state = reason = None
            if mine:
                state, reason = self._state_of(r, actions.get(r.id, []), blocker, others_read)
            out.append(MessageView(
                id=r.id, conversation_id=cid, author=r.author,
                body="" if (r.deleted or r.pending_deleted) else (
                    r.pending_body if r.pending_body is not None else r.body),
                created_at=_dt(r.created_at), edited=r.edited_at is not None or (
                    r.pending_body is not None and r.seq is not None),
                deleted=bool(r.deleted or r.pending_deleted), streaming=bool(r.streaming),
                error=bool(r.error), mine=mine, state=state, failure_reason=reason,
                sort_key=r.sort_key, seq=r.seq, version=r.version,
            ))
        return out

    @staticmethod
    def _state_of(row, actions: list, blocker: int | None, others_read: int | None):
        rank = {"failed": 5, "expired": 4, "sending": 3, "blocked": 2, "queued": 1}
        best, reason = None, None
        for o in actions:
            state = o.state
            if state == "queued" and blocker is not None and o.id > blocker:
                state = "blocked"
            if best is None or rank[state] > rank[best]:
                best, reason = state, o.last_error if state in ("failed", "expired") else None
        if best is not None:
            return best, reason
        if row.seq is not None and others_read is not None and others_read >= row.seq:
            return "read", None
        return "sent", None

    def _first_blocker(self, cid: str) -> int | None:
        Ob = self.m.Outbox
        return (Ob.select(fn.MIN(Ob.id))
                .where((Ob.conversation_id == cid) & Ob.state.in_(("failed", "expired")))
                .scalar())

    def messages_before(self, conversation_id: str, before: SortKey | None = None,
                        limit: int = 50) -> list[MessageView]:
        """Up to ``limit`` cached messages with ``sort_key < before`` (the newest page when
        ``before`` is None), ascending by sort key."""
        M = self.m.Message
        q = M.select().where(M.conv == self._ckey(conversation_id))
        if before is not None:
            q = q.where(M.sort_key < before)
        rows = list(q.order_by(M.sort_key.desc()).limit(limit))
        rows.reverse()
        return self._views(rows, conversation_id)

    def messages_after(self, conversation_id: str, after: SortKey,
                       limit: int = 50) -> list[MessageView]:
        """Up to ``limit`` cached messages with ``sort_key > after``, ascending."""
        M = self.m.Message
        rows = list(M.select().where((M.conv == self._ckey(conversation_id)) & (M.sort_key > after))
                    .order_by(M.sort_key).limit(limit))
        return self._views(rows, conversation_id)

    def message_window_around(self, conversation_id: str, message_id: str,
                              limit: int = 50) -> list[MessageView]:
        """About ``limit`` messages centred on ``message_id`` (included), ascending; the
        newest page when the message is not cached."""
        M = self.m.Message
        row = M.get_or_none((M.id == message_id) & (M.conv == self._ckey(conversation_id)))
        if row is None:
            return self.messages_before(conversation_id, None, limit)
        half = max(1, limit // 2)
        older = self.messages_before(conversation_id, row.sort_key + 1, half + 1)
        newer = self.messages_after(conversation_id, row.sort_key, limit - len(older))
        return older + newer

    def get_message(self, message_id: str) -> MessageView | None:
        """One cached message, or None."""
        M = self.m.Message
        row = M.get_or_none(M.id == message_id)
        return None if row is None else self._views([row])[0]

    def has_older(self, conversation_id: str, before: SortKey | None = None) -> bool:
        """True when older messages than ``before`` (default: the oldest cached) exist, in
        the cache or on the server per the backfill state (``has_more`` or a gap)."""
        M = self.m.Message
        if before is not None and M.select().where(
                (M.conv == self._ckey(conversation_id)) & (M.sort_key < before)).exists():
            return True
        conv = self.m.Conversation.get_or_none(self.m.Conversation.id == conversation_id)
        if conv is None or conv.pending:
            return False
        return bool(conv.has_more) or bool(self.gaps(conversation_id))

    def gaps(self, conversation_id: str) -> list[Gap]:
        """Holes left by ``limited`` syncs, newest first (sync rule S4)."""
        G = self.m.Gap
        return [Gap(conversation_id, g.before_message_id, g.before_seq, g.after_seq)
                for g in G.select().where(G.conversation == conversation_id)
                .order_by(G.before_seq.desc())]

    def search(self, query: str, limit: int = 50) -> list[SearchHit]:
        """Full-text search over cached message bodies (FTS5, offline), best match first.

        Each word of ``query`` must occur (the last one as a prefix); FTS syntax characters
        are taken literally, so any text is a valid query. Tombstones are not found.
        """
        words = [w.replace('"', '""') for w in query.split()]
        if not words:
            return []
        match = " ".join(f'"{w}"' for w in words[:-1])
        match = (match + f' "{words[-1]}"*').strip()
        sql = """
        SELECT m.id, c.id, c.title, m.author,
               snippet(message_index, 0, '[', ']', '…', 12), m.created_at
          FROM message_index JOIN message m ON m.pk = message_index.rowid
          JOIN conversation c ON c.pk = m.conv
         WHERE message_index MATCH ? ORDER BY rank LIMIT ?
        """
        rows = self.db.execute_sql(sql, (match, limit)).fetchall()
        return [SearchHit(mid, cid, title, author, snip, _dt(created))
                for mid, cid, title, author, snip, created in rows]

    def get_draft(self, conversation_id: str) -> Draft | None:
        """The saved draft of a conversation, or None."""
        row = self.m.Draft.get_or_none(self.m.Draft.conversation_id == conversation_id)
        if row is None:
            return None
        return Draft(row.text, (row.cursor_row, row.cursor_col))

    def save_draft(self, conversation_id: str, text: str,
                   cursor: tuple[int, int] = (0, 0)) -> None:
        """Save (or, when ``text`` is empty, delete) the draft of a conversation."""
        D = self.m.Draft
        with self._write():
            if not text:
                D.delete().where(D.conversation_id == conversation_id).execute()
            else:
                D.insert(conversation_id=conversation_id, text=text, cursor_row=cursor[0],
                         cursor_col=cursor[1], updated_at=_now()).on_conflict_replace().execute()

    def get_ui_state(self) -> UIState:
        """Last open conversation, scroll anchors and the "work offline" switch."""
        anchors = {a.conversation_id: a.message_id for a in self.m.ScrollAnchor.select()}
        return UIState(self._get_meta("last_conversation"), anchors,
                       self._get_meta("work_offline") == "1")

    def set_work_offline(self, enabled: bool) -> None:
        """Remember the app's "work offline" switch (sync rule C3: on until turned off, across
        restarts)."""
        with self._write():
            self._set_meta("work_offline", "1" if enabled else "0")

    def set_last_conversation(self, conversation_id: str | None) -> None:
        """Remember the open conversation."""
        with self._write():
            self._set_meta("last_conversation", conversation_id)

    def set_scroll_anchor(self, conversation_id: str, message_id: str | None) -> None:
        """Remember (or with None forget) the message the view is anchored to."""
        A = self.m.ScrollAnchor
        with self._write():
            if message_id is None:
                A.delete().where(A.conversation_id == conversation_id).execute()
            else:
                A.insert(conversation_id=conversation_id,
                         message_id=message_id).on_conflict_replace().execute()

    def outbox_counts(self) -> dict[str, int]:
        """Outbox actions by state: keys ``queued``, ``sending``, ``failed``, ``blocked``,
        ``expired`` (a queued action behind a failed or expired one counts as blocked)."""
        # The first failed/expired action of each conversation, computed once (a
        # correlated EXISTS per row made this O(n^2): 6 ms with 1,000 queued sends, and the
        # engine asks twice per message sent; see benchmarks/NOTES.md).
        sql = """
        WITH blockers AS (
            SELECT conversation_id, min(id) AS first_id FROM outbox
             WHERE state IN ('failed', 'expired') GROUP BY conversation_id)
        SELECT CASE WHEN o.state = 'queued' AND o.id > b.first_id
               THEN 'blocked' ELSE o.state END AS s, count(*)
          FROM outbox o LEFT JOIN blockers b ON b.conversation_id = o.conversation_id
         GROUP BY s
        """
        counts = dict.fromkeys(OUTBOX_STATES, 0)
        for state, n in self.db.execute_sql(sql).fetchall():
            counts[state] = n
        return counts

    def problems(self) -> list[OutboxProblem]:
        """Every outbox action that waits for the user: failed, expired, and blocked behind
        one of those (bug class 5: nothing blocked is hidden), in outbox order."""
        Ob = self.m.Outbox
        out = []
        blockers: dict[str, object] = {}
        for o in Ob.select().where(Ob.kind != "read").order_by(Ob.id):
            blocker = blockers.get(o.conversation_id)
            if o.state in ("failed", "expired"):
                state, reason = o.state, o.last_error or o.state
                if blocker is None:
                    blockers[o.conversation_id] = o
            elif blocker is not None and o.state == "queued":
                state = "blocked"
                reason = f"blocked behind {blocker.kind} {blocker.message_id or blocker.id} ({blocker.state})"
            else:
                continue
            payload = json.loads(o.payload or "{}")
            text = payload.get("body") or payload.get("title") or ""
            out.append(OutboxProblem(o.message_id, o.conversation_id, state, reason,
                                     _preview(text), o.id, o.kind))
        return out

    def outbox_rows(self) -> list[OutboxAction]:
        """Every outbox action in FIFO order (for status and tests)."""
        Ob = self.m.Outbox
        return [self._action(o) for o in Ob.select().order_by(Ob.id)]

    def outbox_row(self, outbox_id: int) -> dict | None:
        """Raw fields of one outbox row (``state``, ``attempts``, ``next_attempt_at``,
        ``last_error``, ...) or None; for status output and tests."""
        Ob = self.m.Outbox
        row = Ob.select().where(Ob.id == outbox_id).dicts().first()
        return row

    @staticmethod
    def _action(o) -> OutboxAction:
        return OutboxAction(o.id, o.kind, o.conversation_id, o.message_id,
                            json.loads(o.payload or "{}"), o.attempts, o.transient_failures)

    # ------------------------------------------------------------------ user actions

    def _append(self, kind: str, cid: str, mid: str | None, payload: dict) -> int:
        now = _now()
        return self.m.Outbox.insert(kind=kind, conversation_id=cid, message_id=mid,
                                    payload=json.dumps(payload), state="queued",
                                    created_at=now, queued_at=now).execute()

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
        now = _now()
        with self._write():
            self.m.Conversation.insert(
                id=conversation_id, title=title, creator=self._me, members=json.dumps(names),
                assistant=assistant, created_at=now, updated_at=now, last_activity_at=now,
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
        now = _now()
        with self._write():
            conv = C.get_or_none(C.id == conversation_id)
            if conv is None or conv.removed:
                raise StoreError(f"unknown conversation {conversation_id}")
            oid = self._append("send", conversation_id, mid, {"body": body})
            M.insert(id=mid, conv=self._ckey(conversation_id), author=self._me, body=body,
                     created_at=now, sort_key=LOCAL_ECHO_BASE + oid).execute()
            C.update(last_activity_at=now).where(C.id == conversation_id).execute()
            self.m.Draft.delete().where(self.m.Draft.conversation_id == conversation_id).execute()
        return mid

    def _own_message(self, message_id: str):
        M = self.m.Message
        row = M.get_or_none(M.id == message_id)
        if row is None:
            raise StoreError(f"unknown message {message_id}")
        if row.author != self._me:
            raise StoreError("only the author can edit or delete a message")
        return row

    def _rows_for(self, message_id: str, kind: str | None = None) -> list:
        """The outbox rows acting on the message (send, edit, delete), FIFO; read-marker
        rows only point at it and are not its actions."""
        Ob = self.m.Outbox
        q = Ob.select().where((Ob.message_id == message_id) & (Ob.kind != "read"))
        if kind:
            q = q.where(Ob.kind == kind)
        return list(q.order_by(Ob.id))

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
            if send is not None and send.state != "sending":
                # The user touched it: its expiry clock restarts (outbox rule 6). Its
                # attempts are kept: one may have reached the server (answer lost), and a
                # later delete must then go to the server too (rule 7).
                Ob.update(payload=json.dumps({"body": body}), state="queued",
                         transient_failures=0, next_attempt_at=0, last_error=None,
                         queued_at=_now()).where(Ob.id == send.id).execute()
                M.update(body=body).where(M.id == message_id).execute()
                return "rewritten"
            edits = [o for o in self._rows_for(message_id, "edit") if o.state != "sending"]
            if edits:
                Ob.update(payload=json.dumps({"body": body}), state="queued", attempts=0,
                         transient_failures=0, next_attempt_at=0, last_error=None,
                         ).where(Ob.id == edits[-1].id).execute()
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
            if send is not None and send.state != "sending" and _may_be_on_server(send):
                # A 404 answer to the delete means there was nothing to delete (soak finding,
                # docs/reliability.md).
                self._send_becomes_delete(send)
                return "queued"
            if send is not None and send.state != "sending":
                Ob.delete().where((Ob.message_id == message_id) & (Ob.state != "sending")).execute()
                M.delete().where(M.id == message_id).execute()
                return "removed"
            if row.deleted or any(o.kind == "delete" for o in self._rows_for(message_id)):
                return "queued"
            Ob.delete().where((Ob.message_id == message_id) & (Ob.kind == "edit")
                             & (Ob.state != "sending")).execute()
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
        Ob.delete().where((Ob.message_id == send.message_id) & (Ob.state != "sending")
                          & (Ob.id != send.id)).execute()
        Ob.update(kind="delete", payload="{}", state="queued", attempts=0,
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
                                       & (Ob.kind == "read") & (Ob.state == "queued")).first())
            if queued is not None:
                Ob.update(message_id=message_id,
                         payload=json.dumps({"message_id": message_id})).where(
                    Ob.id == queued.id).execute()
            else:
                self._append("read", conversation_id, message_id, {"message_id": message_id})
            return True

    def _count_unread(self, cid: str, read_seq: int | None) -> int:
        M = self.m.Message
        q = M.select().where((M.conv == self._ckey(cid)) & (M.author != self._me)
                             & M.seq.is_null(False) & (M.deleted == False))  # noqa: E712
        if read_seq is not None:
            # sort_key equals seq for every acknowledged message (outbox rule 8): the same
            # rows, but a range of the (conversation, sort_key) index instead of a scan of
            # the whole conversation (23 ms -> under 1 ms at 100,000 messages).
            q = q.where((M.seq > read_seq) & (M.sort_key > read_seq))
        return q.count()

    def _problem_rows(self, message_id: str, states: Iterable[str]) -> list:
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
            ids = [o.id for o in self._problem_rows(message_id, ("failed",))]
            Ob.update(state="queued", attempts=0, transient_failures=0, next_attempt_at=0,
                     last_error=None, queued_at=_now()).where(Ob.id.in_(ids)).execute()

    def retry_action(self, outbox_id: int) -> None:
        """Like :meth:`retry` for any failed action by its outbox id (a conversation create)."""
        Ob = self.m.Outbox
        with self._write():
            n = Ob.update(state="queued", attempts=0, transient_failures=0, next_attempt_at=0,
                         last_error=None, queued_at=_now()).where((Ob.id == outbox_id) & (Ob.state == "failed")
                                                ).execute()
            if not n:
                raise StoreError(f"outbox action {outbox_id} is not failed")

    def send_anyway(self, message_id: str) -> None:
        """Outbox rule 6: an expired send goes back to ``queued``; its expiry clock restarts.

        Raises:
            StoreError: the message is not expired.
        """
        Ob = self.m.Outbox
        with self._write():
            ids = [o.id for o in self._problem_rows(message_id, ("expired",))]
            Ob.update(state="queued", queued_at=_now(), next_attempt_at=0, last_error=None,
                     ).where(Ob.id.in_(ids)).execute()

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
            rows = self._problem_rows(message_id, ("failed", "expired", "queued"))
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
                # deleted, not left to come back by sync (soak finding, docs/reliability.md).
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
                        # copy of it to restore; the echo goes (sync brings the server's copy
                        # back if it has one). Its text went to the draft with that first
                        # discard (review finding: it showed as "sent" here).
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

    # ------------------------------------------------------------------ drain support

    def requeue_sending(self) -> int:
        """Outbox rule 4: on start every ``sending`` row goes back to ``queued`` (same key).
        Returns how many."""
        Ob = self.m.Outbox
        with self._write():
            return Ob.update(state="queued").where(Ob.state == "sending").execute()

    def expire_old(self, max_age: float, now: float | None = None) -> list[str]:
        """Outbox rule 6: queued sends older than ``max_age`` seconds become ``expired``
        (0 turns it off). Returns their message ids."""
        if max_age <= 0:
            return []
        now = _now() if now is None else now
        Ob = self.m.Outbox
        due = ((Ob.state == "queued") & (Ob.kind == "send") & (Ob.queued_at < now - max_age))
        if not Ob.select().where(due).exists():
            return []  # the usual case: no write transaction (the drain asks every round)
        with self._write():
            rows = list(Ob.select().where(due))
            if rows:
                hours = max_age / 3600
                Ob.update(state="expired",
                         last_error=f"not sent within {hours:g} h; send anyway or discard",
                         ).where(Ob.id.in_([o.id for o in rows])).execute()
        return [o.message_id for o in rows]

    def next_actions(self, now: float | None = None) -> list[OutboxAction]:
        """Outbox rules 2-3: the head action of every conversation whose head is ``queued``
        and due (a failed/expired head blocks its conversation; a ``sending`` head is in
        flight), in outbox order."""
        now = _now() if now is None else now
        Ob = self.m.Outbox
        heads = Ob.select(fn.MIN(Ob.id)).group_by(Ob.conversation_id)
        rows = (Ob.select().where(Ob.id.in_(heads) & (Ob.state == "queued")
                                 & (Ob.next_attempt_at <= now)).order_by(Ob.id))
        return [self._action(o) for o in rows]

    def next_due_at(self) -> float | None:
        """Epoch seconds when the earliest queued head becomes due, or None when none waits."""
        Ob = self.m.Outbox
        heads = Ob.select(fn.MIN(Ob.id)).group_by(Ob.conversation_id)
        return (Ob.select(fn.MIN(Ob.next_attempt_at))
                .where(Ob.id.in_(heads) & (Ob.state == "queued")).scalar())

    def mark_sending(self, outbox_id: int) -> OutboxAction | None:
        """Outbox rule 4: mark the action ``sending`` and count the attempt, before the
        request; returns the action as it is now, or None when it changed meanwhile."""
        Ob = self.m.Outbox
        with self._write():
            n = Ob.update(state="sending", attempts=Ob.attempts + 1).where(
                (Ob.id == outbox_id) & (Ob.state == "queued")).execute()
            if not n:
                return None
            return self._action(Ob.get_by_id(outbox_id))

    def record_unreached(self, outbox_id: int, reason: str) -> None:
        """The request never reached the server (connection refused, offline): back to
        ``queued``, the attempt does not count (outbox rule 5)."""
        Ob = self.m.Outbox
        with self._write():
            Ob.update(state="queued", attempts=fn.MAX(Ob.attempts - 1, 0), last_error=reason,
                     ).where((Ob.id == outbox_id) & (Ob.state == "sending")).execute()

    def record_interrupted(self, outbox_id: int, reason: str) -> None:
        """The request was cut off by the client itself (work offline, stop) with its answer
        unknown: back to ``queued``, the attempt kept, as after a crash (outbox rule 4): it
        may have reached the server, which a later delete or discard must know
        (rules 3 and 7)."""
        Ob = self.m.Outbox
        with self._write():
            Ob.update(state="queued", last_error=reason).where(
                (Ob.id == outbox_id) & (Ob.state == "sending")).execute()

    def record_transient(self, outbox_id: int, delay: float, reason: str,
                         max_attempts: int) -> str:
        """Outbox rules 3 and 5: a transient failure that reached the server. The action
        stays ``queued`` (same key) until ``now + delay`` seconds, or becomes ``failed`` when
        it used ``max_attempts``. Returns the new state."""
        Ob = self.m.Outbox
        with self._write():
            row = Ob.get_or_none(Ob.id == outbox_id)
            if row is None:
                return "gone"
            if row.attempts >= max_attempts:
                Ob.update(state="failed", last_error=f"gave up after {row.attempts} attempts: "
                         f"{reason}").where(Ob.id == outbox_id).execute()
                return "failed"
            Ob.update(state="queued", transient_failures=Ob.transient_failures + 1,
                     next_attempt_at=_now() + delay, last_error=reason,
                     ).where(Ob.id == outbox_id).execute()
            return "queued"

    def record_permanent(self, outbox_id: int, reason: str) -> None:
        """Outbox rule 3: a permanent failure: ``failed`` with the server's reason; later
        actions of the conversation are blocked behind it."""
        Ob = self.m.Outbox
        with self._write():
            Ob.update(state="failed", last_error=reason).where(Ob.id == outbox_id).execute()

    def record_paused(self, outbox_id: int, reason: str) -> None:
        """401 or a local error: back to ``queued`` without counting the attempt."""
        self.record_unreached(outbox_id, reason)

    def _finish(self, outbox_id: int, message_id: str | None) -> None:
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
        found by the soak, docs/reliability.md).

        Runs once per message drained, so it is written in SQL prepared once (sqlite3
        caches the statements per connection) and writes the message row at most once:
        the server's fields and the end of my pending edit/delete in one ``UPDATE``, which
        leaves out the indexed columns when what the user sees does not change (the FTS
        triggers then have nothing to do). Building the Peewee queries cost more than
        running them (benchmarks/NOTES.md, fix 22)."""
        res = ApplyResult()
        cid, mid = message.conversation_id, message.id
        db = self.db
        with self._write():
            ob = db.execute_sql(_OUTBOX_KIND_PAYLOAD_SQL, (outbox_id,)).fetchone()
            sent = json.loads(ob[1] or "{}").get("body") if ob is not None else None
            old = db.execute_sql(_MESSAGE_FOR_ACK_SQL, (mid,)).fetchone()
            fields = (message.author, message.body, _ts(message.created_at),
                      _ts(message.edited_at), message.seq, message.version,
                      int(message.deleted), int(message.streaming), int(message.error),
                      message.seq)
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
                db.execute_sql(self._INSERT_MESSAGE, (mid, cid) + fields)
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
        """Store the read marker in force and remove the action."""
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

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Several store writes of this thread as one transaction: all of them commit
        together or none does; an exception from any of them rolls back the whole batch
        (the methods' own transactions become part of it, not savepoints: a savepoint
        costs two statements each, and the batch is all or nothing anyway). Used by the
        drain to commit an acknowledgement and mark the conversation's next action
        ``sending`` at once (outbox rule 4). Not reentrant."""
        with self._write():
            self._batch_owner = threading.get_ident()
            try:
                yield
            finally:
                self._batch_owner = None

    def mark_next_sending(self, conversation_id: str, max_queue_age: float = 0,
                          now: float | None = None) -> OutboxAction | None:
        """Outbox rules 2, 4 and 6: mark the conversation's head action ``sending`` (attempt
        counted) and return it, when it is ``queued``, due, and (a send) not older than
        ``max_queue_age`` seconds (0: no limit); else change nothing and return None."""
        now = _now() if now is None else now
        # One statement, SQL written once: this runs once per message drained, and building
        # the equivalent Peewee queries cost more than running them (benchmarks/NOTES.md).
        # A send older than max_queue_age is left for expire_old (the drain's next round).
        with self._write():
            row = self.db.execute_sql(_NEXT_DUE_HEAD_SQL, (
                conversation_id, now, max_queue_age, now - max_queue_age)).fetchone()
            if row is None:
                return None
            self.db.execute_sql(_MARK_SENDING_SQL, (row[0],))
        oid, kind, cid, mid, payload, attempts, transient = row
        return OutboxAction(oid, kind, cid, mid, json.loads(payload or "{}"), attempts + 1,
                            transient)

    # ------------------------------------------------------------------ sync apply

    def _ensure_conversation_stub(self, cid: str) -> None:
        C = self.m.Conversation
        if not C.select().where(C.id == cid).exists():
            C.insert(id=cid, title="…", creator="", members="[]", has_more=True).execute()

    def _upsert_conversation(self, conv: ConversationRecord, res: ApplyResult) -> None:
        C = self.m.Conversation
        updated = _ts(conv.updated_at)
        fields = dict(title=conv.title, creator=conv.creator,
                      members=json.dumps(sorted(conv.members)), assistant=conv.assistant,
                      created_at=_ts(conv.created_at), updated_at=updated,
                      unread_count=conv.unread_count, pending=False, removed=False)
        row = C.get_or_none(C.id == conv.id)
        if row is None:
            C.insert(id=conv.id, last_activity_at=updated, has_more=True, **fields).execute()
            res.touch(conv.id)
            return
        current = dict(title=row.title, creator=row.creator, members=row.members,
                       assistant=row.assistant, created_at=row.created_at,
                       updated_at=row.updated_at, unread_count=row.unread_count,
                       pending=row.pending, removed=row.removed)
        activity = max(row.last_activity_at or 0, updated or 0)
        if current != fields or activity != row.last_activity_at:
            C.update(last_activity_at=activity, **fields).where(C.id == conv.id).execute()
            res.touch(conv.id)

    def _apply_message(self, msg: MessageRecord, res: ApplyResult,
                       force_seq: bool = False) -> bool:
        """Last-write-wins on ``version`` (sync rule S3). Returns True when the row changed."""
        M = self.m.Message
        fields = dict(author=msg.author, body=msg.body, created_at=_ts(msg.created_at),
                      edited_at=_ts(msg.edited_at), seq=msg.seq, version=msg.version,
                      deleted=msg.deleted, streaming=msg.streaming, error=msg.error,
                      sort_key=msg.seq)
        row = M.get_or_none(M.id == msg.id)
        if row is None:
            M.insert(id=msg.id, conv=self._ckey(msg.conversation_id), **fields).execute()
            res.touch(msg.conversation_id, msg.id)
            res.added += 1
            return True
        if row.version is not None and msg.version <= row.version:
            return False
        M.update(**fields).where(M.id == msg.id).execute()
        res.touch(msg.conversation_id, msg.id)
        return True

    _INSERT_MESSAGE = (
        "INSERT INTO message (id, conv, author, body, created_at, edited_at, seq, "
        "version, deleted, streaming, error, sort_key, pending_body, pending_deleted) "
        "VALUES (?, (SELECT pk FROM conversation WHERE id = ?), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "NULL, 0)"
    )

    def _apply_messages(self, messages: Sequence[MessageRecord], res: ApplyResult) -> None:
        """:meth:`_apply_message` for many messages, same result: the ids already held are
        looked up in one query per 500, messages new to the cache are inserted with one
        prepared statement (``executemany``), the others go through last-write-wins one by
        one. Building one Peewee query per message cost about 1 ms each (a 358k-message
        initial sync took minutes); see benchmarks/NOTES.md."""
        M = self.m.Message
        known: dict[str, int | None] = {}  # id -> version held (None: a local echo)
        ids = [m.id for m in messages]
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            known.update(M.select(M.id, M.version).where(M.id.in_(chunk)).tuples())
        rows: list[tuple] = []
        for msg in messages:
            if msg.id in known:
                held = known[msg.id]
                if held is not None and msg.version <= held:
                    continue  # last-write-wins: an older or equal copy changes nothing
                known[msg.id] = msg.version
                if rows:
                    self.db.cursor().executemany(self._INSERT_MESSAGE, rows)
                    rows = []
                self._apply_message(msg, res)
                continue
            known[msg.id] = msg.version
            rows.append((msg.id, msg.conversation_id, msg.author, msg.body,
                         _ts(msg.created_at), _ts(msg.edited_at), msg.seq, msg.version,
                         int(msg.deleted), int(msg.streaming), int(msg.error), msg.seq))
            res.touch(msg.conversation_id, msg.id)
            res.added += 1
        if rows:
            self.db.cursor().executemany(self._INSERT_MESSAGE, rows)

    def _apply_marker(self, marker: ReadMarkerRecord, res: ApplyResult) -> None:
        R, C = self.m.ReadMarker, self.m.Conversation
        row = R.get_or_none((R.conversation_id == marker.conversation_id)
                            & (R.username == marker.username))
        if row is not None and row.seq >= marker.seq:
            return
        R.insert(conversation_id=marker.conversation_id, username=marker.username,
                 message_id=marker.message_id, seq=marker.seq).on_conflict_replace().execute()
        res.touch(marker.conversation_id)
        if marker.username == self._me:
            conv = C.get_or_none(C.id == marker.conversation_id)
            if conv is not None and (conv.read_seq is None or conv.read_seq < marker.seq):
                C.update(read_seq=marker.seq, read_message_id=marker.message_id,
                         unread_count=self._count_unread(conv.id, marker.seq),
                         ).where(C.id == conv.id).execute()
        else:
            # My messages up to this seq are now "read": tell the UI which ones changed.
            M = self.m.Message
            prev = row.seq if row is not None else -1
            # The sort_key bounds select the same rows (sort_key == seq once acknowledged)
            # as a range of the (conv, sort_key) index instead of a scan of the conversation.
            mine = ((M.conv == self._ckey(marker.conversation_id)) & (M.author == self._me)
                    & (M.seq > prev) & (M.seq <= marker.seq)
                    & (M.sort_key > prev) & (M.sort_key <= marker.seq))
            for mid in M.select(M.id).where(mine).tuples():
                res.touch(marker.conversation_id, mid[0])

    def apply_sync(self, response: SyncRecord) -> ApplyResult:
        """Sync rule S2: apply one ``/v1/sync`` response; its cursor is stored with the last
        write, so the cursor moves only once everything before it is committed. Replaying
        a response (all of it, or after a crash part of it) changes nothing:
        last-write-wins on ``version``, and gaps are measured against ``synced_seq``,
        which moves in the same transaction as the messages it covers.

        A big response (an initial sync of a reader in thousands of conversations) is
        written in chunks of about :data:`APPLY_CHUNK_ROWS` rows, one short transaction
        each, so a user action waits at most one chunk (sync rule D1). ``limited``
        conversations get a gap marker (sync rule S4). Big work: call from the worker
        thread.

        Args:
            response: a parsed ``/v1/sync`` answer (``chat_tui.api.SyncResponse``).

        Returns:
            What changed (conversation and message ids, messages added).

        Raises:
            peewee.DatabaseError: the cache could not be written; what was committed
            before stays (replaying the response later is safe).
        """
        res = ApplyResult()
        units: list[tuple[int, object]] = []  # (rows, step) with step() run in a transaction
        for item in response.conversations:
            if item.removed:
                units.append((1, lambda item=item: self._apply_removed(item, res)))
                continue
            msgs = list(item.messages)
            first = msgs[:APPLY_CHUNK_ROWS]
            units.append((1 + len(first), lambda item=item, first=first: self._apply_item_head(
                item, first, response.initial, res)))
            for start in range(APPLY_CHUNK_ROWS, len(msgs), APPLY_CHUNK_ROWS):
                part = msgs[start:start + APPLY_CHUNK_ROWS]
                units.append((len(part), lambda part=part: self._apply_messages(part, res)))

        def finish() -> None:
            for marker in response.read_markers:
                self._apply_marker(marker, res)
            self._set_meta("cursor", response.cursor)
            self._set_meta("last_synced_at", repr(_now()))

        units.append((len(response.read_markers), finish))
        batch: list = []
        rows = 0
        for i, (n, step) in enumerate(units):
            batch.append(step)
            rows += n
            if rows >= APPLY_CHUNK_ROWS or i == len(units) - 1:
                with self._write():
                    for run in batch:
                        run()
                batch, rows = [], 0
        return res

    def _apply_removed(self, item, res: ApplyResult) -> None:
        C, M, Ob = self.m.Conversation, self.m.Message, self.m.Outbox
        conv = item.conversation
        referenced = Ob.select(Ob.message_id).where(Ob.message_id.is_null(False))
        M.delete().where((M.conv == self._ckey(conv.id)) & M.id.not_in(referenced)).execute()
        if C.select().where(C.id == conv.id).exists():
            C.update(removed=True).where(C.id == conv.id).execute()
            res.touch(conv.id)

    def _apply_item_head(self, item, messages: Sequence[MessageRecord], initial: bool,
                         res: ApplyResult) -> None:
        """The conversation of one sync item, its first chunk of messages, its gap marker
        (sync rule S4, computed from all its messages) and its ``synced_seq``, in the
        caller's transaction."""
        C = self.m.Conversation
        conv = item.conversation
        known = C.get_or_none(C.id == conv.id)
        self._upsert_conversation(conv, res)
        self._apply_messages(messages, res)
        if item.limited:
            if known is None or initial:
                # Nothing was synced before: older history, not a hole.
                C.update(has_more=True).where(C.id == conv.id).execute()
            else:
                self._mark_gap(conv.id, known.synced_seq, item.messages)
        self._advance_synced_seq(conv.id, item.messages)

    def _advance_synced_seq(self, cid: str, messages: Sequence[MessageRecord]) -> None:
        if not messages:
            return
        C = self.m.Conversation
        top = max(m.seq for m in messages)
        C.update(synced_seq=top).where(
            (C.id == cid) & (C.synced_seq.is_null() | (C.synced_seq < top))).execute()

    def _mark_gap(self, cid: str, prev_max: int | None,
                  messages: Sequence[MessageRecord]) -> None:
        """Sync rule S4: a hole between ``prev_max`` (the highest seq received through sync
        or backfill, None when none was: the hole reaches the start) and the oldest of the
        limited delta's messages newer than it. Acknowledgements of my own sends never
        raise ``prev_max``: they can be newer than messages the delta left out."""
        G = self.m.Gap
        new = sorted((m for m in messages if prev_max is None or m.seq > prev_max),
                     key=lambda m: m.seq)
        if not new:
            return
        oldest = new[0]
        if not G.select().where((G.conversation == cid)
                                & (G.before_message_id == oldest.id)).exists():
            G.insert(conversation=cid, before_message_id=oldest.id, before_seq=oldest.seq,
                     after_seq=prev_max).execute()

    def backfill_target(self, conversation_id: str) -> tuple[str | None, int | None] | None:
        """What the next backfill page should ask for (sync rule S5): ``(before_message_id,
        gap_id)`` for the newest gap, ``(oldest cached id, None)`` when ``has_more``,
        ``(None, None)`` for the newest page when nothing is cached, or None when nothing
        older exists."""
        C, G, M = self.m.Conversation, self.m.Gap, self.m.Message
        gap = (G.select().where(G.conversation == conversation_id)
               .order_by(G.before_seq.desc()).first())
        if gap is not None:
            return gap.before_message_id, gap.id
        conv = C.get_or_none(C.id == conversation_id)
        if conv is None or conv.pending or not conv.has_more:
            return None
        # By sort_key, which equals seq for acknowledged messages: the (conv, sort_key) index.
        oldest = (M.select(M.id).where((M.conv == self._ckey(conversation_id))
                                       & M.seq.is_null(False)).order_by(M.sort_key).first())
        return (oldest.id if oldest else None), None

    def apply_page(self, conversation_id: str, page: PageRecord,
                   gap_id: int | None) -> ApplyResult:
        """Sync rule S5: store one backfill page (dedupe by id, last-write-wins) and update the
        backfill state in one transaction: a gap closes when the page reaches a message
        already held (seq <= the gap's lower bound) or ``has_more`` is false, otherwise it
        shrinks to the page's oldest message; without a gap ``has_more`` is remembered."""
        res = ApplyResult()
        C, G = self.m.Conversation, self.m.Gap
        with self._write():
            self._apply_messages(page.messages, res)
            self._advance_synced_seq(conversation_id, page.messages)
            oldest = min(page.messages, key=lambda m: m.seq) if page.messages else None
            if gap_id is not None:
                gap = G.get_or_none(G.id == gap_id)
                if gap is not None:
                    reached = (oldest is None or not page.has_more
                               or (gap.after_seq is not None and oldest.seq <= gap.after_seq))
                    if reached:
                        gap.delete_instance()
                    else:
                        G.update(before_message_id=oldest.id, before_seq=oldest.seq).where(
                            G.id == gap_id).execute()
            else:
                C.update(has_more=page.has_more).where(C.id == conversation_id).execute()
            res.touch(conversation_id)
        return res

    def reset_cache(self) -> None:
        """After ``410 cursor_expired``: drop the cached server state (rebuilt by an initial
        sync) but never the outbox, its local echoes, their conversations or drafts."""
        C, M, Ob, G, R = (self.m.Conversation, self.m.Message, self.m.Outbox, self.m.Gap,
                         self.m.ReadMarker)
        with self._write():
            referenced = Ob.select(Ob.message_id).where(Ob.message_id.is_null(False))
            M.delete().where(M.id.not_in(referenced)).execute()
            G.delete().execute()
            R.delete().execute()
            keep = Ob.select(Ob.conversation_id)
            C.delete().where(C.id.not_in(keep)).execute()
            C.update(has_more=True).where(C.pending == False).execute()  # noqa: E712
            C.update(synced_seq=None).execute()
            self._set_meta("cursor", None)

    # ------------------------------------------------------------------ retention

    def run_retention(self, retention_days: int, now: float | None = None) -> int:
        """Sync rule R1: delete cached messages older than ``retention_days`` (0 keeps all),
        never a message the outbox references (drafts are per conversation and untouched),
        then let the file shrink (``PRAGMA incremental_vacuum``). Returns messages deleted."""
        now = _now() if now is None else now
        deleted = 0
        # Deleted in chunks of RETENTION_CHUNK messages, one short transaction each, so a user
        # action waiting for the write lock waits for one chunk, never for the whole run
        # (issue 3: database work never blocks the UI for more than a few milliseconds).
        while True:
            with self._write():
                n = (self._delete_older_than(now - retention_days * 86400, RETENTION_CHUNK)
                     if retention_days > 0 else 0)
                deleted += n
                if n < RETENTION_CHUNK:
                    # With the last chunk: whoever sees the run recorded sees the messages gone.
                    self._set_meta("last_retention_at", repr(now))
                    break
        self._wlock.acquire()
        try:
            migrations.reclaim_free_pages(self.db)
            self.db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self._wlock.release()
        return deleted

    def _delete_older_than(self, cutoff: float, limit: int) -> int:
        """The deleting part of :meth:`run_retention`, in the caller's transaction: at most
        ``limit`` messages created before ``cutoff`` (epoch seconds) that no outbox row
        references. Returns how many were deleted (fewer than ``limit``: none are left)."""
        C, M, Ob, G = self.m.Conversation, self.m.Message, self.m.Outbox, self.m.Gap
        referenced = Ob.select(Ob.message_id).where(Ob.message_id.is_null(False))
        # The day range comes first so the query reads retention's index (INDEX_SCHEMA);
        # the exact time is checked on the rows of the cutoff's day.
        in_range = SQL(f"{CREATED_DAY} <= ?", [int(cutoff // 86400)])
        doomed = list(M.select(M.id, M.conv).where(
            in_range & (M.created_at < cutoff) & M.id.not_in(referenced)
            & M.seq.is_null(False)
        ).limit(limit).tuples())
        if not doomed:
            return 0
        keys = list({key for _, key in doomed})
        touched = [cid for (cid,) in C.select(C.id).where(C.pk.in_(keys)).tuples()]
        deleted = 0
        for start in range(0, len(doomed), 500):  # SQLite's bound-variable limit
            ids = [mid for mid, _ in doomed[start:start + 500]]
            deleted += M.delete().where(M.id.in_(ids)).execute()
        for cid in touched:
            C.update(has_more=True).where(C.id == cid).execute()
            # The oldest acknowledged message left: sort_key equals seq for those, and local
            # echoes sort after them (a walk of the (conv, sort_key) index, not a scan).
            low = (M.select(M.seq).where((M.conv == self._ckey(cid)) & M.seq.is_null(False))
                   .order_by(M.sort_key).limit(1).scalar())
            gone = G.delete().where(G.conversation == cid)
            if low is not None:
                gone = gone.where(G.before_seq <= low)
            gone.execute()
        return deleted

    def file_size(self) -> int:
        """Bytes used by the database pages (page_count * page_size)."""
        pages = self.db.execute_sql("PRAGMA page_count").fetchone()[0]
        size = self.db.execute_sql("PRAGMA page_size").fetchone()[0]
        return pages * size

    def has_unsent(self) -> bool:
        """True while any action waits in the outbox (``cache clear`` refuses then)."""
        return self.m.Outbox.select().exists()

    def export(self, conversation_ids: Sequence[str] | None = None) -> list[dict]:
        """Cached conversations with their messages, oldest first, for ``chat-tui export``:
        ``[{"id", "title", "members", "messages": [{"id", "author", "body", "created_at",
        "edited", "deleted", "state"}]}]`` (times RFC 3339 UTC)."""
        out = []
        for conv in self.list_conversations():
            if conversation_ids and conv.id not in conversation_ids:
                continue
            msgs = []
            last: SortKey = -1
            while True:
                page = self.messages_after(conv.id, last, 500)
                if not page:
                    break
                last = page[-1].sort_key
                msgs += [{"id": m.id, "author": m.author, "body": m.body,
                          "created_at": m.created_at.isoformat().replace("+00:00", "Z"),
                          "edited": m.edited, "deleted": m.deleted, "state": m.state}
                         for m in page]
            out.append({"id": conv.id, "title": conv.title, "members": list(conv.members),
                        "messages": msgs})
        return out


@dataclass(frozen=True)
class CacheRecovery:
    """What happened when the cache file was unreadable (sync rule D4): ``path`` the cache,
    ``moved_to`` where the damaged file now is (never deleted), ``reason`` SQLite's error,
    ``outbox_readable`` whether its outbox could be read, ``recovered`` how many unsent
    messages were read back and queued again."""

    path: Path
    moved_to: Path
    reason: str
    outbox_readable: bool
    recovered: int

    @property
    def message(self) -> str:
        """A readable report for the user (CLI stderr, the app's problem banner)."""
        head = (f"the cache {self.path} was unreadable ({self.reason}); it was moved to "
                f"{self.moved_to} and the account resyncs from the server")
        if not self.outbox_readable:
            return (head + "; its outbox could not be read: messages that were not yet sent "
                    f"may be lost, the damaged file is kept at {self.moved_to}")
        return head + f"; {self.recovered} unsent message(s) were recovered from its outbox"


def _salvage_outbox(path: Path) -> list[dict] | None:
    """Read the outbox rows of a damaged cache, oldest first; None when unreadable."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        con.row_factory = sqlite3.Row
        cols = {r[1] for r in con.execute("PRAGMA table_info(outbox)")}
        if not {"kind", "conversation_id", "message_id", "payload", "state"} <= cols:
            return None
        return [dict(r) for r in con.execute("SELECT * FROM outbox ORDER BY id")]
    except sqlite3.Error:
        return None
    finally:
        con.close()


def _move_aside(path: Path) -> Path:
    """Rename the cache (and its WAL/SHM) to ``<name>.corrupt-<UTC time>``; returns it."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(path) + suffix)
        if src.exists():
            src.rename(Path(str(target) + suffix))
    return target


def _clean_stamp(path: Path) -> Path:
    """``<file>.clean``: size and mtime of the cache at its last clean close (rule D4)."""
    return path.with_name(path.name + ".clean")


def delete_cache_file(path: Path) -> None:
    """Remove a cache file and its WAL/SHM companions (missing files are fine)."""
    for suffix in ("", "-wal", "-shm", ".clean"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def sqlite_version() -> str:
    """Version of the SQLite library in use."""
    return sqlite3.sqlite_version


__all__ = ["ApplyResult", "CacheRecovery", "OutboxAction", "SchemaTooNew", "Store", "StoreError"]

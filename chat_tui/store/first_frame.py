"""The first frame's read of the cache without Peewee: the standard library's ``sqlite3``
for a plain file, ``sqlcipher3`` with the raw key for an encrypted one (sync rule D6).

:class:`FirstFrameReader` answers the few read calls the chat screen makes for its first
frame (the UI state, a page of the conversation list, the outbox counts, the newest
messages or a window around the saved scroll anchor, whether older messages exist) with
the same values, in the same shapes (:mod:`chat_tui.store.views`), as the
:class:`~chat_tui.store.Cache` methods of the same names. Importing Peewee and opening
the cache cost ~50 ms before the first frame; the app opens the full cache right after
that frame instead (``ChatApp``'s ``open_cache``) and reads through it from then on.

The reader is used only for a file exactly as a clean close left it (its clean stamp
matches, sync rule D4) whose schema is the one its SQL is written for
(:data:`READS_SCHEMA`): any other file (new, migrated, unchecked, damaged) is opened by
:meth:`Cache.open` before the first frame, as it decides. The reader never writes, and it
is closed before the cache opens, so the file keeps its clean stamp.

An encrypted file is read the same way through a ``sqlcipher3`` connection keyed with its
raw 32-byte key (no key derivation, so it costs what a plain read costs, plus the import of
the driver); the caller looks the key up (``chat_tui.launch.first_frame_reader``) and a
key that does not open the file makes the reader step aside like a damaged file:
``Cache.open`` then reports the locked state (sync rule D8).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

from chat_tui.store.cipher import connect_sqlcipher, database_errors
from chat_tui.store.cleanstamp import is_clean
from chat_tui.store.convert import dt, preview
from chat_tui.store.outbox_state import (
    COUNTS_BY_STATE_SQL,
    MY_COUNTS_BY_STATE_SQL,
    NOT_LEAVING_SQL,
    PENDING_BY_KIND_SQL,
    PROBLEMS_COLUMN_SQL,
    WAITS_FOR_USER,
    shown_state,
)
from chat_tui.store.shown import SHOWN_M_SQL, SHOWN_SQL
from chat_tui.store.views import OUTBOX_STATES, ConversationView, MessageView, SortKey, UIState

__all__ = ["READS_SCHEMA", "FirstFrameReader", "connect_readonly"]

READS_SCHEMA = 6
"""The cache schema (``PRAGMA user_version``) this module's SQL reads; equal to
``chat_tui.store.SCHEMA_VERSION`` (a test checks it): a new schema makes the reader
step aside until its SQL is checked against it."""

_LIST_SQL = f"""
SELECT c.id, c.title, c.members, c.assistant, c.last_activity_at, c.unread_count,
       c.pending, c.model, c.system_prompt,
       (SELECT CASE WHEN m.deleted OR m.pending_deleted THEN '(deleted)'
                    ELSE m.author || ': ' || coalesce(m.pending_body, m.body) END
          FROM message m WHERE m.conv = c.pk AND {SHOWN_M_SQL}
          ORDER BY m.sort_key DESC LIMIT 1) AS preview,
       (SELECT count(*) FROM outbox o
         WHERE o.conversation_id = c.id AND o.kind != 'read') AS queued,
       {PROBLEMS_COLUMN_SQL},
       (SELECT r.encrypted FROM remote_room r WHERE r.conversation_id = c.id)
         AS encrypted
  FROM conversation c WHERE NOT c.removed AND {NOT_LEAVING_SQL}
 ORDER BY coalesce(c.last_activity_at, 0) DESC, c.title
 LIMIT ?
"""

_QUEUED_SQL = """
SELECT count(*) FROM outbox o JOIN conversation c ON c.id = o.conversation_id
 WHERE NOT c.removed AND o.kind != 'read'
"""

_MESSAGE_COLUMNS = ("id, author, body, created_at, edited_at, seq, version, deleted, "
                    "streaming, error, sort_key, pending_body, pending_deleted, model, "
                    "stopped")
_CONV = "conv = (SELECT pk FROM conversation WHERE id = ?)"
#: The messages of one conversation that it shows (sync rule 10, :mod:`chat_tui.store.shown`).
_SHOWN = f"{_CONV} AND {SHOWN_SQL}"


class _Action(NamedTuple):
    """An outbox row as :func:`~chat_tui.store.outbox_state.shown_state` reads it."""

    id: int
    state: str
    last_error: str | None


def connect_readonly(path: Path, key: bytes | None = None) -> sqlite3.Connection:
    """A read-only connection to the cache file ``path`` (``query_only``; the file must
    exist: ``mode=rw`` never creates one). ``key`` is the raw 32-byte key of an encrypted
    cache (a ``sqlcipher3`` connection, keyed before the first read, sync rule D6); None
    for a plain file (the standard library's ``sqlite3``).

    Raises:
        sqlite3.Error, sqlcipher3.dbapi2.Error: the file is missing or cannot be opened
            (:func:`~chat_tui.store.cipher.database_errors`).
        ValueError: ``key`` is not 32 bytes.
    """
    uri = f"file:{quote(str(path))}?mode=rw"
    if key is None:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    else:
        conn = connect_sqlcipher(uri, key, uri=True, isolation_level=None,
                                 check_same_thread=False)
    try:
        conn.execute("PRAGMA query_only = 1")
    except database_errors():
        conn.close()
        raise
    return conn


class FirstFrameReader:
    """Read-only answers for the first frame from the cache file ``path`` of the account
    ``me`` (its username). Open with :meth:`open`; :meth:`close` before the cache opens.

    Each method has the signature and the result of the :class:`~chat_tui.store.Cache`
    method of the same name (docs/engine.md, "Cache read API"); each raises
    ``sqlite3.Error`` on a broken file (``sqlcipher3.dbapi2.Error`` for an encrypted one).
    """

    def __init__(self, path: Path, me: str, conn: sqlite3.Connection) -> None:
        self.path = path
        self._me = me
        self._conn = conn

    @classmethod
    def open(cls, path: Path | str, me: str, key: bytes | None = None
             ) -> FirstFrameReader | None:
        """A reader of ``path`` (``key``: the raw key of an encrypted cache, None for a
        plain one), or None when the first frame must come from ``Cache.open`` instead:
        the file is missing, not exactly as a clean close left it (sync rule D4: it needs
        a check, maybe a recovery), of another schema than :data:`READS_SCHEMA` (a
        migration, or a newer chat-tui), or unreadable with ``key`` (encrypted and no
        key or the wrong one, or plain and a key given: ``Cache.open`` decides, sync rule
        D8)."""
        path = Path(path)
        if not is_clean(path):
            return None
        try:
            conn = connect_readonly(path, key)
        except database_errors():
            return None
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except database_errors():
            version = None
        if version != READS_SCHEMA:
            conn.close()
            return None
        return cls(path, me, conn)

    @property
    def me(self) -> str:
        """Username of the account (str)."""
        return self._me

    def close(self) -> None:
        """Close the connection (idempotent). SQLite removes the WAL file it made, so the
        file keeps its clean stamp for ``Cache.open``."""
        self._conn.close()

    # ------------------------------------------------------------------ reads
    def get_ui_state(self) -> UIState:
        """As ``Cache.get_ui_state``: last open conversation, scroll anchors, work offline."""
        meta = dict(self._conn.execute(
            "SELECT key, value FROM meta WHERE key IN ('last_conversation', 'work_offline')"))
        anchors = dict(self._conn.execute("SELECT conversation_id, message_id FROM scroll_anchor"))
        return UIState(meta.get("last_conversation"), anchors, meta.get("work_offline") == "1")

    def list_conversations(self, limit: int | None = None,
                           ids: Iterable[str] | None = None) -> list[ConversationView]:
        """As ``Cache.list_conversations`` (most recent activity first, the first
        ``limit``); with ``ids``, only those (read from the whole list)."""
        rows = self._conn.execute(_LIST_SQL, (-1 if limit is None or ids is not None
                                              else limit,)).fetchall()
        out = [ConversationView(
            id=cid, title=title, members=tuple(json.loads(members or "[]")),
            assistant=bool(assistant),
            last_message_preview=None if last is None else preview(last),
            last_activity_at=dt(activity), unread_count=unread or 0,
            queued_count=queued or 0, pending=bool(pending), model=model,
            system_prompt=system_prompt, problem_count=problems or 0,
            encrypted=bool(enc),
        ) for (cid, title, members, assistant, activity, unread, pending, model, system_prompt,
               last, queued, problems, enc) in rows]
        if ids is not None:
            wanted = set(ids)
            out = [v for v in out if v.id in wanted][:limit]
        return out

    def outbox_counts(self, *, reads: bool = True) -> dict[str, int]:
        """As ``Cache.outbox_counts``: outbox actions by state (``OUTBOX_STATES`` keys),
        read markers left out when ``reads`` is False."""
        counts = dict.fromkeys(OUTBOX_STATES, 0)
        for state, n in self._conn.execute(COUNTS_BY_STATE_SQL if reads
                                           else MY_COUNTS_BY_STATE_SQL):
            counts[state] = n
        return counts

    def queued_actions(self) -> int:
        """As ``chat_tui.store.conversation_counts.queued_actions(cache)``: my actions
        still in the outbox (read markers not counted) over every listed conversation."""
        return int(self._conn.execute(_QUEUED_SQL).fetchone()[0])

    def queued_by_kind(self) -> dict[str, int]:
        """As ``chat_tui.store.conversation_counts.queued_by_kind(cache)``: those actions
        by outbox kind (kinds with none absent)."""
        return {kind: int(n) for kind, n in self._conn.execute(PENDING_BY_KIND_SQL)}

    def messages_before(self, conversation_id: str, before: SortKey | None = None,
                        limit: int = 50) -> list[MessageView]:
        """As ``Cache.messages_before``: up to ``limit`` shown messages (no replaced
        assistant reply, sync rule 10) with ``sort_key < before`` (the newest when None),
        ascending."""
        where = "" if before is None else " AND sort_key < ?"
        params = (conversation_id,) + (() if before is None else (before,)) + (limit,)
        rows = self._conn.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM message WHERE {_SHOWN}{where} "
            "ORDER BY sort_key DESC LIMIT ?", params).fetchall()
        rows.reverse()
        return self._views(rows, conversation_id)

    def messages_after(self, conversation_id: str, after: SortKey,
                       limit: int = 50) -> list[MessageView]:
        """As ``Cache.messages_after``: up to ``limit`` shown messages with ``sort_key >
        after``, ascending."""
        rows = self._conn.execute(
            f"SELECT {_MESSAGE_COLUMNS} FROM message WHERE {_SHOWN} AND sort_key > ? "
            "ORDER BY sort_key LIMIT ?", (conversation_id, after, limit)).fetchall()
        return self._views(rows, conversation_id)

    def message_window_around(self, conversation_id: str, message_id: str,
                              limit: int = 50) -> list[MessageView]:
        """As ``Cache.message_window_around``: about ``limit`` messages centred on
        ``message_id``, ascending; the newest page when it is not cached."""
        row = self._conn.execute(f"SELECT sort_key FROM message WHERE id = ? AND {_CONV}",
                                 (message_id, conversation_id)).fetchone()
        if row is None:
            return self.messages_before(conversation_id, None, limit)
        half = max(1, limit // 2)
        older = self.messages_before(conversation_id, row[0] + 1, half + 1)
        newer = self.messages_after(conversation_id, row[0], limit - len(older))
        return older + newer

    def has_older(self, conversation_id: str, before: SortKey | None = None) -> bool:
        """As ``Cache.has_older``: older shown messages than ``before`` exist in the cache, or
        on the server per the backfill state (``has_more`` or a gap)."""
        conn = self._conn
        if before is not None and conn.execute(
                f"SELECT 1 FROM message WHERE {_SHOWN} AND sort_key < ? LIMIT 1",
                (conversation_id, before)).fetchone():
            return True
        conv = conn.execute("SELECT pending, has_more FROM conversation WHERE id = ?",
                            (conversation_id,)).fetchone()
        if conv is None or conv[0]:
            return False
        return bool(conv[1]) or conn.execute(
            "SELECT 1 FROM gap WHERE conversation_id = ? LIMIT 1",
            (conversation_id,)).fetchone() is not None

    def _views(self, rows: list, cid: str) -> list[MessageView]:
        """Views of message rows (``_MESSAGE_COLUMNS``) of conversation ``cid``, with my
        messages' send state (:func:`~chat_tui.store.outbox_state.shown_state`)."""
        if not rows:
            return []
        conn, me = self._conn, self._me
        ids = [r[0] for r in rows]
        actions: dict[str, list[_Action]] = {}
        for oid, mid, state, error in conn.execute(
                f"SELECT id, message_id, state, last_error FROM outbox WHERE message_id IN "
                f"({', '.join('?' * len(ids))}) AND kind != 'read' ORDER BY id", ids):
            actions.setdefault(mid, []).append(_Action(oid, state, error))
        blocker = conn.execute(
            "SELECT min(id) FROM outbox WHERE conversation_id = ? AND state IN (?, ?)",
            (cid, *WAITS_FOR_USER)).fetchone()[0]
        others_read = conn.execute(
            "SELECT max(seq) FROM read_marker WHERE conversation_id = ? AND username != ?",
            (cid, me)).fetchone()[0]
        out = []
        for (mid, author, body, created, edited_at, seq, version, deleted, streaming, error,
             sort_key, pending_body, pending_deleted, model, stopped) in rows:
            mine = author == me
            state = reason = None
            if mine:
                state, reason = shown_state(seq, actions.get(mid, []), blocker, others_read)
            gone = bool(deleted or pending_deleted)
            out.append(MessageView(
                id=mid, conversation_id=cid, author=author,
                body="" if gone else (pending_body if pending_body is not None else body),
                created_at=dt(created),
                edited=edited_at is not None or (pending_body is not None and seq is not None),
                deleted=gone, streaming=bool(streaming), error=bool(error), mine=mine,
                state=state, failure_reason=reason, sort_key=sort_key, seq=seq,
                version=version, model=model, stopped=bool(stopped),
            ))
        return out

"""The cache file of one account: its connection settings, its lifecycle (open, create,
migrate, check, close), its write transactions under the process's write lock, and the
small lookups every part of the cache shares (conversation keys, the ``meta`` table).

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
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from peewee import DatabaseError

from chat_tui.store import migrations
from chat_tui.store.cipher import database_errors, open_raw_connection
from chat_tui.store.cipherdb import CacheDatabase
from chat_tui.store.cleanstamp import file_state, read_stamp, stamp_path
from chat_tui.store.convert import now
from chat_tui.store.errors import CacheLocked, SchemaTooNew
from chat_tui.store.models import (
    FTS_SCHEMA,
    FTS_TRIGGERS,
    INDEX_SCHEMA,
    SCHEMA_VERSION,
    build_models,
)
from chat_tui.store.outbox_state import WAITS_FOR_USER, OutboxState
from chat_tui.store.recovery import (
    CacheRecovery,
    move_aside,
    salvage_outbox,
)
from chat_tui.store.views import LOCAL_ECHO_BASE
from chat_tui.store.writelock import write_lock_for

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000
PRAGMAS = [
    ("auto_vacuum", "incremental"),  # only takes effect on a new file (before any table)
    ("journal_mode", "wal"),
    ("foreign_keys", 1),
    ("busy_timeout", BUSY_TIMEOUT_MS),
    ("synchronous", 2),  # FULL: a committed outbox row survives power loss
]


#: ``key=AUTO_KEY``: look the cache's key up where config keeps it (sync rule D7).
AUTO_KEY = "auto"


class CacheFile:
    """The SQLite file ``path`` of the account ``me`` (its username, docs/api.md): the
    base every part of :class:`~chat_tui.store.Cache` builds on.

    Attributes: ``path`` (Path), ``db`` (the Peewee database), ``m`` (its models,
    :func:`~chat_tui.store.models.build_models`), ``recovery`` (a
    :class:`~chat_tui.store.recovery.CacheRecovery` when :meth:`open` replaced an
    unreadable file, else None), ``full_check`` (whether the last open ran the full
    ``PRAGMA quick_check``), ``key`` (the raw key in use once open, None for a plain
    file; never log it).

    ``key``: 32 raw bytes open (or create) an encrypted file, None a plain one, and the
    default :data:`AUTO_KEY` asks :func:`chat_tui.config.cachekeys.resolve_cache_key` at
    :meth:`open` (the key of an encrypted cache, or a new key for a new cache when the
    configuration says so; sync rules D6, D7).
    """

    def __init__(self, path: Path | str, me: str, *, user_id: str = "", server_url: str = "",
                 key: bytes | None | str = AUTO_KEY):
        self.path = Path(path)
        #: The raw key given (32 bytes), None for a plain file, or :data:`AUTO_KEY`: the
        #: key is looked up at :meth:`open` (``chat_tui.config.cachekeys``, sync rule D7).
        self._key_arg = key
        self._me = me
        self._user_id = user_id
        self._server_url = server_url
        self.db = CacheDatabase(
            str(self.path), pragmas=PRAGMAS, lock_type="IMMEDIATE", timeout=BUSY_TIMEOUT_MS / 1000
        )
        self.m = build_models(self.db)
        self._wlock = write_lock_for(self.path)
        #: The thread inside :meth:`batch` (holding the write lock), or None.
        self._batch_owner: int | None = None
        self._opened = False
        #: Set by :meth:`open` when the file was unreadable and replaced (sync rule D4).
        self.recovery: CacheRecovery | None = None
        #: Whether the last open ran the full ``PRAGMA quick_check`` (sync rule D4).
        self.full_check = False

    # ------------------------------------------------------------------ transactions

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

    # ------------------------------------------------------------------ lifecycle

    @property
    def me(self) -> str:
        """Username of the account (str)."""
        return self._me

    @property
    def server_url(self) -> str:
        """The account's server URL as given at construction ("" when not given)."""
        return self._server_url

    @property
    def user_id(self) -> str:
        """The account's server-chosen user id as given at construction ("" when not given)."""
        return self._user_id

    @property
    def is_open(self) -> bool:
        """True once :meth:`open` succeeded."""
        return self._opened

    def open(self) -> None:
        """Create or migrate the file and make it ready. Idempotent.

        Before a migration a copy ``<name>.v<old>.bak`` is written next to the file. An
        unreadable file is moved aside and replaced by a fresh one, its outbox salvaged
        (sync rule D4; :attr:`recovery` says what happened). Runs big work: call it from a
        worker thread when a UI is running.

        Raises:
            SchemaTooNew: ``PRAGMA user_version`` is newer than this code.
            CacheLocked: the file is encrypted and the key is missing or wrong (sync rule
                D8); nothing is changed.
            peewee.DatabaseError: the fresh file cannot be created either.
        """
        if self._opened:
            return
        self._wlock.acquire()
        try:
            self._open_locked()
        finally:
            self._wlock.release()

    @property
    def key(self) -> bytes | None:
        """The raw key of the open file (32 bytes), or None for a plain file."""
        return self.db.key

    def _open_locked(self) -> None:
        if self._opened:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._key_arg != AUTO_KEY:
            self.db.key = self._key_arg  # type: ignore[assignment]
            self._open_or_recover()
            return
        from chat_tui.config.cachekeys import forget_remembered, remembered

        had_memo = remembered(self.path)
        self.db.key = _pick_key(self.path)
        try:
            self._open_or_recover()
        except CacheLocked:
            if not had_memo:
                raise
            # The key remembered in this process is stale (another process changed it):
            # look it up again, once.
            forget_remembered(self.path)
            self.db.key = _pick_key(self.path)
            self._open_or_recover()

    def _open_or_recover(self) -> None:
        """Open the file with ``self.db.key``; a damaged one is recovered (sync rule D4).

        Raises:
            SchemaTooNew, CacheLocked: as :meth:`open`.
        """
        try:
            self._open_file()
            return
        except (SchemaTooNew, CacheLocked):
            raise
        except (DatabaseError, *database_errors()) as exc:
            reason = str(exc) or type(exc).__name__
        self.db.close()
        if self.db.key is not None and self.path.exists():
            # A key that does not open the first page is a missing or wrong key, not a
            # damaged file: never moved aside without the user (sync rule D8).
            open_raw_connection(self.path, self.db.key, readonly=True).close()
        log.error("cache %s is unreadable (%s): moving it aside", self.path, reason)
        salvaged = salvage_outbox(self.path, self.db.key)
        moved = move_aside(self.path)
        self._open_file()
        recovered = self._requeue_salvaged(salvaged) if salvaged is not None else 0
        self.recovery = CacheRecovery(self.path, moved, reason, salvaged is not None,
                                      recovered)
        log.warning("%s", self.recovery.message)

    def _requeue_salvaged(self, rows: Sequence[dict]) -> int:
        """Put the outbox ``rows`` read from a damaged file (:func:`salvage_outbox`) into the
        fresh, open cache, in their order, with their ids (idempotency keys): a message the
        server already has is acknowledged once, never duplicated. Read markers are left out
        (not user text; the next read sets them again); failed and expired actions keep their
        state, every other one is queued. Returns how many messages (sends) came back."""
        C, M = self.m.Conversation, self.m.Message
        me = self.me
        sends = 0
        with self._write():
            for row in rows:
                kind, cid, mid = row["kind"], row["conversation_id"], row["message_id"]
                payload = json.loads(row["payload"] or "{}")
                if kind == "read":
                    continue
                if kind == "create_conversation":
                    t = now()
                    C.insert(id=cid, title=payload.get("title") or "…", creator=me,
                             members=json.dumps(sorted(set(payload.get("members", [])) | {me})),
                             assistant=bool(payload.get("assistant")), created_at=t,
                             updated_at=t, last_activity_at=t, pending=True,
                             has_more=False, model=payload.get("model"),
                             system_prompt=payload.get("system_prompt"),
                             ).on_conflict_ignore().execute()
                else:
                    self._ensure_conversation_stub(cid)
                state = row["state"] if row["state"] in WAITS_FOR_USER else OutboxState.QUEUED
                oid = self.m.Outbox.insert(
                    kind=kind, conversation_id=cid, message_id=mid, payload=row["payload"],
                    state=state, last_error=row.get("last_error"),
                    created_at=row.get("created_at") or now(),
                    queued_at=row.get("queued_at") or row.get("created_at") or now(),
                ).execute()
                if kind == "send":
                    sends += 1
                    M.insert(id=mid, conv=self._ckey(cid), author=me,
                             body=payload.get("body", ""),
                             created_at=row.get("created_at") or now(),
                             sort_key=LOCAL_ECHO_BASE + oid).on_conflict_ignore().execute()
        return sends

    def _open_file(self) -> None:
        """Open, create or migrate the file, then ``PRAGMA quick_check`` it (sync rule D4).

        Raises sqlite3.DatabaseError / peewee.DatabaseError when it is not a healthy
        SQLite cache, SchemaTooNew when it is too new."""
        state = self._file_state()  # before any connection makes a WAL file
        version = migrations.read_version(self.path, self.db.key)
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
                    stamp_path(self.path).write_text(state, encoding="ascii")

    def _file_state(self) -> str | None:
        return file_state(self.path)

    def _read_stamp(self) -> str | None:
        return read_stamp(self.path)

    def file_size(self) -> int:
        """Bytes used by the database pages (page_count * page_size)."""
        pages = self.db.execute_sql("PRAGMA page_count").fetchone()[0]
        size = self.db.execute_sql("PRAGMA page_size").fetchone()[0]
        return pages * size

    # ------------------------------------------------------------------ shared lookups

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

    def _ensure_conversation_stub(self, cid: str) -> None:
        """Insert a placeholder row for conversation ``cid`` when it is not cached (title
        ``…``, ``has_more``), so a message of it can be stored before its sync arrives. In
        the caller's transaction."""
        C = self.m.Conversation
        if not C.select().where(C.id == cid).exists():
            C.insert(id=cid, title="…", creator="", members="[]", has_more=True).execute()

    def _get_meta(self, key: str) -> str | None:
        row = self.m.Meta.get_or_none(self.m.Meta.key == key)
        return None if row is None else row.value

    def _set_meta(self, key: str, value: str | None) -> None:
        self.m.Meta.insert(key=key, value=value).on_conflict_replace().execute()


def _pick_key(path: Path) -> bytes | None:
    """The key to open ``path`` with (:func:`chat_tui.config.cachekeys.resolve_cache_keys`,
    sync rule D7). While a ``cache rekey`` is pending (two keys, sync rule D9) the one that
    opens the file wins, and a pending one that does is made the only key.

    Raises:
        CacheLocked: the key is missing (sync rule D8).
    """
    from chat_tui.config.cachekeys import (
        CacheKeyMissing,
        promote_pending_key,
        resolve_cache_keys,
    )

    try:
        keys = resolve_cache_keys(path)
    except (CacheKeyMissing, ValueError) as exc:
        raise CacheLocked(path, str(exc)) from exc
    if len(keys) < 2:
        return keys[0] if keys else None
    for n, key in enumerate(keys):
        try:
            open_raw_connection(path, key, readonly=True).close()
        except CacheLocked:
            continue
        if n:
            promote_pending_key(path)
        return key
    return keys[0]  # none opens: the open reports it (sync rule D8)


def delete_cache_file(path: Path) -> None:
    """Remove a cache file and its WAL/SHM companions and clean stamp (missing files are
    fine). Raises OSError when one cannot be removed."""
    for suffix in ("", "-wal", "-shm", ".clean", ".key.json", ".rewrite"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def sqlite_version() -> str:
    """Version of the SQLite library in use."""
    return sqlite3.sqlite_version


__all__ = ["AUTO_KEY", "BUSY_TIMEOUT_MS", "PRAGMAS", "CacheFile", "delete_cache_file", "sqlite_version"]

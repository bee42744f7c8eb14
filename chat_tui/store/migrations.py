"""Versioned schema migrations of the account cache (``PRAGMA user_version``).

Registry: :data:`MIGRATIONS` maps a version ``n`` to the function that upgrades ``n-1`` to
``n`` using ``playhouse.migrate``. Before migrating, a consistent copy of the file is
written to ``<file>.v<old>.bak`` (SQLite online backup, so the WAL is included). A
migration may rebuild cache tables but never drops the outbox or drafts (bug class 8).

- v1: the first released schema (``schema_v1.sql``).
- v2: ``conversation.removed`` (the caller left), ``outbox.queued_at`` (the expiry clock,
  separate from ``created_at`` so "send anyway" can restart it), and the ``gap`` table
  (holes left by ``limited`` syncs).
- v3: ``conversation.synced_seq`` (highest seq received through sync/backfill, what a
  ``limited`` gap is measured against, sync rule S4); filled with the highest cached seq.
- v4: a smaller file (benchmarks/NOTES.md): ``conversation.pk``, an integer key that
  ``message.conv`` holds instead of the conversation's UUID; the FTS5 index reads bodies
  from ``message`` (external content, view ``message_text``) instead of keeping a copy;
  the indexes ``message.conversation_id`` (covered by ``(conv, sort_key)``) and
  ``message.seq`` (no query needs it) are gone, and retention's index on ``created_at``
  is keyed by the day (``message_created_day``). ``conversation`` and ``message`` are
  rebuilt (the SQLite 12-step way: new table, copy, drop, rename) keeping every row and
  ``pk``; outbox, drafts, read markers, gaps and UI state are not touched.
- v5: ``conversation.model`` and ``conversation.system_prompt`` (what the assistant answers
  with), ``message.model`` (the model that wrote a reply) and ``message.stopped`` (a member
  stopped the reply): columns added, nothing rebuilt.
- v6: the tables ``remote_room`` and ``remote_event``, a Matrix account's ids
  (docs/sync.md, rule M4); nothing else changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from peewee import BooleanField, FloatField, IntegerField, SqliteDatabase

from chat_tui.store.cipher import open_raw_connection

log = logging.getLogger(__name__)


def read_version(path: Path, key: bytes | None = None) -> int:
    """``PRAGMA user_version`` of the file at ``path`` (0 when it does not exist), opened
    with the raw ``key`` when it is encrypted (:func:`~chat_tui.store.cipher.open_raw_connection`).

    Raises:
        CacheLocked: ``key`` does not open the file.
        sqlite3.DatabaseError: a plain file that is not a database.
    """
    if not path.exists():
        return 0
    con = open_raw_connection(path, key)
    try:
        return int(con.execute("PRAGMA user_version").fetchone()[0])
    finally:
        con.close()


def backup(path: Path, version: int, key: bytes | None = None) -> Path:
    """Write a consistent copy of the cache to ``<path>.v<version>.bak``; returns its path.
    An encrypted cache's copy is encrypted with the same raw ``key`` (sync rule D6)."""
    target = path.with_name(f"{path.name}.v{version}.bak")
    src = open_raw_connection(path, key)
    dst = open_raw_connection(target, key)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    return target


def reclaim_free_pages(db: SqliteDatabase) -> None:
    """``PRAGMA incremental_vacuum``: give every free page back to the file system (the file
    shrinks at the next checkpoint). Python's ``sqlite3`` stops this pragma after its first
    step (one page: it yields rows without columns), so it runs through ``executescript``,
    which steps it to the end. Call outside a transaction."""
    db.connection().executescript("PRAGMA incremental_vacuum;")


def _migrator(db: SqliteDatabase) -> tuple[Any, Callable[..., None]]:
    """``(SqliteMigrator(db), playhouse.migrate.migrate)``, imported only when an old file
    is upgraded: ``playhouse.migrate`` (and the ``postgres_ext`` it pulls in) cost every
    start ~4 ms before the first frame (benchmarks/NOTES.md)."""
    from playhouse.migrate import SqliteMigrator, migrate

    return SqliteMigrator(db), migrate


def _v2(db: SqliteDatabase, models: SimpleNamespace) -> None:
    migrator, run_operations = _migrator(db)
    run_operations(
        migrator.add_column("conversation", "removed", BooleanField(default=False)),
        migrator.add_column("outbox", "queued_at", FloatField(default=0.0)),
    )
    db.execute_sql("UPDATE outbox SET queued_at = created_at")
    models.Gap.create_table(safe=True)


def _v3(db: SqliteDatabase, models: SimpleNamespace) -> None:
    migrator, run_operations = _migrator(db)
    run_operations(migrator.add_column("conversation", "synced_seq", IntegerField(null=True)))
    db.execute_sql("UPDATE conversation SET synced_seq = (SELECT max(seq) FROM message "
                   "WHERE message.conversation_id = conversation.id)")


_CONVERSATION_V3_COLUMNS = (
    "id, title, creator, members, assistant, created_at, updated_at, last_activity_at, "
    "unread_count, pending, removed, has_more, read_seq, read_message_id, synced_seq")
_MESSAGE_V3_COLUMNS = (
    "pk, id, author, body, created_at, edited_at, seq, version, deleted, streaming, error, "
    "sort_key, pending_body, pending_deleted")


def _v4(db: SqliteDatabase, models: SimpleNamespace) -> None:
    from chat_tui.store.models import FTS_SCHEMA, INDEX_SCHEMA

    sql = db.execute_sql
    # The old FTS index and its triggers go first (they name ``message``); renaming the old
    # tables must not rewrite ``gap``'s reference to ``conversation`` (legacy_alter_table).
    for trigger in ("message_ai", "message_ad", "message_au"):
        sql(f"DROP TRIGGER IF EXISTS {trigger}")
    sql("DROP TABLE IF EXISTS message_index")
    for index in ("message_id", "message_conversation_id", "message_seq",
                  "message_conversation_id_sort_key", "message_created_at"):
        sql(f'DROP INDEX IF EXISTS "{index}"')
    sql("PRAGMA legacy_alter_table = ON")
    try:
        sql('ALTER TABLE "message" RENAME TO "message_v3"')
        sql('ALTER TABLE "conversation" RENAME TO "conversation_v3"')
    finally:
        sql("PRAGMA legacy_alter_table = OFF")
    # A message whose conversation row is missing (none should be: foreign keys were on)
    # keeps its conversation as a stub rather than being dropped (it may be a local echo).
    sql("INSERT INTO conversation_v3 (id, title, creator, members, assistant, unread_count, "
        "pending, removed, has_more) SELECT DISTINCT m.conversation_id, '…', '', '[]', 0, 0, "
        "0, 0, 1 FROM message_v3 m WHERE m.conversation_id NOT IN "
        "(SELECT id FROM conversation_v3)")
    db.create_tables([models.Conversation, models.Message])
    # The old rowid becomes ``pk``: stable from here on (INTEGER PRIMARY KEY).
    sql(f"INSERT INTO conversation (pk, {_CONVERSATION_V3_COLUMNS}) "
        f"SELECT rowid, {_CONVERSATION_V3_COLUMNS} FROM conversation_v3")
    sql(f"INSERT INTO message (conv, {_MESSAGE_V3_COLUMNS}) "
        f"SELECT c.pk, {', '.join('m.' + c.strip() for c in _MESSAGE_V3_COLUMNS.split(','))} "
        "FROM message_v3 m JOIN conversation c ON c.id = m.conversation_id ORDER BY m.pk")
    copied = sql("SELECT count(*) FROM message").fetchone()[0]
    held = sql("SELECT count(*) FROM message_v3").fetchone()[0]
    if copied != held:
        raise RuntimeError(f"v4 migration copied {copied} of {held} messages")
    sql("DROP TABLE message_v3")
    sql("DROP TABLE conversation_v3")
    for statement in INDEX_SCHEMA + FTS_SCHEMA:
        sql(statement)
    sql("INSERT INTO message_index(message_index) VALUES ('rebuild')")


def _v5(db: SqliteDatabase, models: SimpleNamespace) -> None:
    # Plain ADD COLUMN (a NOT NULL one with its default): no table is rebuilt, so the view
    # and the FTS index over ``message`` stay as they are (``playhouse.migrate`` rebuilds a
    # table to add NOT NULL, which the view ``message_text`` does not survive).
    wanted = (("conversation", "model", "TEXT"),
              ("conversation", "system_prompt", "TEXT"),
              ("message", "model", "TEXT"),
              ("message", "stopped", "INTEGER NOT NULL DEFAULT 0"))
    # A file coming from v3 has them already: v4 rebuilt its tables from today's models.
    held = {(table, row[1]) for table in ("conversation", "message")
            for row in db.execute_sql(f'PRAGMA table_info("{table}")').fetchall()}
    for table, column, kind in wanted:
        if (table, column) not in held:
            db.execute_sql(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {kind}')


def _matrix_ids(db: SqliteDatabase, models: SimpleNamespace) -> None:
    db.create_tables([models.RemoteRoom, models.RemoteEvent], safe=True)


MIGRATIONS: dict[int, Callable[[SqliteDatabase, SimpleNamespace], None]] = {
    2: _v2, 3: _v3, 4: _v4, 5: _v5, 6: _matrix_ids}


def migrate(db: SqliteDatabase, path: Path, version: int, models: SimpleNamespace) -> None:
    """Upgrade the open database from ``version`` to the newest, one step per transaction,
    after writing a backup copy. Foreign keys are off while tables are rebuilt (so a
    rebuild never cascades), and checked afterwards.

    Raises:
        RuntimeError: a step is missing from :data:`MIGRATIONS`, or a foreign key check fails.
    """
    from chat_tui.store.models import FTS_TRIGGERS, SCHEMA_VERSION

    copy = backup(path, version, getattr(db, "key", None))
    log.info("migrating %s from v%d to v%d (copy kept at %s)", path, version, SCHEMA_VERSION,
             copy)
    db.execute_sql("PRAGMA foreign_keys = OFF")
    try:
        for target in range(version + 1, SCHEMA_VERSION + 1):
            step = MIGRATIONS.get(target)
            if step is None:
                raise RuntimeError(f"no migration to schema v{target}")
            with db.atomic():
                step(db, models)
                for sql in FTS_TRIGGERS:
                    db.execute_sql(sql)
                db.execute_sql(f"PRAGMA user_version = {target}")
        problems = db.execute_sql("PRAGMA foreign_key_check").fetchall()
        if problems:
            raise RuntimeError(f"foreign key check failed after migration: {problems[:3]}")
        # Rebuilt tables leave their old pages free: give them back to the file system.
        reclaim_free_pages(db)
    finally:
        db.execute_sql("PRAGMA foreign_keys = ON")

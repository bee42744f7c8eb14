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
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

from peewee import BooleanField, FloatField, IntegerField, SqliteDatabase
from playhouse.migrate import SqliteMigrator
from playhouse.migrate import migrate as run_operations

log = logging.getLogger(__name__)


def read_version(path: Path) -> int:
    """``PRAGMA user_version`` of the file at ``path`` (0 when it does not exist)."""
    if not path.exists():
        return 0
    con = sqlite3.connect(str(path))
    try:
        return int(con.execute("PRAGMA user_version").fetchone()[0])
    finally:
        con.close()


def backup(path: Path, version: int) -> Path:
    """Write a consistent copy of the cache to ``<path>.v<version>.bak``; returns its path."""
    target = path.with_name(f"{path.name}.v{version}.bak")
    src = sqlite3.connect(str(path))
    dst = sqlite3.connect(str(target))
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    return target


def _v2(db: SqliteDatabase, models: SimpleNamespace) -> None:
    migrator = SqliteMigrator(db)
    run_operations(
        migrator.add_column("conversation", "removed", BooleanField(default=False)),
        migrator.add_column("outbox", "queued_at", FloatField(default=0.0)),
    )
    db.execute_sql("UPDATE outbox SET queued_at = created_at")
    models.Gap.create_table(safe=True)


def _v3(db: SqliteDatabase, models: SimpleNamespace) -> None:
    migrator = SqliteMigrator(db)
    run_operations(migrator.add_column("conversation", "synced_seq", IntegerField(null=True)))
    db.execute_sql("UPDATE conversation SET synced_seq = (SELECT max(seq) FROM message "
                   "WHERE message.conversation_id = conversation.id)")


MIGRATIONS: dict[int, Callable[[SqliteDatabase, SimpleNamespace], None]] = {2: _v2, 3: _v3}


def migrate(db: SqliteDatabase, path: Path, version: int, models: SimpleNamespace) -> None:
    """Upgrade the open database from ``version`` to the newest, one step per transaction,
    after writing a backup copy. Foreign keys are off while tables are rebuilt (so a
    rebuild never cascades), and checked afterwards.

    Raises:
        RuntimeError: a step is missing from :data:`MIGRATIONS`, or a foreign key check fails.
    """
    from chat_tui.store.models import FTS_TRIGGERS, SCHEMA_VERSION

    copy = backup(path, version)
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
    finally:
        db.execute_sql("PRAGMA foreign_keys = ON")

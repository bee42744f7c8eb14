"""Recovery of an unreadable cache file (sync rule D4): read what is left of its outbox,
move the file aside (never delete it), and queue the salvaged actions again in the fresh
cache, so unsent messages survive a damaged file (bug class 7)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from chat_tui.store.cipher import database_errors, open_raw_connection
from chat_tui.store.errors import CacheLocked


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


def salvage_outbox(path: Path, key: bytes | None = None) -> list[dict] | None:
    """Read the outbox rows of a damaged cache at ``path`` (encrypted with the raw ``key``
    when given), oldest first, as dicts of column -> value; None when its outbox cannot be
    read (never raises)."""
    errors = (sqlite3.Error, CacheLocked, *database_errors())
    try:
        con = open_raw_connection(path, key, readonly=True)
    except errors:
        return None
    errors = (sqlite3.Error, *database_errors())
    try:
        cols = [r[1] for r in con.execute("PRAGMA table_info(outbox)")]
        if not {"kind", "conversation_id", "message_id", "payload", "state"} <= set(cols):
            return None
        cursor = con.execute("SELECT * FROM outbox ORDER BY id")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]
    except errors:
        return None
    finally:
        con.close()


def move_aside(path: Path) -> Path:
    """Rename the cache (and its WAL/SHM) to ``<name>.corrupt-<UTC time>``; returns the new
    path of the file. Raises OSError when a rename fails."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(path) + suffix)
        if src.exists():
            src.rename(Path(str(target) + suffix))
    return target


def start_fresh(path: Path) -> Path:
    """Set aside a cache that cannot be opened (sync rule D8: a missing or wrong key) so a
    fresh one is made at the next open: the file, its WAL/SHM, and its key's marker, key
    file or keyring entry move to ``<name>.corrupt-<UTC time>`` (never deleted; the file
    opens again there once its key is back). Returns the new path of the file.

    Raises:
        OSError: a rename fails.
    """
    from chat_tui.config.cachekeys import set_aside_key

    moved = move_aside(path)
    set_aside_key(path, moved)
    Path(str(path) + ".clean").unlink(missing_ok=True)
    return moved


__all__ = ["CacheRecovery", "move_aside", "salvage_outbox", "start_fresh"]

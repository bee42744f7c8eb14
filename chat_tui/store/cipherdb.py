"""The Peewee database of the cache file: plain ``sqlite3`` or SQLCipher (sync rule D6).

Kept apart from :mod:`chat_tui.store.cipher` so that module stays standard-library only
(the first frame's reader uses it before Peewee is imported).
"""

from __future__ import annotations

from typing import Any

from peewee import SqliteDatabase

from chat_tui.store.cipher import connect_sqlcipher


class CacheDatabase(SqliteDatabase):
    """A Peewee ``SqliteDatabase`` for the cache file. While :attr:`key` is None its
    connections are plain ``sqlite3`` ones; with a 32-byte raw :attr:`key` they are
    ``sqlcipher3`` connections keyed before the pragmas run, so WAL, ``synchronous``,
    ``busy_timeout`` and FTS5 work as on a plain file (sync rule D6). Set :attr:`key`
    while no connection is open."""

    key: bytes | None = None

    def _connect(self) -> Any:
        if self.key is None:
            return super()._connect()
        conn = connect_sqlcipher(self.database, self.key, timeout=self._timeout,
                                 isolation_level=None, **self.connect_params)
        try:
            self._add_conn_hooks(conn)
        except Exception:
            conn.close()
            raise
        return conn


__all__ = ["CacheDatabase"]

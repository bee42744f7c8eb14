"""Switching a cache between plain and encrypted, or to another key, in place (sync rule
D9): ``chat-tui cache encrypt``, ``cache decrypt`` and ``cache rekey``.

The cache is written again into ``<file>.rewrite`` with ``sqlcipher_export`` (the WAL is
read through the source connection, so nothing committed is left behind), the copy is
checked (``PRAGMA quick_check``, the same schema version and row counts of every table),
fsync'd, and only then swapped in with ``os.replace`` and the folder fsync'd. The key
bookkeeping is ordered around the swap so that ``kill -9`` at any point leaves either the
old file with a key that opens it or the new file with a key that opens it:

- encrypt: the new key is kept first (a marker beside a file that still has the plain
  SQLite header is ignored), then the swap;
- rekey: the new key is kept as *pending* beside the current one (opening tries both),
  the swap, then the new key becomes the only one;
- decrypt: the swap, then the key is forgotten (the plain header wins over the marker).

The caller holds the account's engine lock (no other process has the file open).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from chat_tui.store.cipher import key_pragma
from chat_tui.store.errors import CacheLocked, StoreError

#: Tables whose row counts must match between the old and the new file.
CHECKED_TABLES = ("conversation", "message", "outbox", "read_marker", "gap", "draft",
                  "scroll_anchor", "meta")


def _connect(path: Path, key: bytes | None) -> Any:
    """A ``sqlcipher3`` connection to ``path`` (plain when ``key`` is None), checked.

    Raises:
        CacheLocked: ``key`` does not open it.
    """
    from sqlcipher3 import dbapi2

    con = dbapi2.connect(str(path), isolation_level=None)
    try:
        if key is not None:
            con.execute(key_pragma(key))
        con.execute("SELECT count(*) FROM sqlite_schema").fetchone()
    except dbapi2.DatabaseError as exc:
        con.close()
        raise CacheLocked(path, str(exc)) from exc
    return con


def _counts(con: Any, schema: str = "main") -> dict[str, int]:
    names = {r[0] for r in con.execute(
        f"SELECT name FROM {schema}.sqlite_schema WHERE type = 'table'")}
    return {t: con.execute(f'SELECT count(*) FROM {schema}."{t}"').fetchone()[0]
            for t in CHECKED_TABLES if t in names}


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def rewrite_cache(path: Path, old_key: bytes | None, new_key: bytes | None) -> None:
    """Write the cache at ``path`` (opened with ``old_key``, None for plain) again with
    ``new_key`` (None for plain) and swap it in atomically (sync rule D9). Key bookkeeping
    is the caller's, around this call (see the module docstring).

    Raises:
        CacheLocked: ``old_key`` does not open the file.
        StoreError: the copy does not match the original (the original is kept, the copy
            removed), or the old file still has a WAL after its last connection closed.
        OSError: writing, fsync or the rename failed (the original is kept).
    """
    tmp = path.with_name(path.name + ".rewrite")
    _remove(tmp)
    src = _connect(path, old_key)
    try:
        version = src.execute("PRAGMA user_version").fetchone()[0]
        before = _counts(src)
        target_key = "''" if new_key is None else '"' + key_pragma(new_key).split('"')[1] + '"'
        quoted = str(tmp).replace("'", "''")
        src.execute(f"ATTACH DATABASE '{quoted}' AS target KEY {target_key}")
        src.execute("PRAGMA target.auto_vacuum = INCREMENTAL")
        src.execute("SELECT sqlcipher_export('target')")
        src.execute(f"PRAGMA target.user_version = {int(version)}")
        src.execute("DETACH DATABASE target")
        src.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        src.close()
    try:
        copy = _connect(tmp, new_key)
        try:
            check = copy.execute("PRAGMA quick_check").fetchone()[0]
            copied = (copy.execute("PRAGMA user_version").fetchone()[0], _counts(copy))
        finally:
            copy.close()
        if check != "ok" or copied != (version, before):
            raise StoreError(f"the rewritten cache does not match ({check}; {copied} != "
                             f"{(version, before)}): the original is kept")
        if Path(str(path) + "-wal").exists() and Path(str(path) + "-wal").stat().st_size:
            raise StoreError(f"{path} still has a write-ahead log: is another process using "
                             "it? The original is kept")
        _fsync(tmp)
    except BaseException:
        _remove(tmp)
        raise
    Path(str(tmp) + "-journal").unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):  # the old file's: never applied to the new one
        Path(str(path) + suffix).unlink(missing_ok=True)
    os.replace(tmp, path)
    _fsync(path.parent)
    Path(str(path) + ".clean").unlink(missing_ok=True)


def _current_key(path: Path) -> bytes | None:
    """The key that opens ``path`` now (None: plain), a pending one included.

    Raises:
        CacheLocked: the file is encrypted and no key at hand opens it.
    """
    from chat_tui.store.cachefile import _pick_key

    key = _pick_key(path)
    _connect(path, key).close()
    return key


def encrypt_cache(path: Path, where: str) -> None:
    """Encrypt the plain cache at ``path`` with a fresh key kept in ``where``
    (``keyring``, ``file`` or ``passphrase``: asked twice), crash-safe (sync rule D9).

    Raises:
        StoreError: the cache is already encrypted, or the copy does not match.
        CacheKeyMissing, keyring.errors.KeyringError, OSError: the key cannot be kept.
    """
    from chat_tui.config.cachekeys import new_cache_key

    if _current_key(path) is not None:
        raise StoreError(f"{path} is already encrypted (`chat-tui cache rekey` changes "
                         "its key)")
    key = new_cache_key(path, where)  # ignored while the file has the plain header
    rewrite_cache(path, None, key)


def decrypt_cache(path: Path) -> None:
    """Write the encrypted cache at ``path`` back as a plain file and forget its key,
    crash-safe (sync rule D9).

    Raises:
        StoreError: the cache is not encrypted, or the copy does not match.
        CacheLocked: its key is missing or wrong.
    """
    from chat_tui.config.cachekeys import delete_cache_key

    key = _current_key(path)
    if key is None:
        raise StoreError(f"{path} is not encrypted")
    rewrite_cache(path, key, None)
    delete_cache_key(path)  # the plain header already wins over the marker


def rekey_cache(path: Path, where: str) -> None:
    """Give the encrypted cache at ``path`` a fresh key kept in ``where``, crash-safe
    (sync rule D9): the new key is pending beside the old one until the swap is done.

    Raises:
        StoreError: the cache is not encrypted, or the copy does not match.
        CacheLocked: its key is missing or wrong.
        CacheKeyMissing, keyring.errors.KeyringError, OSError: the key cannot be kept.
    """
    import secrets

    from chat_tui.config import cachekeys

    old = _current_key(path)
    if old is None:
        raise StoreError(f"{path} is not encrypted (`chat-tui cache encrypt` encrypts it)")
    salt = None
    if where == "passphrase":
        salt = secrets.token_bytes(16)
        first = cachekeys._prompt(f"new passphrase for the chat-tui cache {path}: ")
        if not first or cachekeys._prompt("the same passphrase again: ") != first:
            raise cachekeys.CacheKeyMissing("the passphrases are empty or differ")
        key = cachekeys.derive_key(first, salt)
    else:
        key = secrets.token_bytes(32)
    cachekeys.store_cache_key(path, key, where, salt=salt, pending=True)
    rewrite_cache(path, old, key)
    cachekeys.promote_pending_key(path)


__all__ = ["CHECKED_TABLES", "decrypt_cache", "encrypt_cache", "rekey_cache",
           "rewrite_cache"]

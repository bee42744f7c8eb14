"""Opening the cache file through SQLCipher (sync rules D6, D7).

An encrypted cache is a SQLCipher 4 file (``sqlcipher3``, which bundles SQLCipher with
FTS5) keyed with a random 256-bit raw key: ``PRAGMA key = "x'<64 hex digits>'"`` skips
SQLCipher's passphrase key derivation, so opening costs no KDF (sync rule D6). A plain
cache is an ordinary SQLite file opened with the standard library's ``sqlite3``.

``sqlcipher3`` is imported only when a key is used, so a plain cache's start never pays
for it. :func:`open_raw_connection` is the one way code outside the ORM (recovery,
migrations' backup, the rewrite) opens the file, and :func:`connect_sqlcipher` the one place
a ``sqlcipher3`` connection is keyed. This module imports only the standard library (the
first frame's reader, :mod:`chat_tui.store.first_frame`, uses it before Peewee is loaded);
the ORM's database class is :class:`chat_tui.store.cipherdb.CacheDatabase`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from chat_tui.store.errors import CacheLocked

#: Bytes of a raw cache key (AES-256).
KEY_BYTES = 32
#: The first 16 bytes of every plain SQLite file; an encrypted file starts with its salt.
SQLITE_HEADER = b"SQLite format 3\x00"


def new_key() -> bytes:
    """A fresh random 256-bit key (``secrets.token_bytes``), 32 bytes."""
    import secrets  # here, not at import: hashlib and OpenSSL's libcrypto come with it

    return secrets.token_bytes(KEY_BYTES)


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
        raise ValueError(f"a cache key is {KEY_BYTES} raw bytes")


def key_pragma(key: bytes) -> str:
    """The ``PRAGMA key`` statement for the raw ``key`` (32 bytes; ValueError otherwise).
    Never log it."""
    _check_key(key)
    return f"PRAGMA key = \"x'{bytes(key).hex()}'\""


def is_plain_sqlite(path: Path) -> bool | None:
    """Whether the file at ``path`` starts with the plain SQLite header; None when it is
    missing or empty (a new cache). An encrypted file, like a damaged one, gives False."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return None
    if not head:
        return None
    return head == SQLITE_HEADER


def database_errors() -> tuple[type[BaseException], ...]:
    """The DB-API ``DatabaseError`` classes a raw connection may raise: ``sqlite3``'s and,
    when it is loaded, ``sqlcipher3``'s (they share no base class)."""
    import sys

    errors: list[type[BaseException]] = [sqlite3.DatabaseError]
    module = sys.modules.get("sqlcipher3.dbapi2")
    if module is not None:
        errors.append(module.DatabaseError)
    return tuple(errors)


#: What a ``sqlcipher3`` connection is set to after its key: SQLite's own defaults, which
#: the standard library's build (a plain cache) has and the ``sqlcipher3`` wheel's build
#: does not (it compiles an 8 MiB page cache per connection and in-memory temporary
#: tables). With them, an encrypted cache holds the memory a plain one holds: the wheel's
#: defaults measured 6.7 MB more heap in the app on the 1,000,000-message cache.
SQLITE_DEFAULTS = (("cache_size", -2000), ("temp_store", 1))


def connect_sqlcipher(database: str, key: bytes, **params: Any) -> Any:
    """A ``sqlcipher3`` connection to ``database`` (a path, or a ``file:`` URI with
    ``uri=True`` in ``params``, which go to ``sqlcipher3.dbapi2.connect`` unchanged) keyed
    with the raw ``key`` (32 bytes) before any other statement (sync rule D6: no key
    derivation), then given SQLite's default page cache and temporary storage
    (:data:`SQLITE_DEFAULTS`; setting the page cache reads the file's first page).

    Raises:
        sqlcipher3.dbapi2.DatabaseError: ``key`` does not open an existing file (or the
            file is not a database).
        ValueError: ``key`` is not 32 bytes.
    """
    _check_key(key)
    from sqlcipher3 import dbapi2

    con = dbapi2.connect(database, **params)
    try:
        con.execute(key_pragma(key))
        for name, value in SQLITE_DEFAULTS:
            con.execute(f"PRAGMA {name} = {value}")
    except BaseException:
        con.close()
        raise
    return con


def open_raw_connection(path: Path | str, key: bytes | None, *, readonly: bool = False,
                        timeout: float = 5.0) -> Any:
    """A DB-API connection (``sqlite3.Connection``-compatible) to the cache at ``path``.

    ``key`` None opens a plain file with ``sqlite3``; a 32-byte ``key`` opens it with
    ``sqlcipher3`` and ``PRAGMA key`` before anything else, then reads the schema once so
    a wrong key fails here. ``readonly`` opens with ``mode=ro`` (the file must exist).

    Raises:
        CacheLocked: ``key`` is given and does not open the file (wrong key, a file that
            is not encrypted, or a damaged first page: SQLCipher cannot tell these apart).
        sqlite3.DatabaseError: a plain file that is not a database.
        ValueError: ``key`` is not 32 bytes.
    """
    target = f"file:{path}?mode=ro" if readonly else str(path)
    if key is None:
        return sqlite3.connect(target, uri=readonly, timeout=timeout)
    try:
        con = connect_sqlcipher(target, key, uri=readonly, timeout=timeout)
    except database_errors() as exc:
        raise CacheLocked(Path(path), str(exc)) from exc
    try:
        con.execute("SELECT count(*) FROM sqlite_schema").fetchone()
    except database_errors() as exc:
        con.close()
        raise CacheLocked(Path(path), str(exc)) from exc
    return con


def open_cache_readonly(path: Path | str) -> Any:
    """A read-only DB-API connection to the account cache at ``path`` with the key config
    keeps for it (none for a plain cache; sync rule D7): what a reader that runs before
    the ORM (the first frame) calls. The key is looked up once per process, so the cache's
    own open afterwards neither asks the keyring nor the user again.

    Raises:
        CacheLocked: the cache is encrypted and its key is missing or wrong (sync rule D8).
        sqlite3.DatabaseError: a plain file that is not a database.
        FileNotFoundError-like ``sqlite3.OperationalError``: no file at ``path``.
    """
    from chat_tui.config.cachekeys import CacheKeyMissing, load_cache_key

    try:
        key = load_cache_key(Path(path))
    except (CacheKeyMissing, ValueError) as exc:
        raise CacheLocked(Path(path), str(exc)) from exc
    return open_raw_connection(path, key, readonly=True)


__all__ = ["KEY_BYTES", "SQLITE_DEFAULTS", "SQLITE_HEADER", "connect_sqlcipher", "database_errors",
           "is_plain_sqlite", "key_pragma", "new_key", "open_cache_readonly",
           "open_raw_connection"]

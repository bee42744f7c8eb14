"""The client cache in tests: reading it directly (:func:`message_row`); the key choice of
config.toml (:func:`choose_cache_key`); a cache holding a known secret
(:func:`fill_with_secret`, :func:`secret_cache`) and every byte of its files
(:func:`file_bytes`), for the encryption rules D6-D9 of docs/sync.md."""

from __future__ import annotations

import uuid
from pathlib import Path

from chat_tui.store import Cache
from chat_tui.store.cachefile import AUTO_KEY
from tests.support.config import write_config
from tests.support.payloads import sync_response, wire_conversation, wire_message


def message_row(store, mid: str) -> dict:
    """The ``message`` row ``mid`` of an open :class:`~chat_tui.store.Cache` as a dict of
    column -> value ({} when there is none)."""
    cur = store.db.execute_sql("SELECT * FROM message WHERE id = ?", (mid,))
    names = [d[0] for d in cur.description]
    row = cur.fetchone()
    return {} if row is None else dict(zip(names, row, strict=True))


def choose_cache_key(choice: str) -> Path:
    """Write ``[cache] key = "<choice>"`` as the user's whole config.toml (sync rule D7:
    ``auto``, ``keyring``, ``file``, ``passphrase``, ``none``; any other text too, for the
    refusal); returns the file's path."""
    return write_config(f'[cache]\nkey = "{choice}"\n')


def fill_with_secret(store, secret: str) -> str:
    """Write ``secret`` into the open cache ``store`` in each place it keeps text: a
    message of bob in a new conversation (synced), a queued send (``<secret> (queued)``)
    and the draft (``<secret> (draft)``); the conversation is the last open one. Returns
    its id."""
    cid = str(uuid.uuid4())
    store.apply_sync(sync_response("1", [(wire_conversation(cid), [
        wire_message(cid, 1, "bob", secret)], False)]))
    store.enqueue_send(cid, secret + " (queued)")
    store.save_draft(cid, secret + " (draft)")
    store.set_last_conversation(cid)
    return cid


def secret_cache(path: Path, secret: str,
                 key: bytes | None | str = AUTO_KEY) -> tuple[str, bytes | None]:
    """Create alice's cache at ``path``, :func:`fill_with_secret` it and close it.
    ``key`` as :class:`~chat_tui.store.Cache` takes it: a raw key, None (plain), or by
    default looked up or made where config.toml says (sync rule D7). Returns ``(the
    conversation's id, the cache's raw key or None for a plain file)``."""
    store = Cache(path, "alice", key=key)
    store.open()
    try:
        return fill_with_secret(store, secret), store.key
    finally:
        store.close()


def file_bytes(path: Path) -> bytes:
    """Every byte of the cache ``path`` and of its companion files (``-wal``, ``-shm``,
    the clean stamp, ...): the files in its folder whose names begin with its name."""
    return b"".join(p.read_bytes() for p in path.parent.iterdir()
                    if p.name.startswith(path.name) and p.is_file())

"""The errors the cache raises to its callers (the engine, the UI, the CLI)."""

from __future__ import annotations


class StoreError(Exception):
    """A local action cannot be done; ``str()`` is a readable reason. Nothing was changed."""


class SchemaTooNew(StoreError):
    """The cache file was written by a newer chat-tui (``PRAGMA user_version`` higher than
    :data:`~chat_tui.store.models.SCHEMA_VERSION`); it is left untouched."""





class CacheLocked(StoreError):
    """The cache file at ``path`` cannot be opened with the key at hand (sync rule D8): the
    key is missing (keyring cleared, key file deleted), wrong (another passphrase), or the
    file's first page is damaged; SQLCipher cannot tell these apart. The file is left
    untouched; :func:`~chat_tui.store.recovery.start_fresh` moves it aside for a fresh
    cache when the user says so. ``reason`` is the detail (never a key)."""

    def __init__(self, path, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(
            f"the cache {path} is encrypted and cannot be opened ({reason}): its key is "
            "missing or wrong. Nothing was changed. Restore the key (keyring entry, key "
            "file or passphrase), or start a fresh cache with `chat-tui cache reset`: the "
            "unreadable file is kept aside, unsent messages in it stay there")
__all__ = ["CacheLocked", "SchemaTooNew", "StoreError"]

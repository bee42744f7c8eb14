"""The errors the cache raises to its callers (the engine, the UI, the CLI)."""

from __future__ import annotations


class StoreError(Exception):
    """A local action cannot be done; ``str()`` is a readable reason. Nothing was changed."""


class SchemaTooNew(StoreError):
    """The cache file was written by a newer chat-tui (``PRAGMA user_version`` higher than
    :data:`~chat_tui.store.models.SCHEMA_VERSION`); it is left untouched."""


__all__ = ["SchemaTooNew", "StoreError"]

"""The account cache, :class:`Cache` (SQLite via Peewee): read API for the UI, write API for
the sync engine. Imports only from ``chat_tui.config`` and ``chat_tui.wire``; never from api, sync or ui.

The names that need Peewee (``Cache``, ``SCHEMA_VERSION``, ``delete_cache_file``) are
imported on first use (PEP 562), so the first frame's reader
(:mod:`chat_tui.store.first_frame`, standard library only) is imported without Peewee.

See docs/engine.md for the read API contract and docs/sync.md for the rules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from chat_tui.store.errors import CacheLocked, SchemaTooNew, StoreError
from chat_tui.store.outbox_state import OutboxState
from chat_tui.store.results import ApplyResult, OutboxAction
from chat_tui.store.views import (
    LOCAL_ECHO_BASE,
    OUTBOX_STATES,
    ConversationView,
    Draft,
    Gap,
    MessageView,
    OutboxProblem,
    SearchHit,
    SortKey,
    UIState,
)

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.store.cache import Cache
    from chat_tui.store.cachefile import delete_cache_file
    from chat_tui.store.models import SCHEMA_VERSION
    from chat_tui.store.recovery import CacheRecovery

_LAZY = {"Cache": "chat_tui.store.cache", "delete_cache_file": "chat_tui.store.cachefile",
         "SCHEMA_VERSION": "chat_tui.store.models", "CacheRecovery": "chat_tui.store.recovery"}


def __getattr__(name: str) -> Any:
    """``Cache``, ``delete_cache_file``, ``SCHEMA_VERSION`` and ``CacheRecovery`` (the
    modules that load Peewee or SQLCipher's driver), imported on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "LOCAL_ECHO_BASE",
    "OUTBOX_STATES",
    "SCHEMA_VERSION",
    "ApplyResult",
    "CacheLocked",
    "CacheRecovery",
    "ConversationView",
    "Draft",
    "Gap",
    "MessageView",
    "OutboxAction",
    "OutboxProblem",
    "OutboxState",
    "SchemaTooNew",
    "SearchHit",
    "SortKey",
    "Cache",
    "StoreError",
    "UIState",
    "delete_cache_file",
]

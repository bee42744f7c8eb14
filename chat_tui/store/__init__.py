"""The account cache, :class:`Cache` (SQLite via Peewee): read API for the UI, write API for
the sync engine. Imports only from ``chat_tui.config`` and ``chat_tui.wire``; never from api, sync or ui.

Every public name is imported from its module on first use (PEP 562): importing one
module of the package (the first frame's reader :mod:`chat_tui.store.first_frame`,
standard library only, or ``chat_tui.store.errors``) loads neither Peewee nor the
dataclasses the first frame does not need.

See docs/engine.md for the read API contract and docs/sync.md for the rules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.store.cache import Cache
    from chat_tui.store.cachefile import delete_cache_file
    from chat_tui.store.errors import CacheLocked, SchemaTooNew, StoreError
    from chat_tui.store.models import SCHEMA_VERSION
    from chat_tui.store.more_views import Draft, Gap, OutboxProblem, SearchHit
    from chat_tui.store.outbox_state import OutboxState
    from chat_tui.store.recovery import CacheRecovery
    from chat_tui.store.results import ApplyResult, OutboxAction
    from chat_tui.store.views import (
        LOCAL_ECHO_BASE,
        OUTBOX_STATES,
        ConversationView,
        MessageView,
        SortKey,
        UIState,
    )

_LAZY = {
    "Cache": "chat_tui.store.cache", "delete_cache_file": "chat_tui.store.cachefile",
    "SCHEMA_VERSION": "chat_tui.store.models", "CacheRecovery": "chat_tui.store.recovery",
    "CacheLocked": "chat_tui.store.errors", "SchemaTooNew": "chat_tui.store.errors",
    "StoreError": "chat_tui.store.errors", "OutboxState": "chat_tui.store.outbox_state",
    "ApplyResult": "chat_tui.store.results", "OutboxAction": "chat_tui.store.results",
    "LOCAL_ECHO_BASE": "chat_tui.store.views", "OUTBOX_STATES": "chat_tui.store.views",
    "ConversationView": "chat_tui.store.views", "MessageView": "chat_tui.store.views",
    "SortKey": "chat_tui.store.views", "UIState": "chat_tui.store.views",
    "Draft": "chat_tui.store.more_views", "Gap": "chat_tui.store.more_views",
    "OutboxProblem": "chat_tui.store.more_views", "SearchHit": "chat_tui.store.more_views",
}


def __getattr__(name: str) -> Any:
    """Every public name, imported from its module on first use (PEP 562)."""
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

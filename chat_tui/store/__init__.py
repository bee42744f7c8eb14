"""The account cache, :class:`Cache` (SQLite via Peewee): read API for the UI, write API for
the sync engine. Imports only from ``chat_tui.config`` and ``chat_tui.wire``; never from api, sync or ui.

See docs/engine.md for the read API contract and docs/sync.md for the rules.
"""

from chat_tui.store.cache import Cache
from chat_tui.store.cachefile import delete_cache_file
from chat_tui.store.errors import CacheLocked, SchemaTooNew, StoreError
from chat_tui.store.models import SCHEMA_VERSION
from chat_tui.store.outbox_state import OutboxState
from chat_tui.store.recovery import CacheRecovery
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

"""Counts over the whole conversation list, for a UI that keeps only a window of it.

``Cache.list_conversations(limit)`` returns the most recent conversations first. Read whole,
a list of 10,000 conversations costs ~0.15 s and ~11 MB of the app's peak memory
(benchmarks/NOTES.md), so the UI keeps a window of the most recent rows and asks
here for the one figure it shows about the whole list.

Read-only, through the store's own connection (``Cache.db``), like the store's read API.
Columns read: ``outbox.kind``, ``outbox.conversation_id``, ``conversation.id``,
``conversation.removed``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chat_tui.store.outbox_state import PENDING_BY_KIND_SQL

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.store.cache import Cache

__all__ = ["queued_actions", "queued_by_kind"]

_QUEUED = """
SELECT count(*) FROM outbox o JOIN conversation c ON c.id = o.conversation_id
 WHERE NOT c.removed AND o.kind != 'read'
"""


def queued_actions(store: Cache) -> int:
    """My actions still in the outbox (sends, edits, deletes, creations; read markers are
    not counted) over every conversation still listed: the sum of
    ``ConversationView.queued_count`` over ``store.list_conversations()``, without reading
    the list. ``store`` must be open; raises what ``Cache.db`` raises (``peewee``
    ``DatabaseError``) on a broken file."""
    return int(store.db.execute_sql(_QUEUED).fetchone()[0])


def queued_by_kind(store: Cache) -> dict[str, int]:
    """The actions :func:`queued_actions` counts, by outbox kind (``send``, ``edit``,
    ``delete``, ``create_conversation``, ...; kinds with none are absent), those that wait
    for the user (failed, expired, blocked) under ``outbox_state.WAITING_FOR_USER``
    instead: what the offline banner names. Raises what ``Cache.db`` raises on a broken
    file."""
    return {kind: int(n) for kind, n in store.db.execute_sql(PENDING_BY_KIND_SQL).fetchall()}

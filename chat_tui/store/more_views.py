"""Read-side value objects the store hands to the UI and the engine besides those of the
first frame (:mod:`chat_tui.store.views`): search hits, drafts, outbox problems and gaps
(docs/engine.md, "Cache read API"). Plain frozen dataclasses converted from rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["Draft", "Gap", "OutboxProblem", "SearchHit"]


@dataclass(frozen=True)
class SearchHit:
    """A full-text search hit; ``snippet`` marks matches with ``[`` and ``]``."""

    message_id: str
    conversation_id: str
    conversation_title: str
    author: str
    snippet: str
    created_at: datetime


@dataclass(frozen=True)
class Draft:
    """The unsent text of a conversation and the cursor as ``(row, column)``, 0-based."""

    text: str
    cursor: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class OutboxProblem:
    """An outbox action that waits for the user (failed, blocked or expired).

    ``message_id`` is None for a conversation create or a read marker; ``outbox_id`` is the
    local FIFO sequence of the action; ``kind`` is ``create_conversation``, ``send``, ``edit``,
    ``delete``, ``read``, ``update_conversation`` or ``regenerate`` (``OUTBOX_KINDS``); ``reason`` says why (the server's readable reason when failed,
    ``blocked behind <id>`` when blocked, ``older than ...`` when expired).
    """

    message_id: str | None
    conversation_id: str
    state: str
    reason: str
    body_preview: str
    outbox_id: int = 0
    kind: str = "send"


@dataclass(frozen=True)
class Gap:
    """A hole in a conversation's cache left by a ``limited`` sync (sync rule S4): messages
    with ``after_seq < seq < before_seq`` may exist on the server and are not cached."""

    conversation_id: str
    before_message_id: str
    before_seq: int
    after_seq: int | None

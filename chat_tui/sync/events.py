"""Typed events the engine publishes to its subscribers (the UI, the headless CLI).

Frozen dataclasses, no Textual import. Subscribers register with
``Engine.subscribe(callback)`` and are called on the engine's event loop, one event at a
time, in publication order. This is the client-side contract of docs/engine.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

ConnectivityState = Literal["online", "offline", "connecting"]


@dataclass(frozen=True)
class ConnectivityChanged:
    """Reachability of the server changed (sync rules C1-C3).

    ``state`` is ``online`` after a successful request or probe, ``offline`` after a
    connection-level failure (or while ``work_offline``), ``connecting`` while a probe runs.
    ``last_synced_at`` is the UTC time of the last applied ``/v1/sync`` response, or None.
    """

    state: ConnectivityState
    work_offline: bool
    last_synced_at: datetime | None


@dataclass(frozen=True)
class OutboxChanged:
    """Counts of my outbox actions by state (read markers left out, as the app's outbox
    indicator shows them: ``Cache.outbox_counts(reads=False)``); keys ``queued``,
    ``sending``, ``failed``, ``blocked``, ``expired`` (always all five)."""

    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class MessagesChanged:
    """Messages of one conversation were inserted, updated or removed in the cache; the UI
    re-reads them through the store (ids that were removed are no longer found)."""

    conversation_id: str
    message_ids: tuple[str, ...]


@dataclass(frozen=True)
class ConversationsChanged:
    """Conversations were created, updated (title, members, unread count, last message) or
    removed in the cache."""

    conversation_ids: tuple[str, ...]


@dataclass(frozen=True)
class SyncProgress:
    """What the puller is doing: ``initial`` sync, ``delta`` long-poll apply, ``backfill``
    of older pages, or ``idle``. ``done``/``total`` count conversations (initial, delta) or
    messages (backfill); ``total`` is None when unknown."""

    phase: Literal["idle", "initial", "delta", "backfill"]
    done: int
    total: int | None


@dataclass(frozen=True)
class EngineProblem:
    """A condition that pauses the whole engine until the user acts (docs/engine.md).

    ``kind`` is ``auth`` (a 401: every queue is paused until ``chat-tui login``; outbox rule 3)
    or ``database`` (a local database error paused the drain; messages are not marked
    failed), or ``cache`` (the cache file was unreadable and moved aside; the message says
    where and what its outbox held; sync rule D4; informational, ``active`` False).
    ``active`` is False when the condition cleared.
    """

    kind: Literal["auth", "database", "cache"]
    message: str
    active: bool = True


@dataclass(frozen=True)
class InvitesChanged:
    """A Matrix account's pending invites changed (docs/sync.md, Matrix): ``invites`` is
    the new list, ``({"room_id", "inviter", "name"}, ...)`` (``Engine.invites``)."""

    invites: tuple[dict, ...]


Event = (
    ConnectivityChanged
    | OutboxChanged
    | MessagesChanged
    | ConversationsChanged
    | SyncProgress
    | EngineProblem
    | InvitesChanged
)

__all__ = [
    "ConnectivityChanged",
    "ConnectivityState",
    "ConversationsChanged",
    "EngineProblem",
    "Event",
    "InvitesChanged",
    "MessagesChanged",
    "OutboxChanged",
    "SyncProgress",
]

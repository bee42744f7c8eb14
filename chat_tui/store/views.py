"""Read-side value objects the store hands to the UI (docs/engine.md, "Cache read API").

Plain frozen dataclasses converted from rows, so the UI never sees a Peewee model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from chat_tui.store.outbox_state import OutboxState

SortKey = int
"""Position of a message in its conversation (an int, ascending).

For a message the server acknowledged it is the server ``seq``. A local echo not yet
acknowledged gets ``LOCAL_ECHO_BASE + <outbox local sequence>``, so it sorts after every
server message, in outbox order (outbox rule 8)."""

LOCAL_ECHO_BASE: int = 1 << 52

OUTBOX_STATES: tuple[str, ...] = tuple(state.value for state in OutboxState)
"""Keys of ``Cache.outbox_counts()`` and of ``OutboxChanged.counts``: the values of
:class:`~chat_tui.store.outbox_state.OutboxState` (``queued``, ``sending``, ``failed``,
``blocked``, ``expired``), as plain strings."""


@dataclass(frozen=True)
class ConversationView:
    """One row of the conversation list.

    ``members`` are usernames, sorted; ``last_activity_at`` is UTC (server ``updated_at``, or
    the local echo time of a newer pending message); ``unread_count`` counts others' messages
    after my read marker; ``queued_count`` counts my actions still in the outbox;
    ``problem_count`` counts those that wait for the user (failed, expired, and queued
    behind one of them: blocked; the conversation's entries of ``Cache.problems``).
    ``pending`` is True while the conversation was created offline and not yet on the server.
    ``model`` and ``system_prompt`` are what the assistant answers with (None: the
    server's default model, its own prompt), my change on top until the server has it.
    ``encrypted`` is True for an end-to-end encrypted Matrix room (docs/sync.md, rule M3).
    """

    id: str
    title: str
    members: tuple[str, ...]
    assistant: bool
    last_message_preview: str | None
    last_activity_at: datetime | None
    unread_count: int
    queued_count: int
    pending: bool = False
    model: str | None = None
    system_prompt: str | None = None
    problem_count: int = 0
    encrypted: bool = False


@dataclass(frozen=True)
class MessageView:
    """One message as the UI shows it.

    ``body`` already includes my pending edit (shown on top until acknowledged, sync rule S3);
    ``deleted`` is True for a tombstone or a pending delete. ``state`` is None for others'
    messages; for mine one of ``queued``, ``sending``, ``sent``, ``read``, ``failed``,
    ``blocked``, ``expired``; ``failure_reason`` is the server's readable reason when failed.
    ``created_at`` is UTC (local clock for an unacknowledged local echo). ``model`` is the
    model that wrote an assistant reply (None otherwise, or when unknown); ``stopped`` is
    True for a reply a member stopped (its body is what was written until then).
    """

    id: str
    conversation_id: str
    author: str
    body: str
    created_at: datetime
    edited: bool
    deleted: bool
    streaming: bool
    error: bool
    mine: bool
    state: str | None
    failure_reason: str | None
    sort_key: SortKey
    seq: int | None = None
    version: int | None = None
    model: str | None = None
    stopped: bool = False


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
class UIState:
    """Where the user was: the last open conversation, per conversation the id of the
    message the view was anchored to, and whether "work offline" is on (sync rule C3: it
    stays on across restarts of the app until turned off)."""

    last_conversation_id: str | None = None
    scroll_anchors: dict[str, str] = field(default_factory=dict)
    work_offline: bool = False


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

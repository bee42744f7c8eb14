"""Read-side value objects the store hands to the UI (docs/engine.md, "Cache read API"):
the conversation list's rows, the messages and the UI state, which the app's first frame
shows (:mod:`chat_tui.store.first_frame` builds them too).

Plain frozen dataclasses converted from rows, so the UI never sees a Peewee model. The
others (search hits, drafts, outbox problems, gaps) are in :mod:`chat_tui.store.more_views`:
creating a frozen dataclass costs 0.6-1.2 ms of CPU, which the first frame need not pay
for the ones it does not show (benchmarks/NOTES.md).
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
class UIState:
    """Where the user was: the last open conversation, per conversation the id of the
    message the view was anchored to, and whether "work offline" is on (sync rule C3: it
    stays on across restarts of the app until turned off)."""

    last_conversation_id: str | None = None
    scroll_anchors: dict[str, str] = field(default_factory=dict)
    work_offline: bool = False

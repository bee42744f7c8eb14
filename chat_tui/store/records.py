"""Shapes the store accepts from the network layer (structural typing, no api import).

``chat_tui.api`` returns dataclasses that satisfy these protocols; the store reads only
these attributes. Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol


class MessageRecord(Protocol):
    """A server Message (docs/api.md, "Message")."""

    id: str
    conversation_id: str
    author: str
    body: str
    created_at: datetime
    edited_at: datetime | None
    seq: int
    version: int
    deleted: bool
    streaming: bool
    error: bool


class ConversationRecord(Protocol):
    """A server Conversation (docs/api.md, "Conversation")."""

    id: str
    title: str
    creator: str
    members: Sequence[str]
    assistant: bool
    created_at: datetime
    updated_at: datetime
    last_message: MessageRecord | None
    unread_count: int


class ReadMarkerRecord(Protocol):
    """A server ReadMarker."""

    conversation_id: str
    username: str
    message_id: str
    seq: int


class SyncConversationRecord(Protocol):
    """One entry of ``/v1/sync`` ``conversations``."""

    conversation: ConversationRecord
    messages: Sequence[MessageRecord]
    limited: bool
    removed: bool


class SyncRecord(Protocol):
    """A ``/v1/sync`` response."""

    cursor: str
    initial: bool
    conversations: Sequence[SyncConversationRecord]
    read_markers: Sequence[ReadMarkerRecord]


class PageRecord(Protocol):
    """A ``GET /v1/conversations/{cid}/messages`` response."""

    messages: Sequence[MessageRecord]
    has_more: bool

"""Pydantic models of the wire shapes (docs/api.md, Objects and Routes).

They give ``/openapi.json`` its request and response schemas and validate request bodies.
Byte limits (message body 1..65,536 UTF-8 bytes, answered 413/422) are checked by the store,
because pydantic counts characters, not bytes.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field


class ErrorDetail(BaseModel):
    """The ``error`` object of an error response (docs/api.md, Errors)."""

    code: str = Field(description="machine code, see docs/api.md Errors")
    message: str = Field(description="readable explanation")


class ErrorBody(BaseModel):
    """``{"error": {"code", "message"}}``: the body of every error response."""

    error: ErrorDetail


class Health(BaseModel):
    """``GET /v1/health`` (no auth): ``status`` is ``"ok"``; ``version`` the server's."""

    status: str
    version: str


class LoginRequest(BaseModel):
    """``POST /v1/login`` body. A wrong or malformed username/password answers 401."""

    model_config = ConfigDict(extra="ignore")
    username: str = Field(description="malformed names get 401 like wrong ones, never 422")
    password: str
    device_name: str = Field(default="device", max_length=200)


class LoginResponse(BaseModel):
    """``POST /v1/login`` answer: ``access_token`` is this device's bearer token (send it
    as ``Authorization: Bearer``; revoked by ``POST /v1/logout``)."""

    user_id: str
    access_token: str
    device_id: str
    username: str


class MessageOut(BaseModel):
    """docs/api.md, Message: ``seq`` is the server's total order (int), ``version`` starts
    at 1 and grows with every edit/delete (last-write-wins), times are RFC 3339 UTC;
    a tombstone has ``deleted: true`` and an empty body; an assistant reply being written
    has ``streaming: true``; ``error: true`` marks an assistant failure note."""

    id: str
    conversation_id: str
    author: str
    body: str
    created_at: str = Field(description="RFC 3339 UTC, microseconds, Z")
    edited_at: str | None
    seq: int
    version: int
    deleted: bool
    streaming: bool
    error: bool


class ConversationOut(BaseModel):
    """docs/api.md, Conversation: ``members`` are usernames, ``unread_count`` is the
    caller's, ``last_message`` the newest message or null, times RFC 3339 UTC."""

    id: str
    title: str
    creator: str
    members: list[str]
    assistant: bool
    created_at: str
    updated_at: str
    last_message: MessageOut | None
    unread_count: int


class ConversationList(BaseModel):
    """``GET /v1/conversations``: the caller's, most recently updated first."""

    conversations: list[ConversationOut]


class ConversationPut(BaseModel):
    """``PUT /v1/conversations/{cid}`` body: ``title`` 1..200 characters, ``members``
    usernames (the caller is added; an unknown name answers 422), ``assistant`` adds the
    assistant member."""

    title: str = Field(min_length=1, max_length=200)
    members: list[str] = Field(default_factory=list, max_length=1000)
    assistant: bool = False


class MessagePage(BaseModel):
    """``GET /v1/conversations/{cid}/messages``: up to ``limit`` (<= 500) messages older
    than ``before``, ascending by ``seq``; ``has_more`` when older ones exist;
    ``total_count`` of the conversation."""

    messages: list[MessageOut]
    has_more: bool
    total_count: int


class MessagePut(BaseModel):
    """``PUT /v1/conversations/{cid}/messages/{mid}`` body (send; ``mid`` is the
    idempotency key: a repeat returns the stored message unchanged, 200)."""

    body: str = Field(description="1..65,536 UTF-8 bytes (413 when longer, 422 when empty)")


class MessagePatch(BaseModel):
    """``PATCH /v1/messages/{mid}`` body (edit, author only; bumps ``version``)."""

    body: str = Field(description="1..65,536 UTF-8 bytes (413 when longer, 422 when empty)")
    base_version: int | None = Field(
        default=None, description="the version the edit was made on; informational"
    )


class ReadRequest(BaseModel):
    """``POST /v1/conversations/{cid}/read`` body: move the caller's read marker to
    ``message_id`` (forward only)."""

    message_id: uuid.UUID


class ReadMarkerOut(BaseModel):
    """docs/api.md, ReadMarker: ``username`` has read ``conversation_id`` up to
    ``message_id`` (``seq`` of that message)."""

    conversation_id: str
    username: str
    message_id: str | None
    seq: int


class SyncEntry(BaseModel):
    """One conversation in a ``/v1/sync`` answer: the messages changed after the cursor
    (new, edited, tombstoned), ascending; ``limited`` when more than 50 were new (only the
    newest 50 are here: backfill the rest); ``removed`` when the caller left it."""

    conversation: ConversationOut
    messages: list[MessageOut]
    limited: bool
    removed: bool


class SyncResponse(BaseModel):
    """``GET /v1/sync?since=&timeout=`` (delta sync, long-poll up to ``timeout`` <= 30 s):
    ``cursor`` (opaque string) to pass as ``since`` next time; ``initial`` when ``since``
    was absent (every conversation with its newest page)."""

    cursor: str
    initial: bool
    conversations: list[SyncEntry]
    read_markers: list[ReadMarkerOut]

"""Pydantic models of the wire shapes (docs/api.md, Objects and Routes).

They give ``/openapi.json`` its request and response schemas and validate request bodies.
Byte limits (message body 1..65,536 UTF-8 bytes, answered 413/422) are checked by the store,
because pydantic counts characters, not bytes.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="machine code, see docs/api.md Errors")
    message: str = Field(description="readable explanation")


class ErrorBody(BaseModel):
    """``{"error": {"code", "message"}}``: the body of every error response."""

    error: ErrorDetail


class Health(BaseModel):
    status: str
    version: str


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    username: str = Field(description="malformed names get 401 like wrong ones, never 422")
    password: str
    device_name: str = Field(default="device", max_length=200)


class LoginResponse(BaseModel):
    user_id: str
    access_token: str
    device_id: str
    username: str


class MessageOut(BaseModel):
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
    conversations: list[ConversationOut]


class ConversationPut(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    members: list[str] = Field(default_factory=list, max_length=1000)
    assistant: bool = False


class MessagePage(BaseModel):
    messages: list[MessageOut]
    has_more: bool
    total_count: int


class MessagePut(BaseModel):
    body: str = Field(description="1..65,536 UTF-8 bytes (413 when longer, 422 when empty)")


class MessagePatch(BaseModel):
    body: str = Field(description="1..65,536 UTF-8 bytes (413 when longer, 422 when empty)")
    base_version: int | None = Field(
        default=None, description="the version the edit was made on; informational"
    )


class ReadRequest(BaseModel):
    message_id: uuid.UUID


class ReadMarkerOut(BaseModel):
    conversation_id: str
    username: str
    message_id: str | None
    seq: int


class SyncEntry(BaseModel):
    conversation: ConversationOut
    messages: list[MessageOut]
    limited: bool
    removed: bool


class SyncResponse(BaseModel):
    cursor: str
    initial: bool
    conversations: list[SyncEntry]
    read_markers: list[ReadMarkerOut]

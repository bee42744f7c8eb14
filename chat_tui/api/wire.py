"""Typed results of the API client: frozen dataclasses parsed from the wire JSON
(docs/api.md, "Objects"). Parsing raises :class:`~chat_tui.api.errors.MalformedResponse`
on any missing field or wrong type."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chat_tui.api.errors import MalformedResponse


def _get(obj: Any, key: str, kind: type | tuple[type, ...], nullable: bool = False) -> Any:
    if not isinstance(obj, dict):
        raise MalformedResponse(f"expected an object holding {key!r}")
    if key not in obj:
        raise MalformedResponse(f"missing field {key!r}")
    value = obj[key]
    if value is None and nullable:
        return None
    if kind is int and isinstance(value, bool):
        raise MalformedResponse(f"field {key!r} has the wrong type")
    if not isinstance(value, kind):
        raise MalformedResponse(f"field {key!r} has the wrong type")
    return value


def _time(obj: Any, key: str, nullable: bool = False) -> datetime | None:
    value = _get(obj, key, str, nullable)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MalformedResponse(f"field {key!r} is not an RFC 3339 time") from exc
    if parsed.tzinfo is None:
        raise MalformedResponse(f"field {key!r} has no time zone")
    return parsed


@dataclass(frozen=True)
class Message:
    """docs/api.md "Message"."""

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

    @classmethod
    def parse(cls, obj: Any) -> Message:
        """Build a :class:`Message` from the decoded JSON ``obj``: a docs/api.md Message object (``id``, ``conversation_id``, ``author``, ``body``,
        ``created_at`` / ``edited_at`` RFC 3339 with a zone, ``seq``, ``version``, ``deleted``,
        ``streaming``, ``error``).

        Raises:
            MalformedResponse: ``obj`` is not that shape (a field missing, of the wrong
            type, or a time without a zone); nothing is half-built.
        """
        return cls(
            id=_get(obj, "id", str), conversation_id=_get(obj, "conversation_id", str),
            author=_get(obj, "author", str), body=_get(obj, "body", str),
            created_at=_time(obj, "created_at"), edited_at=_time(obj, "edited_at", True),
            seq=_get(obj, "seq", int), version=_get(obj, "version", int),
            deleted=_get(obj, "deleted", bool), streaming=bool(obj.get("streaming", False)),
            error=bool(obj.get("error", False)),
        )


@dataclass(frozen=True)
class Conversation:
    """docs/api.md "Conversation"."""

    id: str
    title: str
    creator: str
    members: tuple[str, ...]
    assistant: bool
    created_at: datetime
    updated_at: datetime
    last_message: Message | None
    unread_count: int

    @classmethod
    def parse(cls, obj: Any) -> Conversation:
        """Build a :class:`Conversation` from the decoded JSON ``obj``: a docs/api.md Conversation object (``last_message`` a Message or null, times RFC
        3339 with a zone, ``members`` a list of usernames).

        Raises:
            MalformedResponse: ``obj`` is not that shape (a field missing, of the wrong
            type, or a time without a zone); nothing is half-built.
        """
        members = _get(obj, "members", list)
        if not all(isinstance(m, str) for m in members):
            raise MalformedResponse("field 'members' has the wrong type")
        last = _get(obj, "last_message", dict, nullable=True)
        return cls(
            id=_get(obj, "id", str), title=_get(obj, "title", str),
            creator=_get(obj, "creator", str), members=tuple(members),
            assistant=_get(obj, "assistant", bool), created_at=_time(obj, "created_at"),
            updated_at=_time(obj, "updated_at"),
            last_message=None if last is None else Message.parse(last),
            unread_count=_get(obj, "unread_count", int),
        )


@dataclass(frozen=True)
class ReadMarker:
    """docs/api.md "ReadMarker"."""

    conversation_id: str
    username: str
    message_id: str
    seq: int

    @classmethod
    def parse(cls, obj: Any) -> ReadMarker:
        """Build a :class:`ReadMarker` from the decoded JSON ``obj``: a docs/api.md ReadMarker object (``conversation_id``, ``username``, ``message_id``,
        ``seq``).

        Raises:
            MalformedResponse: ``obj`` is not that shape (a field missing, of the wrong
            type, or a time without a zone); nothing is half-built.
        """
        return cls(_get(obj, "conversation_id", str), _get(obj, "username", str),
                   _get(obj, "message_id", str), _get(obj, "seq", int))


@dataclass(frozen=True)
class SyncConversation:
    """One entry of a ``/v1/sync`` response's ``conversations``."""

    conversation: Conversation
    messages: tuple[Message, ...]
    limited: bool
    removed: bool

    @classmethod
    def parse(cls, obj: Any) -> SyncConversation:
        """Build a :class:`SyncConversation` from the decoded JSON ``obj``: one ``conversations`` entry of a ``/v1/sync`` answer (``conversation``,
        ``messages``, ``limited``; ``removed`` optional, false when absent).

        Raises:
            MalformedResponse: ``obj`` is not that shape (a field missing, of the wrong
            type, or a time without a zone); nothing is half-built.
        """
        return cls(Conversation.parse(_get(obj, "conversation", dict)),
                   tuple(Message.parse(m) for m in _get(obj, "messages", list)),
                   _get(obj, "limited", bool), bool(obj.get("removed", False)))


@dataclass(frozen=True)
class SyncResponse:
    """``GET /v1/sync``."""

    cursor: str
    initial: bool
    conversations: tuple[SyncConversation, ...]
    read_markers: tuple[ReadMarker, ...]

    @classmethod
    def parse(cls, obj: Any) -> SyncResponse:
        """Build a :class:`SyncResponse` from the decoded JSON ``obj``: a ``/v1/sync`` answer (``cursor`` string or integer, kept as a string;
        ``initial``, ``conversations``, ``read_markers``).

        Raises:
            MalformedResponse: ``obj`` is not that shape (a field missing, of the wrong
            type, or a time without a zone); nothing is half-built.
        """
        cursor = _get(obj, "cursor", (str, int))
        return cls(str(cursor), _get(obj, "initial", bool),
                   tuple(SyncConversation.parse(c) for c in _get(obj, "conversations", list)),
                   tuple(ReadMarker.parse(r) for r in _get(obj, "read_markers", list)))


@dataclass(frozen=True)
class MessagesPage:
    """``GET /v1/conversations/{cid}/messages``: ascending by seq."""

    messages: tuple[Message, ...]
    has_more: bool
    total_count: int

    @classmethod
    def parse(cls, obj: Any) -> MessagesPage:
        """Build a :class:`MessagesPage` from the decoded JSON ``obj``: a messages page (``messages`` ascending, ``has_more``, ``total_count``).

        Raises:
            MalformedResponse: ``obj`` is not that shape (a field missing, of the wrong
            type, or a time without a zone); nothing is half-built.
        """
        return cls(tuple(Message.parse(m) for m in _get(obj, "messages", list)),
                   _get(obj, "has_more", bool), _get(obj, "total_count", int))


@dataclass(frozen=True)
class Login:
    """``POST /v1/login``. ``repr`` hides the token."""

    user_id: str
    access_token: str
    device_id: str
    username: str

    def __repr__(self) -> str:
        return f"Login(user_id={self.user_id!r}, username={self.username!r}, token=***)"

    @classmethod
    def parse(cls, obj: Any) -> Login:
        """Build a :class:`Login` from the decoded JSON ``obj``: a ``POST /v1/login`` answer (``user_id``, ``access_token``, ``device_id``,
        ``username``).

        Raises:
            MalformedResponse: ``obj`` is not that shape (a field missing, of the wrong
            type, or a time without a zone); nothing is half-built.
        """
        return cls(_get(obj, "user_id", str), _get(obj, "access_token", str),
                   _get(obj, "device_id", str), _get(obj, "username", str))

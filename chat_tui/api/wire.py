"""The typed answers of the API client: the ``chat_tui.wire`` models (docs/api.md,
"Objects"), and :func:`parse_answer`, which validates an answer's body into one of them
and turns any failure into :class:`~chat_tui.api.errors.MalformedResponse`."""

from __future__ import annotations

from typing import TypeVar

from pydantic import ValidationError

from chat_tui.api.errors import MalformedResponse
from chat_tui.wire.models import (
    Conversation,
    ConversationList,
    Login,
    Message,
    MessagesPage,
    ReadMarker,
    SyncConversation,
    SyncResponse,
)

T = TypeVar("T")


def describe(exc: ValidationError) -> str:
    """The first problem of a validation error as one short sentence, for example
    ``field 'seq' has the wrong type: Input should be a valid integer``."""
    errors = exc.errors(include_url=False, include_input=False)
    if not errors:
        return "wrong shape"
    first = errors[0]
    where = ".".join(str(x) for x in first.get("loc", ())) or "answer"
    if first.get("type") == "missing":
        return f"missing field {where!r}"
    return f"field {where!r} has the wrong type: {first.get('msg', 'invalid')}"


def parse_answer(cls: type[T], body: bytes, status: int = 200) -> T:
    """Validate the JSON ``body`` of an answer with HTTP ``status`` into ``cls`` (a
    ``chat_tui.wire`` answer model). Unknown extra fields are ignored.

    Raises:
        MalformedResponse: ``body`` is not JSON, or not that shape (a field missing, of
        the wrong type, or a time without a zone); nothing is half-built.
    """
    try:
        return cls.parse_json(body)  # type: ignore[attr-defined]
    except ValidationError as exc:
        if any(e.get("type") == "json_invalid" for e in exc.errors(include_url=False)):
            raise MalformedResponse(f"HTTP {status}: body is not JSON", status) from None
        raise MalformedResponse(f"HTTP {status}: {describe(exc)}", status) from None


__all__ = [
    "Conversation", "ConversationList", "Login", "Message", "MessagesPage", "ReadMarker",
    "SyncConversation", "SyncResponse", "parse_answer",
]

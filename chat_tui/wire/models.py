"""The objects of the wire API v1 (docs/api.md, Objects and Routes) as pydantic v2 models.

One definition for both sides: the server builds its answers from these and validates
request bodies with them; the client parses answers into them; ``/openapi.json`` shows
them.

Answers (:class:`Message`, :class:`Conversation`, :class:`ReadMarker`,
:class:`SyncConversation`, :class:`SyncResponse`, :class:`MessagesPage`, :class:`Login`,
:class:`Health`, :class:`ConversationList`, :class:`ModelList` with its
:class:`ModelInfo` and :class:`ProviderProblem`, :class:`ErrorBody`) are frozen pydantic
dataclasses: they are built positionally or by keyword and validated on construction;
``X.parse(obj)`` validates decoded JSON, ``X.parse_json(data)`` JSON text, and the server
builds its own rows' objects unvalidated with ``X.construct(**fields)``. Their scalar fields are strict (an int is
not a bool, a number is not a string), containers take JSON arrays, unknown extra
fields are ignored. Times are timezone-aware ``datetime`` objects, written as RFC 3339
UTC with microseconds and ``Z``. ``streaming``, ``error``, ``stopped`` and ``removed``
default to false when absent and are read by truth value; ``model`` and ``system_prompt``
default to null when absent (an older server).

Request bodies (:class:`LoginRequest`, :class:`ConversationPut`, :class:`MessagePut`,
:class:`MessagePatch`, :class:`ReadRequest`, :class:`ConversationPatch`,
:class:`RegenerateRequest`) are pydantic
``BaseModel`` classes that the server validates.
Byte limits (message body 1..65,536 UTF-8 bytes, answered 413/422) are checked by the
server with :func:`chat_tui.wire.limits.body_size_error`, because pydantic counts characters.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
)
from pydantic.dataclasses import dataclass

from chat_tui.wire.limits import (
    DEFAULT_DEVICE_NAME,
    MAX_BODY_BYTES,
    MAX_DEVICE_NAME_CHARS,
    MAX_MEMBERS,
    MAX_MODEL_CHARS,
    MAX_SYSTEM_PROMPT_CHARS,
    MAX_TITLE_CHARS,
    text_error,
)

T = TypeVar("T")


def parse_time(value: Any) -> Any:
    """An RFC 3339 string (``Z`` or an offset) as a ``datetime``; a ``datetime`` passes on.

    Raises:
        ValueError: ``value`` is neither a ``datetime`` nor an RFC 3339 string with a zone.
    """
    if isinstance(value, str):
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            raise ValueError("time has no time zone")
        return parsed
    if not isinstance(value, dt.datetime):
        raise ValueError("time must be an RFC 3339 string")
    return value


def format_time(value: dt.datetime) -> str:
    """``value`` as RFC 3339 UTC with microseconds and ``Z`` (docs/api.md, Conventions),
    for example ``2026-11-22T14:02:07.123456Z``; a naive ``value`` is taken as UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def _text_cursor(value: Any) -> Any:
    """A cursor sent as an integer is kept as its decimal string (clients never parse it)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


#: A wire time: RFC 3339 with a zone in, RFC 3339 UTC with microseconds and ``Z`` out.
Time = Annotated[
    AwareDatetime,
    BeforeValidator(parse_time),
    PlainSerializer(format_time, return_type=str),
    Field(json_schema_extra={"example": "2026-11-22T14:02:07.123456Z"}),
]
#: A flag that is false when absent and read by truth value.
Flag = Annotated[bool, BeforeValidator(bool)]
#: The sync cursor: an opaque string (an integer is accepted and kept as its digits).
Cursor = Annotated[StrictStr, BeforeValidator(_text_cursor)]

_ANSWER = ConfigDict(extra="ignore", json_schema_serialization_defaults_required=True)


class WireModel:
    """Mixin of the answer dataclasses: :meth:`parse`, :meth:`construct`, :meth:`to_json`."""

    @classmethod
    def construct(cls: type[T], **fields: Any) -> T:
        """Build an instance from trusted ``fields`` without validating them (the server's
        own database rows): every field given, nested objects already built, sequences
        as tuples, times as ``datetime`` (naive ones are UTC). About ten times cheaper
        than validating, which keeps the sync answer of thousands of messages fast."""
        obj = object.__new__(cls)
        obj.__dict__.update(fields)
        return obj

    @classmethod
    def parse(cls: type[T], obj: Any) -> T:
        """Validate the decoded JSON ``obj`` (a dict) into this class.

        Raises:
            pydantic.ValidationError: ``obj`` is not that shape (a field missing, of the
            wrong type, or a time without a zone); nothing is half-built.
        """
        return _adapter(cls).validate_python(obj)

    @classmethod
    def parse_json(cls: type[T], data: bytes | str) -> T:
        """Validate the JSON text ``data`` into this class.

        Raises:
            pydantic.ValidationError: ``data`` is not JSON or not that shape.
        """
        return _adapter(cls).validate_json(data)

    def to_json(self) -> bytes:
        """This object as UTF-8 JSON bytes, exactly the shape of docs/api.md."""
        return self.__pydantic_serializer__.to_json(self)  # type: ignore[attr-defined]


_ADAPTERS: dict[type, TypeAdapter] = {}


def _adapter(cls: type) -> TypeAdapter:
    adapter = _ADAPTERS.get(cls)
    if adapter is None:
        adapter = _ADAPTERS[cls] = TypeAdapter(cls)
    return adapter


@dataclass(frozen=True, config=_ANSWER)
class Message(WireModel):
    """docs/api.md, Message: ``seq`` is the server's total order, ``version`` starts at 1
    and grows with every edit, delete or streamed update (last write wins by it); a
    tombstone has ``deleted`` true and an empty body; an assistant reply being written has
    ``streaming`` true; ``error`` marks an assistant reply that failed upstream,
    ``stopped`` one a member stopped (its body is what was written until then);
    ``model`` is the id of the model that wrote an assistant reply (null on other
    messages, and when the model could not be known)."""

    id: StrictStr
    conversation_id: StrictStr
    author: Annotated[StrictStr, Field(description="username")]
    body: Annotated[StrictStr, Field(description='"" when deleted')]
    created_at: Annotated[Time, Field(description="server time of first acceptance")]
    edited_at: Annotated[Time | None, Field(description="time of the last edit, or null")]
    seq: StrictInt
    version: StrictInt
    deleted: StrictBool
    streaming: Flag = False
    error: Flag = False
    model: Annotated[StrictStr | None, Field(description="the model that wrote an assistant "
                                                         "reply, else null")] = None
    stopped: Flag = False


@dataclass(frozen=True, config=_ANSWER)
class Conversation(WireModel):
    """docs/api.md, Conversation: ``members`` are usernames, sorted; ``unread_count`` is
    the caller's (messages by others after its read marker, tombstones excluded);
    ``last_message`` is the newest message or null; ``model`` and ``system_prompt`` are
    what the assistant answers with (null: the server's default model, its own prompt)."""

    id: StrictStr
    title: Annotated[StrictStr, Field(description=f"1..{MAX_TITLE_CHARS} characters")]
    creator: StrictStr
    members: tuple[StrictStr, ...]
    assistant: StrictBool
    created_at: Time
    updated_at: Annotated[Time, Field(description="time of the last message, edit or membership change")]
    last_message: Message | None
    unread_count: StrictInt
    model: Annotated[StrictStr | None, Field(description="null: the server's default")] = None
    system_prompt: Annotated[StrictStr | None,
                             Field(description="null: the server's own prompt")] = None


@dataclass(frozen=True, config=_ANSWER)
class ReadMarker(WireModel):
    """docs/api.md, ReadMarker: ``username`` has read ``conversation_id`` up to
    ``message_id`` (whose ``seq`` it carries)."""

    conversation_id: StrictStr
    username: StrictStr
    message_id: StrictStr
    seq: StrictInt


@dataclass(frozen=True, config=_ANSWER)
class SyncConversation(WireModel):
    """One entry of a ``/v1/sync`` answer's ``conversations``: the current conversation and
    its messages changed after the cursor, ascending by ``seq``; ``limited`` when more
    than 50 were created after it (only the newest 50 are here: backfill the rest);
    ``removed`` when the caller is no longer a member (always false in API v1)."""

    conversation: Conversation
    messages: tuple[Message, ...]
    limited: StrictBool
    removed: Flag = False


@dataclass(frozen=True, config=_ANSWER)
class SyncResponse(WireModel):
    """``GET /v1/sync?since=&timeout=``: ``cursor`` (opaque) to pass as ``since`` next time;
    ``initial`` when ``since`` was absent; the changed conversations and the read markers
    that moved after ``since``."""

    cursor: Cursor
    initial: StrictBool
    conversations: tuple[SyncConversation, ...]
    read_markers: tuple[ReadMarker, ...]


@dataclass(frozen=True, config=_ANSWER)
class MessagesPage(WireModel):
    """``GET /v1/conversations/{cid}/messages``: up to ``limit`` messages older than
    ``before``, ascending by ``seq``; ``has_more`` when older ones exist; ``total_count``
    counts every message of the conversation, tombstones included."""

    messages: tuple[Message, ...]
    has_more: StrictBool
    total_count: StrictInt


@dataclass(frozen=True, config=_ANSWER)
class ConversationList(WireModel):
    """``GET /v1/conversations``: the caller's conversations, most recently updated first."""

    conversations: tuple[Conversation, ...]


@dataclass(frozen=True, config=_ANSWER)
class Login(WireModel):
    """``POST /v1/login`` answer: ``access_token`` is this device's bearer token (sent as
    ``Authorization: Bearer``; revoked by ``POST /v1/logout``). ``repr`` hides it."""

    user_id: StrictStr
    access_token: Annotated[StrictStr, Field(repr=False)]
    device_id: StrictStr
    username: StrictStr

    def __repr__(self) -> str:
        return f"Login(user_id={self.user_id!r}, username={self.username!r}, token=***)"


@dataclass(frozen=True, config=_ANSWER)
class UserInfo(WireModel):
    """``GET /v1/users/{username}`` answer: ``username`` as the server spells it
    (case-folded, ``[a-z0-9_.-]{1,64}``)."""

    username: StrictStr


@dataclass(frozen=True, config=_ANSWER)
class Health(WireModel):
    """``GET /v1/health`` (no auth): ``status`` is ``"ok"``; ``version`` the server's."""

    status: StrictStr
    version: StrictStr


@dataclass(frozen=True, config=_ANSWER)
class ModelInfo(WireModel):
    """One model the server's assistant can use: ``id`` as its provider names it,
    ``provider`` the name of the provider serving it, ``default`` true for the model of the
    server's replies."""

    id: StrictStr
    provider: StrictStr
    default: Flag = False


@dataclass(frozen=True, config=_ANSWER)
class ProviderProblem(WireModel):
    """A provider whose model list could not be read: its ``provider`` name and a readable
    ``message`` (never a key)."""

    provider: StrictStr
    message: StrictStr


@dataclass(frozen=True, config=_ANSWER)
class ModelList(WireModel):
    """``GET /v1/models``: the ``models`` the server offers, provider by provider in its
    order; ``default`` the id of the model of its replies (null when it has none, or it is
    not known yet); ``problems`` the providers that did not answer their ``GET /models``."""

    models: tuple[ModelInfo, ...]
    default: StrictStr | None
    problems: tuple[ProviderProblem, ...] = ()


@dataclass(frozen=True, config=_ANSWER)
class ErrorDetail(WireModel):
    """The ``error`` object of an error answer (docs/api.md, Errors)."""

    code: Annotated[StrictStr, Field(description="machine code, see docs/api.md Errors")]
    message: Annotated[StrictStr, Field(description="readable explanation")]


@dataclass(frozen=True, config=_ANSWER)
class ErrorBody(WireModel):
    """``{"error": {"code", "message"}}``: the body of every error answer."""

    error: ErrorDetail


# ---------------------------------------------------------------------- request bodies


def _check_text(value: str) -> str:
    reason = text_error(value)
    if reason is not None:
        raise ValueError(reason)
    return value


#: The JSON-schema ``pattern`` of request text in ``/openapi.json``: no NUL (unpaired
#: surrogates cannot be written in UTF-8, so a schema needs no word for them).
TEXT_PATTERN = "^[^\\u0000]*$"
#: The pattern of a title: text with at least one character that is not whitespace.
TITLE_PATTERN = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
#: The pattern of a sync cursor in ``/openapi.json`` (today decimal digits).
CURSOR_PATTERN = "^[0-9]{1,19}$"

#: A request string: Unicode text without NUL and without unpaired surrogates
#: (docs/api.md, Conventions, Text; :func:`chat_tui.wire.limits.text_error`), else 422.
Text = Annotated[
    str, AfterValidator(_check_text), Field(json_schema_extra={"pattern": TEXT_PATTERN})
]


#: A model id in a request: 1..200 characters of text.
ModelId = Annotated[Text, Field(min_length=1, max_length=MAX_MODEL_CHARS)]
#: A system prompt in a request: 0..16,000 characters of text ("" means none).
SystemPrompt = Annotated[Text, Field(max_length=MAX_SYSTEM_PROMPT_CHARS)]


class LoginRequest(BaseModel):
    """``POST /v1/login`` body. A wrong or malformed username or password answers 401."""

    model_config = ConfigDict(extra="ignore")
    username: Text = Field(description="malformed names get 401 like wrong ones; 422 only "
                                       "for a string that is not text (NUL, lone surrogate)")
    password: Text
    device_name: Text = Field(default=DEFAULT_DEVICE_NAME, max_length=MAX_DEVICE_NAME_CHARS)


class ConversationPut(BaseModel):
    """``PUT /v1/conversations/{cid}`` body: ``title`` 1..200 characters, ``members``
    usernames (the caller is added; an unknown name answers 422), ``assistant`` adds the
    assistant member."""

    title: Text = Field(
        min_length=1,
        max_length=MAX_TITLE_CHARS,
        description=f"1..{MAX_TITLE_CHARS} characters after trimming surrounding whitespace",
        json_schema_extra={"pattern": TITLE_PATTERN},
    )
    members: list[Text] = Field(default_factory=list, max_length=MAX_MEMBERS)
    assistant: StrictBool = False
    model: ModelId | None = None
    system_prompt: SystemPrompt | None = None


class ConversationPatch(BaseModel):
    """``PATCH /v1/conversations/{cid}`` body: the fields to change, each optional (a field
    left out stays as it is; last write wins per field). ``title`` 1..200 characters after
    trimming; ``model`` a model id, or null for the server's default; ``system_prompt``
    the assistant's instructions, or null (or "") for the server's own."""

    # A string when given (null answers 422); absent when the title stays.
    title: Text = Field(  # type: ignore[assignment]
        default=None,
        min_length=1,
        max_length=MAX_TITLE_CHARS,
        description=f"1..{MAX_TITLE_CHARS} characters after trimming surrounding whitespace",
        json_schema_extra={"pattern": TITLE_PATTERN},
    )
    model: ModelId | None = None
    system_prompt: SystemPrompt | None = None

    def changes(self) -> dict[str, str | None]:
        """The fields the body names, ``{name: value}``: what the PATCH changes (an absent
        field is not a change; an explicit null is)."""
        return {name: getattr(self, name) for name in ("title", "model", "system_prompt")
                if name in self.model_fields_set}


class MessagePut(BaseModel):
    """``PUT /v1/conversations/{cid}/messages/{mid}`` body (send; ``mid`` is the
    idempotency key: a repeat returns the stored message unchanged, 200)."""

    body: Text = Field(
        min_length=1,
        description=f"1..{MAX_BODY_BYTES:,} UTF-8 bytes (413 when longer, 422 when empty)",
        json_schema_extra={"maxLength": MAX_BODY_BYTES, "x-max-utf8-bytes": MAX_BODY_BYTES},
    )


class MessagePatch(BaseModel):
    """``PATCH /v1/messages/{mid}`` body (edit, author only; bumps ``version``)."""

    body: Text = Field(
        min_length=1,
        description=f"1..{MAX_BODY_BYTES:,} UTF-8 bytes (413 when longer, 422 when empty)",
        json_schema_extra={"maxLength": MAX_BODY_BYTES, "x-max-utf8-bytes": MAX_BODY_BYTES},
    )
    base_version: StrictInt | None = Field(
        default=None, description="the version the edit was made on; informational"
    )


class RegenerateRequest(BaseModel):
    """``POST /v1/messages/{mid}/regenerate`` body: ``reply_id``, the client-chosen id of
    the new reply (the idempotency key: a repeat answers the reply made the first time)."""

    reply_id: uuid.UUID


class ReadRequest(BaseModel):
    """``POST /v1/conversations/{cid}/read`` body: move the caller's read marker to
    ``message_id`` (forward only)."""

    message_id: uuid.UUID

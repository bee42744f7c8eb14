"""Peewee models of the server's database (schema version: ``db.SCHEMA_VERSION``).

Portable across SQLite and PostgreSQL: ids are UUID strings (``CharField(36)``), times are
naive UTC ``datetime`` values, no backend-specific SQL. Every query the server runs is served
by an index declared here.

Change tracking (the delta-sync cursor, docs/api.md ``/v1/sync``): one row of
:class:`Counter` is incremented inside every writing transaction, which serialises writers so a
cursor never skips a commit. Rows stamp the counter value of their last change in
``change_seq``; a message's ``seq`` is the counter value of its creation, so "created after
cursor C" is ``seq > C`` and "changed after cursor C" is ``change_seq > C``. Every change in a
conversation also stamps ``Member.change_seq`` of each member, so "which of my conversations
changed since C" is one range scan of the ``(user, change_seq)`` index.
"""

from __future__ import annotations

from peewee import (
    BigIntegerField,
    BooleanField,
    CharField,
    CompositeKey,
    DatabaseProxy,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

database_proxy = DatabaseProxy()

#: The single row of :class:`Counter` that orders every change.
CHANGE_COUNTER = "change"


class BaseModel(Model):
    class Meta:
        database = database_proxy
        legacy_table_names = False


class SchemaVersion(BaseModel):
    """One row: the schema version of this database (see ``db.migrate_database``)."""

    version = IntegerField()


class Counter(BaseModel):
    """Named monotonic counters; ``change`` is the global change counter (the cursor)."""

    name = CharField(primary_key=True, max_length=32)
    value = BigIntegerField(default=0)


class User(BaseModel):
    """An account. ``password_hash`` None: cannot log in (imported authors, the assistant)."""

    id = CharField(primary_key=True, max_length=36)
    username = CharField(max_length=64, unique=True)
    password_hash = CharField(max_length=200, null=True)
    is_system = BooleanField(default=False)
    created_at = DateTimeField()


class Device(BaseModel):
    """One login of a user: its own bearer token (stored hashed), revocable by logout."""

    id = CharField(primary_key=True, max_length=36)
    user = ForeignKeyField(User, backref="devices", on_delete="CASCADE")
    name = CharField(max_length=200)
    token_hash = CharField(max_length=64, unique=True)
    created_at = DateTimeField()
    revoked_at = DateTimeField(null=True)


class Conversation(BaseModel):
    """A conversation; ``id`` is chosen by the client (docs/api.md, Conversation).

    ``message_count`` (tombstones included) and ``last_seq`` are kept up to date by writers so
    pages and lists never count or scan.
    """

    id = CharField(primary_key=True, max_length=36)
    title = CharField(max_length=200)
    creator = ForeignKeyField(User, backref="created_conversations")
    assistant = BooleanField(default=False)
    created_at = DateTimeField()
    updated_at = DateTimeField()
    message_count = IntegerField(default=0)
    last_seq = BigIntegerField(null=True)
    #: The model of the assistant's replies, None: the server's default (schema v4).
    model = CharField(max_length=200, null=True)
    #: The assistant's instructions, None: the server's own prompt (schema v4).
    system_prompt = TextField(null=True)


class Member(BaseModel):
    """Membership, with the member's read marker and the change stamp used by sync."""

    conversation = ForeignKeyField(Conversation, backref="member_rows", index=False)
    user = ForeignKeyField(User, backref="memberships", index=False)
    change_seq = BigIntegerField(default=0)
    read_message_id = CharField(max_length=36, null=True)
    read_seq = BigIntegerField(default=0)
    read_change_seq = BigIntegerField(default=0)

    class Meta:
        primary_key = CompositeKey("conversation", "user")
        indexes = ((("user", "change_seq"), False),)


class Message(BaseModel):
    """A message; ``id`` is the client-chosen idempotency key (docs/api.md, Message)."""

    id = CharField(primary_key=True, max_length=36)
    conversation = ForeignKeyField(Conversation, backref="messages", index=False)
    author = ForeignKeyField(User, backref="messages", index=False)
    body = TextField()
    created_at = DateTimeField()
    edited_at = DateTimeField(null=True)
    seq = BigIntegerField(unique=True)
    change_seq = BigIntegerField()
    version = IntegerField(default=1)
    deleted = BooleanField(default=False)
    streaming = BooleanField(default=False)
    error = BooleanField(default=False)
    #: For an assistant reply: the id of the user message it answers (schema v2).
    reply_to = CharField(max_length=36, null=True, index=True)
    #: For an assistant reply: the model that wrote it (schema v4).
    model = CharField(max_length=200, null=True)
    #: For an assistant reply: a member stopped it (schema v4).
    stopped = BooleanField(default=False)
    #: For a user message of an assistant conversation: the conversation's model and system
    #: prompt when it was sent, which its reply is written with, so a change made after it
    #: applies to the later messages only (schema v4).
    ask_model = CharField(max_length=200, null=True)
    ask_system_prompt = TextField(null=True)

    class Meta:
        indexes = (
            (("conversation", "seq"), True),
            (("conversation", "change_seq"), False),
            (("streaming",), False),
        )


class Departure(BaseModel):
    """A user who left a conversation or was removed from it, at change ``change_seq``
    (schema v4): its devices learn from ``/v1/sync`` that the conversation is gone for it
    (``removed: true``). Deleted when the user is added again."""

    conversation = ForeignKeyField(Conversation, backref="departures", index=False)
    user = ForeignKeyField(User, backref="departures", index=False)
    change_seq = BigIntegerField()

    class Meta:
        primary_key = CompositeKey("conversation", "user")
        indexes = ((("user", "change_seq"), False),)


class LoginFailure(BaseModel):
    """One failed login, counted against ``key`` (``u:<username>`` or ``a:<address>``)
    at ``at`` (naive UTC) by the login throttle (schema v3). Rows older than the throttle
    window are deleted as new failures arrive."""

    key = CharField(max_length=120)
    at = DateTimeField(index=True)

    class Meta:
        indexes = ((("key", "at"), False),)


class AssistantLease(BaseModel):
    """Which server process writes the assistant's replies in a conversation (schema v5):
    the process ``owner`` (its id, 32 hex digits) until ``expires_at`` (naive UTC), renewed
    while it works there (``chat_tui.server.assistant``). Another process takes a
    conversation over only when its lease has expired or is absent."""

    conversation = CharField(primary_key=True, max_length=36)
    owner = CharField(max_length=32)
    expires_at = DateTimeField(index=True)


ALL_MODELS: list[type[BaseModel]] = [
    SchemaVersion,
    Counter,
    User,
    Device,
    Conversation,
    Member,
    Message,
    LoginFailure,
    Departure,
    AssistantLease,
]

"""Peewee models of the account cache (schema version :data:`SCHEMA_VERSION`).

One SQLite file per account (docs/sync.md, "Local cache"). The models are built per
database by :func:`build_models`, so two accounts open in one process (tests, an app with
two logins) never share a binding.

Tables:

- ``meta``: key/value: account (``me``, ``user_id``, ``server_url``), sync state (``cursor``,
  ``last_synced_at``, ``auth_failed``, ``last_retention_at``), UI state (``last_conversation``).
- ``conversation``: the caller's conversations, with backfill state (``has_more``) and
  my read marker (``read_seq``); ``pk`` (v4) is the small integer key messages refer to,
  ``id`` the conversation's UUID (what every caller of the store sees); ``model`` and
  ``system_prompt`` (v5) what the assistant answers with (None: the server's own).
- ``message``: cached messages and local echoes; ``conv`` (v4) is the conversation's
  ``pk``; ``sort_key`` orders a conversation (server ``seq``, or ``LOCAL_ECHO_BASE + outbox
  id`` for an unacknowledged local echo); ``pending_body``/``pending_deleted`` hold my
  edit/delete until acknowledged; ``model`` and ``stopped`` (v5): the model that wrote an
  assistant reply, and whether a member stopped it.
- ``outbox``: one row per pending action, FIFO by ``id`` (never by clock).
- ``read_marker``: every member's read marker per conversation.
- ``gap``: holes left by ``limited`` syncs (v2).
- ``draft``, ``scroll_anchor``: per conversation UI state.
- ``remote_room``, ``remote_event`` (v5): a Matrix account's ids (docs/sync.md, rule M4):
  conversation id -> room id (and whether the room is encrypted, rule M3), message id <->
  event id. Kept by a reset (S6) and by retention: they name the server's objects.
- ``message_index``: FTS5 index over what the user sees of each message (the pending edit
  on top, nothing for tombstones), kept in step by triggers. Since v4 it is an
  external-content table over the view ``message_text`` (:data:`FTS_SCHEMA`): it holds no
  copy of the bodies; ``snippet()`` reads them from ``message`` through the view.

Schema v4 exists for the size of the file (benchmarks/NOTES.md): the
integer conversation key, the external-content FTS table, retention's index keyed by day
(:data:`INDEX_SCHEMA`), and no indexes that no query needs (``message.conversation_id``,
covered by ``(conv, sort_key)``; ``message.seq``).
"""

from __future__ import annotations

from types import SimpleNamespace

from peewee import (
    SQL,
    AutoField,
    BooleanField,
    CompositeKey,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Model,
    SqliteDatabase,
    TextField,
)

from chat_tui.store.outbox_state import OutboxState

SCHEMA_VERSION = 6
"""Current schema version, kept in ``PRAGMA user_version``. v1 is ``schema_v1.sql``."""

OUTBOX_KINDS = ("create_conversation", "send", "edit", "delete", "read", "update_conversation",
                "regenerate", "leave_conversation", "add_member", "remove_member")

CREATED_DAY = "CAST(created_at / 86400 AS INTEGER)"
"""The UTC day (days since the epoch) of ``message.created_at``, the key of retention's
index (sync rule R1). A query uses the index only when it spells the expression exactly
so (a literal 86400, not a bound parameter)."""

INDEX_SCHEMA = (
    # v4: by day, not by the exact time: a 2-byte key instead of an 8-byte float (12 B per
    # message instead of 32 B); retention reads a day range and checks the exact time.
    f"CREATE INDEX IF NOT EXISTS message_created_day ON message ({CREATED_DAY})",
)
"""Indexes Peewee's model options cannot express, created with the tables."""

FTS_SCHEMA = (
    # What the index holds, one row per message the user can find: the pending edit on top,
    # nothing for tombstones. The FTS5 table reads bodies through it (external content), so
    # the file holds each body once (v4).
    """CREATE VIEW IF NOT EXISTS message_text (pk, body) AS
         SELECT pk, coalesce(pending_body, body) FROM message
          WHERE NOT deleted AND NOT pending_deleted""",
    """CREATE VIRTUAL TABLE IF NOT EXISTS message_index USING fts5 (
         body, content='message_text', content_rowid='pk',
         tokenize='unicode61 remove_diacritics 2')""",
)
"""The FTS5 index and the view it reads (v4). An external-content index must be told
exactly what it held for a row to forget it, so every change of the indexed values goes
through :data:`FTS_TRIGGERS`; ``INSERT INTO message_index(message_index) VALUES('rebuild')``
recomputes it from the view."""

FTS_TRIGGERS = (
    # The index holds what the user sees: the pending edit on top, nothing for tombstones.
    # A row leaves the index with the exact values it was indexed with (the old row's).
    """CREATE TRIGGER IF NOT EXISTS message_ai AFTER INSERT ON message
       WHEN NOT new.deleted AND NOT new.pending_deleted BEGIN
         INSERT INTO message_index(rowid, body) VALUES (new.pk, coalesce(new.pending_body, new.body));
       END""",
    """CREATE TRIGGER IF NOT EXISTS message_ad AFTER DELETE ON message
       WHEN NOT old.deleted AND NOT old.pending_deleted BEGIN
         INSERT INTO message_index(message_index, rowid, body)
           VALUES ('delete', old.pk, coalesce(old.pending_body, old.body));
       END""",
    """CREATE TRIGGER IF NOT EXISTS message_au AFTER UPDATE OF body, pending_body, deleted,
       pending_deleted ON message BEGIN
         INSERT INTO message_index(message_index, rowid, body)
           SELECT 'delete', old.pk, coalesce(old.pending_body, old.body)
           WHERE NOT old.deleted AND NOT old.pending_deleted;
         INSERT INTO message_index(rowid, body)
           SELECT new.pk, coalesce(new.pending_body, new.body)
           WHERE NOT new.deleted AND NOT new.pending_deleted;
       END""",
)


def build_models(db: SqliteDatabase) -> SimpleNamespace:
    """Return a namespace of model classes bound to ``db`` (``Meta``, ``Conversation``,
    ``Message``, ``Outbox``, ``ReadMarker``, ``Gap``, ``Draft``, ``ScrollAnchor``, and
    ``all``: every model in creation order). The FTS5 index is not a model: it is created
    by :data:`FTS_SCHEMA`."""

    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class MetaRow(Base):
        key = TextField(primary_key=True)
        value = TextField(null=True)

        class Meta:
            table_name = "meta"

    class Conversation(Base):
        pk = AutoField()  # v4: the key messages refer to (4 bytes, not a 36-character UUID)
        id = TextField(unique=True)
        title = TextField()
        creator = TextField()
        members = TextField(default="[]")  # JSON list of usernames, sorted
        assistant = BooleanField(default=False)
        created_at = FloatField(null=True)  # epoch seconds, UTC
        updated_at = FloatField(null=True)
        last_activity_at = FloatField(null=True)
        unread_count = IntegerField(default=0)
        pending = BooleanField(default=False)  # created offline, not yet on the server
        removed = BooleanField(default=False)  # v2: the caller is no longer a member
        has_more = BooleanField(default=True)  # older messages may exist on the server
        read_seq = IntegerField(null=True)  # my read marker
        read_message_id = TextField(null=True)
        # v3: highest seq received through sync or backfill (never through an ack of my
        # own send): what a ``limited`` delta's gap is measured against (sync rule S4).
        synced_seq = IntegerField(null=True)
        # v5: the model and system prompt of the assistant's replies (None: the server's).
        model = TextField(null=True)
        system_prompt = TextField(null=True)

        class Meta:
            table_name = "conversation"

    class Message(Base):
        pk = AutoField()  # stable rowid for the FTS index
        id = TextField(unique=True)
        # v4: Conversation.pk (the store maps it to and from the conversation's id).
        conv = IntegerField(
            constraints=[SQL('REFERENCES "conversation" ("pk") ON DELETE CASCADE')])
        author = TextField()
        body = TextField(default="")
        created_at = FloatField()
        edited_at = FloatField(null=True)
        seq = IntegerField(null=True)  # no index: every query by seq is per conversation
        version = IntegerField(null=True)
        deleted = BooleanField(default=False)
        streaming = BooleanField(default=False)
        error = BooleanField(default=False)
        sort_key = IntegerField()
        pending_body = TextField(null=True)
        pending_deleted = BooleanField(default=False)
        model = TextField(null=True)  # v5: the model that wrote an assistant reply
        # v5: a member stopped the reply. DEFAULT 0 in SQL too: the v4 step rebuilds this
        # table from today's model and copies the older columns only.
        stopped = BooleanField(default=False, constraints=[SQL("DEFAULT 0")])

        class Meta:
            table_name = "message"
            # (conv, sort_key) serves every per-conversation query, plain ``conv`` included;
            # retention's index on the creation day is in INDEX_SCHEMA (an expression).
            indexes = ((("conv", "sort_key"), False),)

    class Outbox(Base):
        id = AutoField()  # the local FIFO sequence
        kind = TextField()
        conversation_id = TextField(index=True)
        message_id = TextField(null=True, index=True)
        payload = TextField(default="{}")  # JSON
        state = TextField(default=OutboxState.QUEUED.value)  # stored OutboxState values
        attempts = IntegerField(default=0)  # attempts that reached the server
        transient_failures = IntegerField(default=0)  # drives the backoff step
        next_attempt_at = FloatField(default=0.0)
        last_error = TextField(null=True)
        created_at = FloatField()
        queued_at = FloatField()  # v2: start of the expiry clock (send anyway resets it)

        class Meta:
            table_name = "outbox"

    class ReadMarker(Base):
        conversation_id = TextField()
        username = TextField()
        message_id = TextField()
        seq = IntegerField()

        class Meta:
            table_name = "read_marker"
            primary_key = CompositeKey("conversation_id", "username")

    class Gap(Base):
        id = AutoField()
        conversation = ForeignKeyField(
            Conversation, field="id", column_name="conversation_id", on_delete="CASCADE",
            backref="gaps"
        )
        before_message_id = TextField()
        before_seq = IntegerField()
        after_seq = IntegerField(null=True)

        class Meta:
            table_name = "gap"

    class Draft(Base):
        conversation_id = TextField(primary_key=True)  # no FK: a reset never drops drafts
        text = TextField(default="")
        cursor_row = IntegerField(default=0)
        cursor_col = IntegerField(default=0)
        updated_at = FloatField()

        class Meta:
            table_name = "draft"

    class ScrollAnchor(Base):
        conversation_id = TextField(primary_key=True)
        message_id = TextField()

        class Meta:
            table_name = "scroll_anchor"

    class RemoteRoom(Base):
        conversation_id = TextField(primary_key=True)
        room_id = TextField(index=True)
        encrypted = BooleanField(default=False)

        class Meta:
            table_name = "remote_room"

    class RemoteEvent(Base):
        message_id = TextField(primary_key=True)
        room_id = TextField()
        event_id = TextField(unique=True)
        seq = IntegerField(default=0)

        class Meta:
            table_name = "remote_event"

    return SimpleNamespace(
        Meta=MetaRow,
        RemoteRoom=RemoteRoom,
        RemoteEvent=RemoteEvent,
        Conversation=Conversation,
        Message=Message,
        Outbox=Outbox,
        ReadMarker=ReadMarker,
        Gap=Gap,
        Draft=Draft,
        ScrollAnchor=ScrollAnchor,
        all=[MetaRow, Conversation, Message, Outbox, ReadMarker, Gap, Draft, ScrollAnchor,
             RemoteRoom, RemoteEvent],
        cache=[Conversation, Message, ReadMarker, Gap],
    )

"""Opening the server database and keeping its schema at :data:`SCHEMA_VERSION`.

``--db`` takes a file path (SQLite, WAL mode) or a URL understood by ``playhouse.db_url``
(``sqlite:///path``, ``postgresql://user:pass@host/dbname``; PostgreSQL needs ``psycopg2``).

Schema versions: a fresh database is created at the latest version directly from the models;
an older one is upgraded step by step by the functions in :data:`MIGRATIONS`, each using
``playhouse.migrate`` and run in its own transaction with the version bump. A database newer
than this code is refused (:class:`SchemaError`) rather than touched.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from peewee import Database, PostgresqlDatabase, SqliteDatabase
from playhouse import db_url
from playhouse.migrate import PostgresqlMigrator, SchemaMigrator, SqliteMigrator, migrate

from chat_tui.server import pgbus
from chat_tui.server.models import (
    ALL_MODELS,
    CHANGE_COUNTER,
    AssistantLease,
    Conversation,
    Counter,
    Departure,
    LoginFailure,
    Message,
    SchemaVersion,
    User,
    database_proxy,
)
from chat_tui.wire.limits import ASSISTANT_USERNAME  # reserved: never a real account

T = TypeVar("T")

#: The schema version this code writes. Bump it together with a new entry in MIGRATIONS.
SCHEMA_VERSION = 5


#: SQLite settings: WAL (readers never block the writer), full fsync on commit (an answered
#: send survives power loss), wait up to 10 s for a lock held by another process (CLI import).
SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "full",
    "foreign_keys": 1,
    "busy_timeout": 10_000,
    "cache_size": -16_000,
}


class SchemaError(RuntimeError):
    """The database's schema version cannot be used by this code (e.g. it is newer)."""


def utcnow() -> dt.datetime:
    """Current time as a naive UTC datetime (the storage convention of every time column)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def database_url(target: str | Path) -> str:
    """Turn a ``--db`` value (path or URL) into a ``playhouse.db_url`` URL."""
    text = str(target)
    if "://" in text:
        return text
    return "sqlite:///" + str(Path(text).expanduser().resolve())


def open_database(target: str | Path) -> Database:
    """Open (connect lazily) the database at ``target`` and bind the models to it.

    ``target``: file path or URL (see module doc). Returns the peewee ``Database``; connections
    are per thread (peewee's default). Opening the same target again in this process returns
    the same object (an embedded server and ``ensure_local_account`` share it). The models
    are bound to one database per process. Raises ``RuntimeError``/``ValueError`` from
    ``playhouse.db_url`` on an unsupported or malformed URL.
    """
    url = database_url(target)
    with _open_lock:
        db = _open.get(url)
        if db is None:
            db = _open[url] = _connect(url)
        database_proxy.initialize(db)
    return db


_open: dict[str, Database] = {}
_open_lock = threading.Lock()


def _connect(url: str) -> Database:
    if url.startswith("sqlite"):
        path = Path(url.split(":///", 1)[1])
        path.parent.mkdir(parents=True, exist_ok=True)
        db = db_url.connect(url, pragmas=SQLITE_PRAGMAS, check_same_thread=False)
    else:
        db = db_url.connect(url)
    return db


def is_sqlite(db: Database) -> bool:
    """True for a SQLite database (writers then also take an in-process lock)."""
    return isinstance(db, SqliteDatabase)


_sqlite_write_lock = threading.Lock()


class _Notices(threading.local):
    """The notices a PostgreSQL write transaction of this thread sends at its commit."""

    def __init__(self) -> None:
        self.open = False  # inside a PostgreSQL write transaction
        self.wake: set[str] = set()
        self.devices: set[str] = set()
        self.users: set[str] = set()
        self.origin: str | None = None  # the device whose request runs on this thread


_notices = _Notices()


@contextmanager
def change_origin(device_id: str | None) -> Iterator[None]:
    """Name ``device_id`` as the device whose request makes the changes committed on this
    thread meanwhile: the wake-ups other processes receive leave its long-polls alone
    (docs/api.md, ``GET /v1/sync``, long-poll). None: the server itself."""
    before, _notices.origin = _notices.origin, device_id
    try:
        yield
    finally:
        _notices.origin = before


def current_origin() -> str | None:
    """The device named by the enclosing :func:`change_origin` on this thread (None: the
    server itself)."""
    return _notices.origin


def wake_on_commit(user_ids: set[str] | list[str]) -> None:
    """Inside a write transaction: the commit wakes the long-polls of ``user_ids`` in every
    other server process on the database (PostgreSQL ``NOTIFY``, sent in the transaction:
    :mod:`chat_tui.server.pgbus`). Nothing to do on SQLite (one process) or outside a
    write transaction."""
    if _notices.open:
        _notices.wake.update(user_ids)


def revoke_on_commit(device_ids: Iterable[str] = (), user_ids: Iterable[str] = ()) -> None:
    """Inside a write transaction: the commit tells every server process on the database
    that the tokens of ``device_ids``, and of every device of ``user_ids``, are revoked
    (their token caches forget them). Nothing to do on SQLite or outside a write
    transaction."""
    if _notices.open:
        _notices.devices.update(device_ids)
        _notices.users.update(user_ids)


def _send_notices(db: Database) -> None:
    payloads = [
        *pgbus.encode(pgbus.WAKE, _notices.wake, _notices.origin),
        *pgbus.encode(pgbus.REVOKED_DEVICES, _notices.devices),
        *pgbus.encode(pgbus.REVOKED_USERS, _notices.users),
    ]
    for payload in payloads:
        db.execute_sql("SELECT pg_notify(%s, %s)", (pgbus.CHANNEL, payload))


@contextmanager
def write_transaction(db: Database) -> Iterator[None]:
    """A transaction that holds the database's single write lock from its first statement.

    SQLite: ``BEGIN IMMEDIATE`` under a process-wide lock (threads queue in Python instead of
    spinning in SQLite's busy handler). PostgreSQL: ``SELECT ... FOR UPDATE`` of the change
    counter row, and the notices queued inside (:func:`wake_on_commit`,
    :func:`revoke_on_commit`) sent with ``pg_notify`` right before the commit, so other
    processes hear of exactly the committed changes. Either way writers are serialised, so
    check-then-insert is race free and counter values commit in order.
    """
    db.connect(reuse_if_open=True)
    if is_sqlite(db):
        if _group.open:  # one call of a group commit: a savepoint of its transaction
            with db.atomic():
                yield
            return
        with _sqlite_write_lock, db.atomic(lock_type="IMMEDIATE"):
            yield
    elif _notices.open:  # nested: part of the enclosing transaction
        with db.atomic():
            yield
    else:
        with db.atomic():
            Counter.select().where(Counter.name == CHANGE_COUNTER).for_update().execute()
            _notices.open = True
            try:
                yield
                _send_notices(db)
            finally:
                _notices.open = False
                _notices.wake.clear()
                _notices.devices.clear()
                _notices.users.clear()


class _Group(threading.local):
    """Whether this thread is running the calls of a SQLite group commit."""

    def __init__(self) -> None:
        self.open = False


_group = _Group()


def group_commit(db: Database, calls: Sequence[Callable[[], T]]) -> list[tuple[bool, Any]]:
    """Run the write ``calls`` of several requests in one SQLite write transaction, each in
    its own savepoint, and commit them together: one ``BEGIN IMMEDIATE`` and one fsync'd
    commit for all of them instead of one each.

    Each call runs as it would alone: its :func:`write_transaction` becomes a savepoint,
    so a call that raises rolls back its own changes only and the others stay. Returns
    ``(True, value)`` or ``(False, exception)`` per call, in order; nothing is answered
    before the commit, so every answered write is as durable as a write committed alone
    (``synchronous=FULL``). Raises what the ``BEGIN`` or the ``COMMIT`` raises (then none
    of the calls took effect). SQLite only: a PostgreSQL transaction carries one request's
    wake-up origin (:func:`change_origin`), so there each write commits alone.
    """
    if not is_sqlite(db):
        raise ValueError("group_commit is for SQLite databases")
    db.connect(reuse_if_open=True)
    results: list[tuple[bool, Any]] = []
    with _sqlite_write_lock, db.atomic(lock_type="IMMEDIATE"):
        _group.open = True
        try:
            for call in calls:
                try:
                    results.append((True, call()))
                except Exception as exc:  # this call's answer; the others go on
                    results.append((False, exc))
        finally:
            _group.open = False
    return results


@contextmanager
def read_transaction(db: Database) -> Iterator[None]:
    """A read transaction: one consistent snapshot for every query inside.

    SQLite (WAL): a deferred transaction reads one snapshot from its first query on.
    PostgreSQL: ``REPEATABLE READ`` (the default READ COMMITTED takes a new snapshot per
    statement, so ``Sync.read`` could read the cursor, then see rows committed after it
    and skip them in the next delta: docs/api.md, ``GET /v1/sync``). Read-only, so it never
    fails with a serialisation error.
    """
    db.connect(reuse_if_open=True)
    if is_sqlite(db):
        with db.atomic():
            yield
    else:
        with db.atomic(isolation_level="REPEATABLE READ"):
            yield


def bump_counter(n: int = 1) -> int:
    """Reserve ``n`` change-counter values inside a write transaction; returns the last one.

    The reserved values are ``last - n + 1 .. last``.
    """
    Counter.update(value=Counter.value + n).where(Counter.name == CHANGE_COUNTER).execute()
    return Counter.get(Counter.name == CHANGE_COUNTER).value


def current_cursor() -> int:
    """The change counter's current value (the newest cursor)."""
    return Counter.get(Counter.name == CHANGE_COUNTER).value


def _migrator(db: Database) -> SchemaMigrator:
    return SqliteMigrator(db) if is_sqlite(db) else PostgresqlMigrator(db)


def _v2_reply_to(db: Database, migrator: SchemaMigrator) -> None:
    """v2: ``message.reply_to`` links an assistant reply to the message it answers; indexes
    on it and on ``message.streaming`` serve the assistant's start-up recovery."""
    migrate(
        migrator.add_column("message", "reply_to", Message.reply_to),  # with its index
        migrator.add_index("message", ("streaming",), False),
    )


def _v3_login_failures(db: Database, migrator: SchemaMigrator) -> None:
    """v3: the ``login_failure`` table of the login throttle, with its indexes."""
    db.create_tables([LoginFailure], safe=True)


def _v4_conversation_settings(db: Database, migrator: SchemaMigrator) -> None:
    """v4: a conversation's ``model`` and ``system_prompt``; on a message, the ``model``
    that wrote a reply, ``stopped`` (a member stopped the reply) and the settings a user
    message was sent under (``ask_model``, ``ask_system_prompt``); the ``departure`` table
    (members who left or were removed)."""
    db.create_tables([Departure], safe=True)
    migrate(
        migrator.add_column("conversation", "model", Conversation.model),
        migrator.add_column("conversation", "system_prompt", Conversation.system_prompt),
        migrator.add_column("message", "model", Message.model),
        migrator.add_column("message", "stopped", Message.stopped),
        migrator.add_column("message", "ask_model", Message.ask_model),
        migrator.add_column("message", "ask_system_prompt", Message.ask_system_prompt),
    )


def _v5_assistant_leases(db: Database, migrator: SchemaMigrator) -> None:
    """v5: the ``assistant_lease`` table: which server process writes the assistant's
    replies of a conversation, until when."""
    db.create_tables([AssistantLease], safe=True)


#: version -> function upgrading from ``version - 1``. Never edit a shipped entry; add one.
#: An upgrade runs the entries above the database's version in order; a version without
#: an entry changes nothing.
MIGRATIONS: dict[int, Callable[[Database, SchemaMigrator], None]] = {
    2: _v2_reply_to,
    3: _v3_login_failures,
    4: _v4_conversation_settings,
    5: _v5_assistant_leases,
}


def _seed() -> None:
    Counter.insert(name=CHANGE_COUNTER, value=0).on_conflict_ignore().execute()
    if not User.select().where(User.username == ASSISTANT_USERNAME).exists():
        User.create(
            id=str(uuid.uuid4()),
            username=ASSISTANT_USERNAME,
            password_hash=None,
            is_system=True,
            created_at=utcnow(),
        )


def migrate_database(db: Database) -> int:
    """Create or upgrade the schema to :data:`SCHEMA_VERSION`; returns the version found.

    0 means the database was empty. Raises :class:`SchemaError` when the database is newer
    than this code.
    """
    db.connect(reuse_if_open=True)
    with write_transaction_for_migration(db):
        db.create_tables([SchemaVersion], safe=True)
        row = SchemaVersion.select().first()
        found = row.version if row else 0
        if found > SCHEMA_VERSION:
            raise SchemaError(
                f"the database has schema version {found}, newer than this chat-tui-server "
                f"understands ({SCHEMA_VERSION}); upgrade chat-tui-server"
            )
        if found == 0:
            db.create_tables(ALL_MODELS, safe=True)
            SchemaVersion.create(version=SCHEMA_VERSION)
        else:
            migrator = _migrator(db)
            for version in sorted(v for v in MIGRATIONS if found < v <= SCHEMA_VERSION):
                MIGRATIONS[version](db, migrator)
                SchemaVersion.update(version=version).execute()
            SchemaVersion.update(version=SCHEMA_VERSION).execute()
        _seed()
    return found


@contextmanager
def write_transaction_for_migration(db: Database) -> Iterator[None]:
    """Like :func:`write_transaction`, without needing the counter row to exist yet.

    Two processes may migrate one database at once (``serve`` and ``add-user`` started
    together). SQLite serialises them with ``BEGIN IMMEDIATE``; PostgreSQL with a
    transaction-scoped advisory lock, since concurrent ``CREATE TABLE IF NOT EXISTS`` can
    fail there.
    """
    if is_sqlite(db):
        with _sqlite_write_lock, db.atomic(lock_type="IMMEDIATE"):
            yield
    else:
        with db.atomic():
            if isinstance(db, PostgresqlDatabase):
                db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
            yield


#: PostgreSQL advisory lock key held while migrating (any constant unique to this app).
MIGRATION_LOCK_KEY = 0x63687475  # "chtu"


def open_and_migrate(target: str | Path) -> Database:
    """:func:`open_database` then :func:`migrate_database`; the usual way in."""
    db = open_database(target)
    migrate_database(db)
    return db

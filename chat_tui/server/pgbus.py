"""What server processes on one PostgreSQL database tell each other: ``LISTEN/NOTIFY``
(docs/api.md, Several server processes).

A writing transaction queues its notices (:func:`chat_tui.server.db.wake_on_commit`,
:func:`chat_tui.server.db.revoke_on_commit`) and sends them with ``pg_notify`` on the
channel :data:`CHANNEL` right before its commit, so PostgreSQL delivers them exactly when
the change becomes visible, and never for a transaction that rolls back. Every server
process holds one listening connection (:class:`Listener`, a thread) and hands each notice
to its event loop:

- ``w``: a change for the listed user ids; the process's
  :class:`~chat_tui.server.notify.Notifier` wakes their long-polls (except those of the
  device that made the change);
- ``d`` / ``u``: the tokens of the listed devices / of every device of the listed users
  were revoked; the process's token cache forgets them;
- ``s``: a member asked to stop the listed assistant replies; the process writing one of
  them stops it (``POST /v1/messages/{mid}/stop`` reached another process).

A payload is text: ``<kind> <process id> <origin device or -> <id> <id> ...`` and at most
:data:`MAX_PAYLOAD_BYTES` bytes (PostgreSQL's limit is 8000); longer id lists are split into
several notices. A process ignores the wake-ups it sent itself (it woke its own long-polls
after the commit already).

SQLite has one server process and no notices: nothing here runs there.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

log = logging.getLogger("chat_tui.server.pgbus")

#: The ``LISTEN``/``NOTIFY`` channel of chat-tui-server.
CHANNEL = "chat_tui_server"
#: Longest payload sent (bytes); PostgreSQL accepts up to 8000.
MAX_PAYLOAD_BYTES = 7900
#: Seconds between two attempts to connect the listener again after its connection failed.
RECONNECT_SECONDS = 1.0
#: Seconds the listener waits on an idle connection before it checks that it still works.
IDLE_CHECK_SECONDS = 30.0

_process: tuple[int, str] | None = None


def process_id() -> str:
    """This process, as named in every notice it sends (32 hex digits): new in each
    process, forked ones included (``serve --workers``)."""
    global _process
    pid = os.getpid()
    if _process is None or _process[0] != pid:
        _process = (pid, uuid.uuid4().hex)
    return _process[1]


WAKE = "w"
REVOKED_DEVICES = "d"
REVOKED_USERS = "u"
STOP_REPLIES = "s"
KINDS = (WAKE, REVOKED_DEVICES, REVOKED_USERS, STOP_REPLIES)


@dataclass(frozen=True)
class Notice:
    """One decoded notice: ``kind`` (:data:`WAKE`, :data:`REVOKED_DEVICES`,
    :data:`REVOKED_USERS` or :data:`STOP_REPLIES`), the ``sender`` process id, the ``origin`` device of a wake-up
    (None: the server itself, or not a wake-up) and the ``ids`` (user or device ids)."""

    kind: str
    sender: str
    origin: str | None
    ids: tuple[str, ...]


def send_now(db, kind: str, ids: Iterable[str]) -> None:
    """Send the notices of ``ids`` at once (``db``: the peewee ``PostgresqlDatabase``,
    outside a transaction, so each ``pg_notify`` commits by itself)."""
    db.connect(reuse_if_open=True)
    for payload in encode(kind, ids):
        db.execute_sql("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


def encode(kind: str, ids: Iterable[str], origin: str | None = None,
           sender: str | None = None) -> Iterator[str]:
    """The payloads announcing ``ids`` (sorted, split so that each payload is at most
    :data:`MAX_PAYLOAD_BYTES` bytes) from ``sender`` (None: this process,
    :func:`process_id`). Ids are uuids (no spaces). Raises ValueError for an unknown
    ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"unknown notice kind {kind!r}")
    head = f"{kind} {sender or process_id()} {origin or '-'}"
    payload = head
    for item in sorted(ids):
        if len(payload) + 1 + len(item) > MAX_PAYLOAD_BYTES and payload != head:
            yield payload
            payload = head
        payload += " " + item
    if payload != head:
        yield payload


def decode(payload: str) -> Notice | None:
    """The :class:`Notice` of a payload made by :func:`encode`; None for anything else
    (another program's notice on the channel is ignored)."""
    parts = payload.split(" ")
    if len(parts) < 4 or parts[0] not in KINDS:
        return None
    origin = None if parts[2] == "-" else parts[2]
    return Notice(parts[0], parts[1], origin, tuple(parts[3:]))


class Listener:
    """One ``LISTEN`` connection of this process, read by a daemon thread.

    Args:
        connect: opens a new psycopg2 connection to the database.
        deliver: called on the event loop thread with each :class:`Notice` sent by another
            process (wake-ups this process sent itself are left out).
        connected: called on the event loop thread each time the listener is (again)
            connected, after its ``LISTEN`` took effect: notices sent while it was not
            connected are lost, so the callee treats everything as changed.
        lost: called on the event loop thread when the connection fails (it is retried
            every :data:`RECONNECT_SECONDS`).

    :attr:`is_connected` is True while notices are being received.
    """

    def __init__(self, connect: Callable[[], object], deliver: Callable[[Notice], None],
                 connected: Callable[[], None], lost: Callable[[], None]) -> None:
        self.connect = connect
        self.deliver = deliver
        self.connected = connected
        self.lost = lost
        self.is_connected = False
        self._loop = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._first = threading.Event()
        self._first_error: BaseException | None = None

    def start(self, loop, timeout: float = 10.0) -> None:
        """Start the thread on ``loop`` (an asyncio loop) and wait until the first
        ``LISTEN`` took effect. Raises the connection error when the first attempt
        fails, TimeoutError when it takes longer than ``timeout`` seconds."""
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="pg-listener", daemon=True)
        self._thread.start()
        if not self._first.wait(timeout):
            self.stop()
            raise TimeoutError("the PostgreSQL listener did not connect in time")
        if self._first_error is not None:
            self.stop()
            raise self._first_error

    def stop(self) -> None:
        """Stop the thread and close its connection (waits at most 5 s)."""
        self._stop.set()
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(5)
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def _call(self, fn: Callable, *args) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop is closed: the server is stopping
            self._stop.set()

    def _run(self) -> None:
        import psycopg2

        while not self._stop.is_set():
            conn = None
            try:
                conn = self.connect()
                conn.autocommit = True
                conn.cursor().execute(f"LISTEN {CHANNEL}")
                self.is_connected = True
                self._call(self.connected)
                self._first.set()
                self._listen(conn)
            except psycopg2.Error as exc:
                if not self._first.is_set():
                    self._first_error = exc
                    self._first.set()
                    return
                if not self._stop.is_set():
                    log.warning("PostgreSQL listener lost its connection: %s",
                                str(exc).strip()[:200])
            finally:
                if self.is_connected:
                    self.is_connected = False
                    if not self._stop.is_set():
                        self._call(self.lost)
                if conn is not None:
                    try:
                        conn.close()
                    except psycopg2.Error:
                        pass
            self._stop.wait(RECONNECT_SECONDS)

    def _listen(self, conn) -> None:
        me = process_id()
        while not self._stop.is_set():
            ready, _, _ = select.select([conn, self._wake_r], [], [], IDLE_CHECK_SECONDS)
            if not ready:
                conn.cursor().execute("SELECT 1")  # raises when the connection is gone
            elif self._wake_r in ready:
                return
            conn.poll()
            while conn.notifies:
                note = conn.notifies.pop(0)
                notice = decode(note.payload)
                if notice is None or (notice.kind == WAKE and notice.sender == me):
                    continue
                self._call(self.deliver, notice)


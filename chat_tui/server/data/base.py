"""What every data module of the server shares: the caller, a write's outcome, the
username cache and the bookkeeping of a change (the members' ``change_seq``).

Every data method is synchronous and blocking: routes run it in a worker thread
(``anyio.to_thread``) so the event loop never waits on the database. Writers run inside
``db.write_transaction`` (serialised), stamp their changes with the global change counter
and report the users whose devices must be woken (``affected``), so the route notifies
long-polls after the commit.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from peewee import Database, Expression, chunked

from chat_tui.server.db import bump_counter, utcnow, wake_on_commit
from chat_tui.server.errors import not_found
from chat_tui.server.models import Conversation, Member, Message, User
from chat_tui.wire.limits import USERNAME_RE


def normalize_username(name: str) -> str:
    """Case-fold ``name`` and check it against ``[a-z0-9_.-]{1,64}`` (docs/api.md,
    Conventions). Raises ValueError otherwise."""
    folded = name.strip().lower()
    if not USERNAME_RE.match(folded):
        raise ValueError(f"invalid username {name!r}: use 1 to 64 of a-z, 0-9, '_', '.', '-'")
    return folded


def as_utc(value: dt.datetime | str | None) -> dt.datetime | None:
    """A stored time (naive UTC; SQLite may hand back text for unusual stored values) as
    the naive UTC ``datetime`` the wire models write; None stays None."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: user id, username and the device (token) in use."""

    user_id: str
    username: str
    device_id: str


@dataclass
class Write:
    """What a writer reports: the wire object ``value`` (a ``chat_tui.wire`` model),
    whether the call ``created`` something new (the route answers 201 then, else 200),
    the users to wake (``affected``, empty when nothing changed), and, for a new user
    message in an assistant conversation, the assistant's job ``(cid, mid)`` (for a
    regenerated reply ``(cid, mid, reply id)``: the reply to write to message ``mid``)."""

    value: Any
    created: bool = False
    affected: set[str] = field(default_factory=set)
    assistant_job: tuple[str, ...] | None = None


class Names:
    """The ``user id -> username`` cache (thread safe; usernames never change)."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        self._lock = threading.Lock()

    def of(self, user_id: str) -> str:
        """Username of ``user_id`` (one query the first time). Raises ``User.DoesNotExist``
        for an unknown id."""
        name = self._names.get(user_id)
        if name is None:
            name = User.get_by_id(user_id).username
            with self._lock:
                self._names[user_id] = name
        return name

    def of_many(self, user_ids: Iterable[str]) -> dict[str, str]:
        """``user id -> username`` holding at least ``user_ids`` (one query per 500
        unknown ids)."""
        missing = [u for u in set(user_ids) if u not in self._names]
        for batch in chunked(missing, 500):
            rows = User.select(User.id, User.username).where(User.id.in_(batch)).tuples()
            with self._lock:
                self._names.update(rows)
        return self._names


def member_where(cid: str, user_id: str) -> Expression:
    """The where clause that selects the ``Member`` row of user ``user_id`` in
    conversation ``cid`` (at most one: the pair is the table's key)."""
    return (Member.conversation == cid) & (Member.user == user_id)


def member_row(cid: str, user_id: str) -> Member | None:
    """The ``Member`` row of user ``user_id`` in conversation ``cid``; None when the user
    is not a member (or there is no such conversation)."""
    return Member.get_or_none(member_where(cid, user_id))


def restamp(msg: Message, seq: int, **fields: Any) -> None:
    """Give the message row ``msg`` the column values ``fields``, the next ``version`` and
    ``change_seq`` = ``seq`` (the change counter value of the write), and save it."""
    for name, value in fields.items():
        setattr(msg, name, value)
    msg.version += 1
    msg.change_seq = seq
    msg.save()


class Repository:
    """Base of the data modules: the database and the shared username cache."""

    def __init__(self, db: Database, names: Names) -> None:
        self.db = db
        self.names = names

    def membership(self, user_id: str, cid: str) -> Member:
        """The caller's ``Member`` row of ``cid``; ApiError 404 when not a member (an
        unknown conversation looks the same, docs/api.md Errors)."""
        member = member_row(cid, user_id)
        if member is None:
            raise not_found("conversation not found")
        return member

    def member_message(self, user_id: str, mid: str) -> Message:
        """Message ``mid`` when ``user_id`` is a member of its conversation; ApiError 404
        (``message not found``, ``conversation not found``) otherwise: an unknown message
        and one the caller may not see answer alike (docs/api.md Errors)."""
        msg = Message.get_or_none(Message.id == mid)
        if msg is None:
            raise not_found("message not found")
        self.membership(user_id, msg.conversation_id)
        return msg

    def member_ids(self, cid: str) -> set[str]:
        """User ids of the members of ``cid``."""
        return {
            uid for (uid,) in Member.select(Member.user).where(Member.conversation == cid).tuples()
        }

    def touch(self, cid: str, seq: int, now: dt.datetime | None, **conv_updates: Any) -> set[str]:
        """Stamp a change of conversation ``cid`` at change counter ``seq``: every member's
        ``change_seq`` (so their next sync sees it), ``updated_at`` = ``now`` unless None,
        and any other ``Conversation`` column in ``conv_updates``. Returns the member ids
        (the users to wake), whom the commit also wakes in the other server processes
        (``db.wake_on_commit``)."""
        if now is not None:
            conv_updates["updated_at"] = now
        if conv_updates:
            Conversation.update(**conv_updates).where(Conversation.id == cid).execute()
        Member.update(change_seq=seq).where(Member.conversation == cid).execute()
        members = self.member_ids(cid)
        wake_on_commit(members)
        return members

    def append_message(self, cid: str, **fields: Any) -> tuple[Message, set[str]]:
        """Create a message row of conversation ``cid`` with the columns ``fields`` (at
        least ``id``, ``author`` and ``body``), stamped with a new change counter value as
        its ``seq`` and ``change_seq``, ``version`` 1 and ``created_at`` now; the
        conversation counts one more message and moves its ``last_seq`` and
        ``updated_at``. Call inside a write transaction. Returns the row and the member
        ids to wake."""
        seq = bump_counter()
        now = utcnow()
        msg = Message.create(
            conversation=cid, created_at=now, seq=seq, change_seq=seq, version=1, **fields
        )
        affected = self.touch(
            cid, seq, now, message_count=Conversation.message_count + 1, last_seq=seq
        )
        return msg, affected

    def rewrite_message(self, msg: Message, now: dt.datetime | None,
                        **fields: Any) -> set[str]:
        """Change the message row ``msg`` to the column values ``fields`` at a new change
        counter value (``restamp``) and stamp its conversation (``touch``, ``updated_at``
        = ``now`` unless None). Call inside a write transaction. Returns the member ids to
        wake."""
        seq = bump_counter()
        restamp(msg, seq, **fields)
        return self.touch(msg.conversation_id, seq, now)

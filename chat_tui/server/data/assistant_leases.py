"""The leases that give each assistant conversation's replies to exactly one server
process (docs/api.md P4; table ``assistant_lease``): take, renew, give up and end them,
and the check every reply write makes inside its transaction (:class:`LeaseLost`)."""

from __future__ import annotations

import datetime as dt

from peewee import Database

from chat_tui.server.data.assistant_work import AssistantWork
from chat_tui.server.data.base import Names, Repository
from chat_tui.server.db import utcnow, write_transaction
from chat_tui.server.models import AssistantLease

__all__ = ["AssistantLeases", "LeaseLost"]


class LeaseLost(Exception):
    """This process no longer holds the lease of the reply's conversation: another
    process took it over (this one's lease expired), so this one must not write there."""


class AssistantLeases(Repository):
    """The conversations' leases. ``owner`` arguments are the id of a server process's
    assistant (32 hex digits); ``work`` tells whether a conversation still has work (a
    lease is given up only when it has none)."""

    def __init__(self, db: Database, names: Names, work: AssistantWork) -> None:
        super().__init__(db, names)
        self.work = work

    def check(self, cid: str, owner: str | None) -> None:
        """Inside a write transaction: raise :class:`LeaseLost` when ``owner`` is given
        and does not hold the lease of ``cid`` (None: no check)."""
        if owner is None:
            return
        held = AssistantLease.select().where(
            (AssistantLease.conversation == cid) & (AssistantLease.owner == owner)
        ).exists()
        if not held:
            raise LeaseLost(cid)

    def acquire(self, cid: str, owner: str, seconds: float) -> bool:
        """Take the lease of ``cid`` for ``seconds`` when it is free, expired or already
        ``owner``'s; True when ``owner`` holds it now, False when another process does."""
        now = utcnow()
        until = now + dt.timedelta(seconds=seconds)
        with write_transaction(self.db):
            row = AssistantLease.get_or_none(AssistantLease.conversation == cid)
            if row is None:
                AssistantLease.create(conversation=cid, owner=owner, expires_at=until)
                return True
            if row.owner != owner and row.expires_at > now:
                return False
            AssistantLease.update(owner=owner, expires_at=until).where(
                AssistantLease.conversation == cid
            ).execute()
            return True

    def release(self, cid: str, owner: str) -> bool:
        """Give up ``owner``'s lease of ``cid`` when no message there is owed a reply and
        no regenerated reply waits; True when given up (or not held), False when there is
        work left. In a write transaction: a message committed before it is seen here, one
        committed after it finds the lease free."""
        with write_transaction(self.db):
            if self.work.pending(cid) or self.work.waiting_regenerations(cid):
                return False
            AssistantLease.delete().where(
                (AssistantLease.conversation == cid) & (AssistantLease.owner == owner)
            ).execute()
            return True

    def renew(self, owner: str, seconds: float) -> int:
        """Extend every lease ``owner`` holds to ``seconds`` from now; returns how many."""
        self.db.connect(reuse_if_open=True)
        until = utcnow() + dt.timedelta(seconds=seconds)
        return AssistantLease.update(expires_at=until).where(
            AssistantLease.owner == owner
        ).execute()

    def expire(self, owner: str) -> int:
        """End every lease ``owner`` holds now (a process stopping: the others take its
        conversations over at once); returns how many."""
        self.db.connect(reuse_if_open=True)
        return AssistantLease.update(expires_at=dt.datetime(1970, 1, 1)).where(
            AssistantLease.owner == owner
        ).execute()

    def expire_one(self, cid: str, owner: str) -> int:
        """End ``owner``'s lease of ``cid`` now (its work there failed: the next sweep of
        any process tries again); returns how many (0 or 1)."""
        self.db.connect(reuse_if_open=True)
        return AssistantLease.update(expires_at=dt.datetime(1970, 1, 1)).where(
            (AssistantLease.conversation == cid) & (AssistantLease.owner == owner)
        ).execute()

    def expired(self) -> list[str]:
        """Conversations whose lease has expired (its process stopped or crashed)."""
        self.db.connect(reuse_if_open=True)
        return [
            cid
            for (cid,) in AssistantLease.select(AssistantLease.conversation)
            .where(AssistantLease.expires_at <= utcnow())
            .tuples()
        ]

    def clear(self) -> int:
        """Delete every lease (SQLite, which has one server process: whatever holds a lease
        at start-up is a process that no longer runs); returns how many."""
        with write_transaction(self.db):
            return AssistantLease.delete().execute()

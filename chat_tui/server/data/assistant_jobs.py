"""The assistant's side of the database: what a reply sees, the reply's writes, the
leases that give each conversation's replies to exactly one server process, and the work
left over by a stopped or crashed process (the behaviour is described in
:mod:`chat_tui.server.assistant`)."""

from __future__ import annotations

import datetime as dt
import uuid

from peewee import JOIN, Database

from chat_tui.server.data import shape
from chat_tui.server.data.base import Names, Repository, Write
from chat_tui.server.data.users import Users
from chat_tui.server.db import bump_counter, read_transaction, utcnow, write_transaction
from chat_tui.server.errors import conflict, not_found
from chat_tui.server.models import AssistantLease, Conversation, Message
from chat_tui.wire.limits import MAX_BODY_BYTES
from chat_tui.wire.models import Message as WireMessage

#: Namespace of reply ids: reply id = uuid5(REPLY_NAMESPACE, user message id).
REPLY_NAMESPACE = uuid.UUID("5d2b8a52-6a1f-4c59-9a3e-0c6f0e7d9b11")


def reply_id_for(message_id: str) -> str:
    """The id of the assistant's first reply to user message ``message_id`` (a uuid5 of
    it: a repeated job finds the reply it wrote before)."""
    return str(uuid.uuid5(REPLY_NAMESPACE, message_id))


class LeaseLost(Exception):
    """This process no longer holds the lease of the reply's conversation: another
    process took it over (this one's lease expired), so this one must not write there."""


class AssistantJobs(Repository):
    """Reads and writes of assistant replies, and the conversations' leases.

    ``owner`` arguments are the id of a server process's assistant (32 hex digits). A
    write given an ``owner`` checks, inside its transaction, that the owner still holds
    the conversation's lease, and raises :class:`LeaseLost` otherwise: writers are
    serialised, so after another process takes a conversation over, no write of the
    previous owner lands there.
    """

    def __init__(self, db: Database, names: Names, users: Users) -> None:
        super().__init__(db, names)
        self.users = users

    def history(self, cid: str, up_to_mid: str, limit: int = 50) -> list[dict] | None:
        """The ``limit`` newest live messages of ``cid`` up to ``up_to_mid`` (inclusive).

        Returns ``[{"author", "body", "assistant": bool}]`` ascending, or None when the
        source message no longer exists or is a tombstone (no reply is written then).
        Assistant replies marked ``error`` are left out.
        """
        with read_transaction(self.db):
            src = Message.get_or_none(Message.id == up_to_mid)
            if src is None or src.deleted:
                return None
            assistant_id = self.users.assistant_id()
            rows = list(
                Message.select()
                .where(
                    (Message.conversation == cid)
                    & (Message.seq <= src.seq)
                    & (Message.deleted == False)  # noqa: E712
                    & (Message.error == False)  # noqa: E712
                )
                .order_by(Message.seq.desc())
                .limit(limit)
            )
            rows.reverse()
            return [
                {
                    "author": self.names.of(m.author_id),
                    "body": m.body,
                    "assistant": m.author_id == assistant_id,
                }
                for m in rows
            ]

    def asked_with(self, mid: str) -> tuple[str | None, str | None]:
        """``(model, system_prompt)`` the user message ``mid`` was sent under (its
        conversation's at the time; None: the server's own), which its reply is written
        with (for a regenerated reply ``mid``: those it was asked with);
        ``(None, None)`` for an unknown message."""
        self.db.connect(reuse_if_open=True)
        row = (
            Message.select(Message.ask_model, Message.ask_system_prompt)
            .where(Message.id == mid)
            .tuples()
            .first()
        )
        return (row[0], row[1]) if row else (None, None)

    def start_reply(self, cid: str, reply_id: str, source_mid: str,
                    model: str | None = None, owner: str | None = None) -> Write | None:
        """Create the assistant's empty, ``streaming`` reply to ``source_mid``, written by
        ``model`` (None when it cannot be known); None when it already exists. Raises
        :class:`LeaseLost` when ``owner`` is given and does not hold the lease of ``cid``."""
        with write_transaction(self.db):
            self._check_lease(cid, owner)
            if Message.select().where(Message.id == reply_id).exists():
                return None
            seq = bump_counter()
            now = utcnow()
            msg = Message.create(
                id=reply_id,
                conversation=cid,
                author=self.users.assistant_id(),
                body="",
                created_at=now,
                seq=seq,
                change_seq=seq,
                version=1,
                streaming=True,
                reply_to=source_mid,
                model=model,
            )
            affected = self.touch(
                cid, seq, now, message_count=Conversation.message_count + 1, last_seq=seq
            )
            return Write(shape.message(msg, self.names), created=True, affected=affected)

    def update_reply(
        self, reply_id: str, body: str, *, streaming: bool, error: bool = False,
        stopped: bool = False, owner: str | None = None,
    ) -> Write | None:
        """Replace the body of an assistant reply (a streamed update or the final one),
        cut to 65,536 UTF-8 bytes, with a new ``version``; ``stopped`` marks a reply a
        member stopped. Returns None when the reply was deleted meanwhile; an unchanged
        reply is reported with nobody to wake. Raises :class:`LeaseLost` when ``owner`` is
        given and does not hold the lease of the reply's conversation."""
        body = body.encode("utf-8")[:MAX_BODY_BYTES].decode("utf-8", "ignore")
        with write_transaction(self.db):
            msg = Message.get_or_none(Message.id == reply_id)
            if msg is None or msg.deleted:
                return None
            self._check_lease(msg.conversation_id, owner)
            if (msg.body == body and msg.streaming == streaming and msg.error == error
                    and msg.stopped == stopped):
                return Write(shape.message(msg, self.names))
            seq = bump_counter()
            msg.body = body
            msg.streaming = streaming
            msg.error = error
            msg.stopped = stopped
            msg.version += 1
            msg.change_seq = seq
            msg.save()
            affected = self.touch(msg.conversation_id, seq, utcnow())
            return Write(shape.message(msg, self.names), affected=affected)

    def regenerate(self, user_id: str, mid: str, reply_id: str) -> Write:
        """docs/api.md ``POST /v1/messages/{mid}/regenerate``: a new, empty ``streaming``
        reply ``reply_id`` to the question the assistant reply ``mid`` answers, written
        with the conversation's model and system prompt as they are now (``ask_model``,
        ``ask_system_prompt`` of the new row); its job is ``(cid, question id, reply_id)``.
        A repeat of ``reply_id`` for the same question answers that reply unchanged.

        Raises ApiError 404 (unknown ``mid``, or the caller is not a member), 409
        (``reply_id`` used by another message; ``mid`` is not an assistant reply, is still
        being written, was replaced already, or its question is gone).
        """
        with write_transaction(self.db):
            msg = Message.get_or_none(Message.id == mid)
            if msg is None:
                raise not_found("message not found")
            self.membership(user_id, msg.conversation_id)
            existing = Message.get_or_none(Message.id == reply_id)
            if existing is not None:
                if (existing.author_id == self.users.assistant_id()
                        and existing.conversation_id == msg.conversation_id
                        and msg.reply_to is not None and existing.reply_to == msg.reply_to):
                    return Write(shape.message(existing, self.names))
                raise conflict("this reply id is already used by another message")
            if msg.author_id != self.users.assistant_id() or msg.reply_to is None:
                raise conflict("only an assistant reply can be regenerated")
            if msg.streaming:
                raise conflict("the reply is still being written: stop it first")
            if msg.deleted:
                raise conflict("this reply was replaced already")
            question = Message.get_or_none(Message.id == msg.reply_to)
            if question is None or question.deleted:
                raise conflict("the question of this reply was deleted")
            conv = Conversation.get_by_id(msg.conversation_id)
            seq = bump_counter()
            now = utcnow()
            reply = Message.create(
                id=reply_id,
                conversation=conv.id,
                author=self.users.assistant_id(),
                body="",
                created_at=now,
                seq=seq,
                change_seq=seq,
                version=1,
                streaming=True,
                reply_to=question.id,
                ask_model=conv.model,
                ask_system_prompt=conv.system_prompt,
            )
            affected = self.touch(
                conv.id, seq, now, message_count=Conversation.message_count + 1, last_seq=seq
            )
            return Write(
                shape.message(reply, self.names), created=True, affected=affected,
                assistant_job=(conv.id, question.id, reply_id),
            )

    def begin_reply(self, reply_id: str, model: str | None,
                    owner: str | None = None) -> Write | None:
        """A regenerated reply ``reply_id`` (made by :meth:`regenerate`) starts: it
        records ``model``. None when it is gone or no longer streaming. Raises
        :class:`LeaseLost` when ``owner`` is given and does not hold the lease of the
        reply's conversation."""
        with write_transaction(self.db):
            msg = Message.get_or_none(Message.id == reply_id)
            if msg is None or msg.deleted or not msg.streaming:
                return None
            self._check_lease(msg.conversation_id, owner)
            if msg.model == model:
                return Write(shape.message(msg, self.names))
            seq = bump_counter()
            msg.model = model
            msg.version += 1
            msg.change_seq = seq
            msg.save()
            affected = self.touch(msg.conversation_id, seq, None)
            return Write(shape.message(msg, self.names), affected=affected)

    def replace_older_replies(self, reply_id: str) -> Write | None:
        """The reply ``reply_id`` was written in full: every other finished, live reply to
        the same question becomes a tombstone (new ``version``s), so one answer per
        question stays (docs/api.md, regenerate). None when there was none."""
        with write_transaction(self.db):
            reply = Message.get_or_none(Message.id == reply_id)
            if reply is None or reply.reply_to is None:
                return None
            older = list(
                Message.select().where(
                    (Message.reply_to == reply.reply_to)
                    & (Message.id != reply_id)
                    & (Message.author == reply.author_id)
                    & (Message.deleted == False)  # noqa: E712
                    & (Message.streaming == False)  # noqa: E712
                )
            )
            if not older:
                return None
            seq = bump_counter(len(older))
            for n, msg in enumerate(older):
                msg.body = ""
                msg.deleted = True
                msg.version += 1
                msg.change_seq = seq - len(older) + 1 + n
                msg.save()
            affected = self.touch(reply.conversation_id, seq, None)
            return Write(None, affected=affected)

    def reply_to_stop(self, user_id: str, mid: str) -> WireMessage:
        """The assistant reply ``mid`` as the member ``user_id`` sees it, for
        ``POST /v1/messages/{mid}/stop``.

        Raises ApiError 404 (unknown, or the caller is not a member), 409 (not an assistant
        reply).
        """
        with read_transaction(self.db):
            msg = Message.get_or_none(Message.id == mid)
            if msg is None:
                raise not_found("message not found")
            self.membership(user_id, msg.conversation_id)
            if msg.author_id != self.users.assistant_id():
                raise conflict("only an assistant reply can be stopped")
            return shape.message(msg, self.names)

    def streaming(self, reply_id: str) -> bool:
        """Whether message ``reply_id`` exists and is still ``streaming``."""
        self.db.connect(reuse_if_open=True)
        return Message.select().where(
            (Message.id == reply_id) & (Message.streaming == True)  # noqa: E712
        ).exists()

    def waiting_regenerations(self, cid: str) -> list[tuple[str, str]]:
        """The regenerated replies of ``cid`` made by :meth:`regenerate` and not begun
        (``streaming``, empty, ``version`` 1, no ``model``) as ``(reply id, question id)``
        in ``seq`` order: the lease holder writes them before new questions."""
        self.db.connect(reuse_if_open=True)
        return [
            (rid, question)
            for rid, question in Message.select(Message.id, Message.reply_to)
            .where(
                (Message.conversation == cid)
                & (Message.streaming == True)  # noqa: E712
                & (Message.body == "")
                & (Message.version == 1)
                & Message.model.is_null()
                & Message.reply_to.is_null(False)
                & (Message.author == self.users.assistant_id())
            )
            .order_by(Message.seq)
            .tuples()
            if rid != reply_id_for(question)
        ]

    def interrupt_streaming(self, cid: str, note: str, owner: str | None = None,
                            keep: set[str] = frozenset()) -> list[Write]:
        """Close every reply of ``cid`` left ``streaming`` (its writer stopped or crashed)
        as an error, except those in ``keep`` (regenerated replies not begun): the partial
        text is kept and ``note`` appended. One result per reply. Call it only holding the
        lease of ``cid`` (``owner``): a reply that streams in a conversation whose lease a
        live process holds is that process's work."""
        self.db.connect(reuse_if_open=True)
        results = []
        ids = [
            mid
            for (mid,) in Message.select(Message.id)
            .where((Message.conversation == cid) & (Message.streaming == True))  # noqa: E712
            .tuples()
            if mid not in keep
        ]
        for mid in ids:
            msg = Message.get_by_id(mid)
            body = f"{msg.body}\n\n{note}" if msg.body.strip() else note
            result = self.update_reply(mid, body, streaming=False, error=True, owner=owner)
            if result is not None:
                results.append(result)
        return results

    def _pending(self, cid: str, assistant_id: str) -> list[str]:
        """Ids of the user messages of ``cid`` still owed a reply, in ``seq`` order: live
        user messages after the one the newest reply answers, that have no reply yet."""
        newest = (
            Message.select(Message.reply_to)
            .where(
                (Message.conversation == cid)
                & (Message.author == assistant_id)
                & Message.reply_to.is_null(False)
            )
            .order_by(Message.seq.desc())
            .first()
        )
        after = 0
        if newest is not None:
            source = Message.get_or_none(Message.id == newest.reply_to)
            after = source.seq if source is not None else 0
        reply = Message.alias()
        pending = (
            Message.select(Message.id)
            .join(reply, JOIN.LEFT_OUTER, on=(reply.reply_to == Message.id))
            .where(
                (Message.conversation == cid)
                & (Message.seq > after)
                & (Message.author != assistant_id)
                & (Message.deleted == False)  # noqa: E712
                & reply.id.is_null()
            )
            .order_by(Message.seq)
        )
        return [m.id for m in pending]

    def next_unanswered(self, cid: str) -> str | None:
        """The first user message of ``cid`` still owed a reply (see :meth:`_pending`),
        or None."""
        self.db.connect(reuse_if_open=True)
        pending = self._pending(cid, self.users.assistant_id())
        return pending[0] if pending else None

    def unanswered(self) -> list[tuple[str, str]]:
        """``(cid, mid)`` of user messages in assistant conversations still owed a reply,
        per conversation in ``seq`` order."""
        self.db.connect(reuse_if_open=True)
        assistant_id = self.users.assistant_id()
        jobs: list[tuple[str, str]] = []
        for (cid,) in (
            Conversation.select(Conversation.id)
            .where(Conversation.assistant == True)  # noqa: E712
            .tuples()
        ):
            jobs.extend((cid, mid) for mid in self._pending(cid, assistant_id))
        return jobs

    def conversations_with_work(self) -> list[str]:
        """Assistant conversations with a reply left ``streaming`` or a message still owed
        a reply (what a starting process offers to take over, lease permitting)."""
        self.db.connect(reuse_if_open=True)
        found = {
            cid
            for (cid,) in Message.select(Message.conversation)
            .where(Message.streaming == True)  # noqa: E712
            .distinct()
            .tuples()
        }
        found.update(cid for cid, _ in self.unanswered())
        return sorted(found)

    # -- leases --------------------------------------------------------------------

    def _check_lease(self, cid: str, owner: str | None) -> None:
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
        """Give up ``owner``'s lease of ``cid`` when no message there is owed a reply;
        True when given up (or not held), False when there is work left. In a write
        transaction: a message committed before it is seen here, one committed after it
        finds the lease free."""
        with write_transaction(self.db):
            if self._pending(cid, self.users.assistant_id()) or self.waiting_regenerations(cid):
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

    def clear_leases(self) -> int:
        """Delete every lease (SQLite, which has one server process: whatever holds a lease
        at start-up is a process that no longer runs); returns how many."""
        with write_transaction(self.db):
            return AssistantLease.delete().execute()

"""What the assistant owes, read from the database (the database is the queue, docs/api.md
P4): user messages still owed a reply, regenerated replies waiting to be written, and the
conversations that have either (or a reply left ``streaming``)."""

from __future__ import annotations

import uuid

from peewee import JOIN, Database

from chat_tui.server.data.base import Names, Repository
from chat_tui.server.data.users import Users
from chat_tui.server.models import Conversation, Message

__all__ = ["REPLY_NAMESPACE", "AssistantWork", "reply_id_for"]

#: Namespace of reply ids: reply id = uuid5(REPLY_NAMESPACE, user message id).
REPLY_NAMESPACE = uuid.UUID("5d2b8a52-6a1f-4c59-9a3e-0c6f0e7d9b11")


def reply_id_for(message_id: str) -> str:
    """The id of the assistant's first reply to user message ``message_id`` (a uuid5 of
    it: a repeated job finds the reply it wrote before)."""
    return str(uuid.uuid5(REPLY_NAMESPACE, message_id))


class AssistantWork(Repository):
    """Reads of the work the assistant owes (see module doc)."""

    def __init__(self, db: Database, names: Names, users: Users) -> None:
        super().__init__(db, names)
        self.users = users

    def waiting_regenerations(self, cid: str) -> list[tuple[str, str]]:
        """The regenerated replies of ``cid`` (made by ``Regenerations.regenerate``) still
        ``streaming`` as ``(reply id, question id)`` in ``seq`` order. Called holding the
        lease of ``cid`` between two replies, none of them is being written: each is a
        user's request not begun, or begun by a process that stopped or crashed before the
        end. A regenerate is kept work (docs/api.md P4): the lease holder writes them,
        from the start, before new questions."""
        self.db.connect(reuse_if_open=True)
        return [
            (rid, question)
            for rid, question in Message.select(Message.id, Message.reply_to)
            .where(
                (Message.conversation == cid)
                & (Message.streaming == True)  # noqa: E712
                & Message.reply_to.is_null(False)
                & (Message.author == self.users.assistant_id())
            )
            .order_by(Message.seq)
            .tuples()
            if rid != reply_id_for(question)
        ]

    def pending(self, cid: str, assistant_id: str | None = None) -> list[str]:
        """Ids of the user messages of ``cid`` still owed a reply, in ``seq`` order: live
        user messages after the one the newest reply answers, that have no reply yet.
        ``assistant_id``: the assistant user's id, when the caller has it already."""
        assistant_id = assistant_id or self.users.assistant_id()
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
        """The first user message of ``cid`` still owed a reply (see :meth:`pending`),
        or None."""
        self.db.connect(reuse_if_open=True)
        pending = self.pending(cid)
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
            jobs.extend((cid, mid) for mid in self.pending(cid, assistant_id))
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

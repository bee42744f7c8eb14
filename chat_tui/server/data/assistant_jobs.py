"""The assistant's side of the database: what a reply sees, the reply's writes, and the
work left over by a stopped server (docs/assistant behaviour in
:mod:`chat_tui.server.assistant`)."""

from __future__ import annotations

from peewee import JOIN, Database

from chat_tui.server.data import shape
from chat_tui.server.data.base import Names, Repository, Write
from chat_tui.server.data.users import Users
from chat_tui.server.db import bump_counter, read_transaction, utcnow, write_transaction
from chat_tui.server.errors import conflict, not_found
from chat_tui.server.models import Conversation, Message
from chat_tui.wire.limits import MAX_BODY_BYTES
from chat_tui.wire.models import Message as WireMessage


class AssistantJobs(Repository):
    """Reads and writes of assistant replies."""

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

    def start_reply(
        self, cid: str, reply_id: str, source_mid: str, model: str | None = None
    ) -> Write | None:
        """Create the assistant's empty, ``streaming`` reply to ``source_mid``, written by
        ``model`` (None when it cannot be known); None when it already exists."""
        with write_transaction(self.db):
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
        stopped: bool = False,
    ) -> Write | None:
        """Replace the body of an assistant reply (a streamed update or the final one),
        cut to 65,536 UTF-8 bytes, with a new ``version``; ``stopped`` marks a reply a
        member stopped. Returns None when the reply was deleted meanwhile; an unchanged
        reply is reported with nobody to wake."""
        body = body.encode("utf-8")[:MAX_BODY_BYTES].decode("utf-8", "ignore")
        with write_transaction(self.db):
            msg = Message.get_or_none(Message.id == reply_id)
            if msg is None or msg.deleted:
                return None
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

    def begin_reply(self, reply_id: str, model: str | None) -> Write | None:
        """A regenerated reply ``reply_id`` (made by :meth:`regenerate`) starts: it
        records ``model``. None when it is gone or no longer streaming."""
        with write_transaction(self.db):
            msg = Message.get_or_none(Message.id == reply_id)
            if msg is None or msg.deleted or not msg.streaming:
                return None
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

    def interrupt_streaming(self, note: str) -> list[Write]:
        """Close every reply left ``streaming`` (the server stopped mid-reply) as an
        error: the partial text is kept and ``note`` appended. One result per reply."""
        self.db.connect(reuse_if_open=True)
        results = []
        ids = [
            mid
            for (mid,) in Message.select(Message.id)
            .where(Message.streaming == True)  # noqa: E712
            .tuples()
        ]
        for mid in ids:
            msg = Message.get_by_id(mid)
            body = f"{msg.body}\n\n{note}" if msg.body.strip() else note
            result = self.update_reply(mid, body, streaming=False, error=True)
            if result is not None:
                results.append(result)
        return results

    def unanswered(self) -> list[tuple[str, str]]:
        """``(cid, mid)`` of user messages in assistant conversations still owed a reply.

        Per conversation: live user messages after the one the newest reply answers, that
        have no reply yet, in ``seq`` order. Used at start-up to resume the assistant.
        """
        self.db.connect(reuse_if_open=True)
        assistant_id = self.users.assistant_id()
        jobs: list[tuple[str, str]] = []
        reply = Message.alias()
        for (cid,) in (
            Conversation.select(Conversation.id)
            .where(Conversation.assistant == True)  # noqa: E712
            .tuples()
        ):
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
            jobs.extend((cid, m.id) for m in pending)
        return jobs

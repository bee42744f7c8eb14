"""The assistant's replies in the database: what a reply sees (its history and the
settings it was asked with), its writes as it streams and ends (the last write of a reply
written in full tombstones, in the same transaction, the replies it replaces), and the replies left ``streaming`` by a process that stopped (the behaviour is
described in :mod:`chat_tui.server.assistant`)."""

from __future__ import annotations

from peewee import Database

from chat_tui.server.data import shape
from chat_tui.server.data.assistant_leases import AssistantLeases
from chat_tui.server.data.base import Names, Repository, Write, restamp
from chat_tui.server.data.users import Users
from chat_tui.server.db import bump_counter, read_transaction, utcnow, write_transaction
from chat_tui.server.errors import conflict, not_found
from chat_tui.server.models import Message
from chat_tui.wire.limits import MAX_BODY_BYTES
from chat_tui.wire.models import Message as WireMessage

__all__ = ["AssistantReplies"]


class AssistantReplies(Repository):
    """Reads and writes of assistant replies.

    ``owner`` arguments are the id of a server process's assistant (32 hex digits). A
    write given an ``owner`` checks, inside its transaction, that the owner still holds
    the conversation's lease (``leases.check``), and raises
    :class:`~chat_tui.server.data.assistant_leases.LeaseLost` otherwise: writers are
    serialised, so after another process takes a conversation over, no write of the
    previous owner lands there.
    """

    def __init__(self, db: Database, names: Names, users: Users,
                 leases: AssistantLeases) -> None:
        super().__init__(db, names)
        self.users = users
        self.leases = leases

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
        ``LeaseLost`` when ``owner`` is given and does not hold the lease of ``cid``."""
        with write_transaction(self.db):
            self.leases.check(cid, owner)
            if Message.select().where(Message.id == reply_id).exists():
                return None
            msg, affected = self.append_message(
                cid, id=reply_id, author=self.users.assistant_id(), body="", streaming=True,
                reply_to=source_mid, model=model,
            )
            return Write(shape.message(msg, self.names), created=True, affected=affected)

    def _live_reply(self, reply_id: str, owner: str | None) -> Message | None:
        """The reply ``reply_id`` unless it is gone (no such row, or a tombstone), read
        inside the caller's write transaction. Raises ``LeaseLost`` when ``owner`` is
        given and does not hold the lease of the reply's conversation."""
        msg = Message.get_or_none(Message.id == reply_id)
        if msg is None or msg.deleted:
            return None
        self.leases.check(msg.conversation_id, owner)
        return msg

    def update_reply(
        self, reply_id: str, body: str, *, streaming: bool, error: bool = False,
        stopped: bool = False, owner: str | None = None,
    ) -> Write | None:
        """Replace the body of an assistant reply (a streamed update or the final one),
        cut to 65,536 UTF-8 bytes, with a new ``version``; ``stopped`` marks a reply a
        member stopped. Returns None when the reply was deleted meanwhile; an unchanged
        reply is reported with nobody to wake. Raises ``LeaseLost`` when ``owner`` is
        given and does not hold the lease of the reply's conversation."""
        body = body.encode("utf-8")[:MAX_BODY_BYTES].decode("utf-8", "ignore")
        with write_transaction(self.db):
            msg = self._live_reply(reply_id, owner)
            if msg is None:
                return None
            if (msg.body == body and msg.streaming == streaming and msg.error == error
                    and msg.stopped == stopped):
                return Write(shape.message(msg, self.names))
            affected = self.rewrite_message(
                msg, utcnow(), body=body, streaming=streaming, error=error, stopped=stopped
            )
            return Write(shape.message(msg, self.names), affected=affected)

    def begin_reply(self, reply_id: str, model: str | None,
                    owner: str | None = None) -> Write | None:
        """A regenerated reply ``reply_id`` (made by ``Regenerations.regenerate``) starts,
        or starts again after its writer stopped: it records ``model`` and its body is
        emptied (what an interrupted attempt wrote goes). None when it is gone or no
        longer streaming. Raises ``LeaseLost`` when ``owner`` is given and does not hold
        the lease of the reply's conversation."""
        with write_transaction(self.db):
            msg = Message.get_or_none(Message.id == reply_id)
            if msg is None or msg.deleted or not msg.streaming:
                return None
            self.leases.check(msg.conversation_id, owner)
            if msg.model == model and msg.body == "":
                return Write(shape.message(msg, self.names))
            affected = self.rewrite_message(msg, None, body="", model=model)
            return Write(shape.message(msg, self.names), affected=affected)

    def finish_reply(self, reply_id: str, body: str,
                     owner: str | None = None) -> Write | None:
        """The last write of a reply written in full, and the replacement it makes, in ONE
        transaction stamped with ONE change counter value (docs/api.md, regenerate; sync
        rule 10): the reply ``reply_id`` gets ``body`` (cut to 65,536 UTF-8 bytes),
        ``streaming``, ``error`` and ``stopped`` false and a new ``version``; every other
        finished, live reply of the assistant to the same question becomes a tombstone
        (empty body, ``deleted``, a new ``version``). So no reader, and no sync answer at
        any cursor, sees the new reply finished beside the reply it replaces. Returns None
        when the reply was deleted meanwhile. Raises ``LeaseLost`` when ``owner`` is given
        and does not hold the lease of the reply's conversation (docs/api.md P4: only the
        lease holder writes)."""
        body = body.encode("utf-8")[:MAX_BODY_BYTES].decode("utf-8", "ignore")
        with write_transaction(self.db):
            msg = self._live_reply(reply_id, owner)
            if msg is None:
                return None
            older = [] if msg.reply_to is None else list(
                Message.select().where(
                    (Message.reply_to == msg.reply_to)
                    & (Message.id != reply_id)
                    & (Message.author == msg.author_id)
                    & (Message.deleted == False)  # noqa: E712
                    & (Message.streaming == False)  # noqa: E712
                )
            )
            seq = bump_counter()
            restamp(msg, seq, body=body, streaming=False, error=False, stopped=False)
            for old in older:
                restamp(old, seq, body="", deleted=True)
            affected = self.touch(msg.conversation_id, seq, utcnow())
            return Write(shape.message(msg, self.names), affected=affected)

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

    def interrupt_streaming(self, cid: str, note: str, owner: str | None = None,
                            keep: set[str] = frozenset()) -> list[Write]:
        """Close every reply of ``cid`` left ``streaming`` (its writer stopped or crashed)
        as an error, except those in ``keep`` (regenerated replies, written again): the partial
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

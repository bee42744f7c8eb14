"""A regenerated reply asked for (docs/api.md ``POST /v1/messages/{mid}/regenerate``): the
new, empty reply row to the same question, which the assistant then writes like any reply
(``AssistantWork.waiting_regenerations`` finds it, ``AssistantReplies.begin_reply``
starts it)."""

from __future__ import annotations

from peewee import Database

from chat_tui.server.data import shape
from chat_tui.server.data.base import Names, Repository, Write
from chat_tui.server.data.users import Users
from chat_tui.server.db import write_transaction
from chat_tui.server.errors import conflict, not_found
from chat_tui.server.models import Conversation, Message

__all__ = ["Regenerations"]


class Regenerations(Repository):
    """The regenerate route's write (see module doc)."""

    def __init__(self, db: Database, names: Names, users: Users) -> None:
        super().__init__(db, names)
        self.users = users

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
            reply, affected = self.append_message(
                conv.id, id=reply_id, author=self.users.assistant_id(), body="",
                streaming=True, reply_to=question.id, ask_model=conv.model,
                ask_system_prompt=conv.system_prompt,
            )
            return Write(
                shape.message(reply, self.names), created=True, affected=affected,
                assistant_job=(conv.id, question.id, reply_id),
            )

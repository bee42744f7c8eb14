"""Who is in a conversation: leave (or delete) it, add and remove members (docs/api.md,
``DELETE /v1/conversations/{cid}``, ``PUT`` and ``DELETE
/v1/conversations/{cid}/members/{username}``).

A member who leaves, or is removed, loses its ``Member`` row and gets a ``Departure``
row stamped with the change counter, so its devices learn through ``/v1/sync`` that the
conversation is gone for it (``removed: true``). When no person is left (the assistant is
not a person), the conversation's messages are deleted: it is gone for everyone."""

from __future__ import annotations

from peewee import Database, Expression

from chat_tui.server.data.base import (
    Names,
    Principal,
    Repository,
    Write,
    member_row,
    member_where,
    normalize_username,
)
from chat_tui.server.data.conversations import Conversations
from chat_tui.server.db import bump_counter, utcnow, write_transaction
from chat_tui.server.errors import conflict, forbidden, not_found, validation
from chat_tui.server.models import Conversation, Departure, Member, Message, User
from chat_tui.wire.limits import ASSISTANT_USERNAME


def _departure_where(cid: str, user_id: str) -> Expression:
    """The where clause that selects the ``Departure`` row of user ``user_id`` from
    conversation ``cid``."""
    return (Departure.conversation == cid) & (Departure.user == user_id)


class Memberships(Repository):
    """Leaving conversations and managing their members."""

    def __init__(self, db: Database, names: Names, conversations: Conversations) -> None:
        super().__init__(db, names)
        self.conversations = conversations

    def _depart(self, cid: str, user_id: str, seq: int) -> None:
        """``user_id`` leaves ``cid`` at change ``seq`` (its devices see ``removed``)."""
        Member.delete().where(member_where(cid, user_id)).execute()
        Departure.delete().where(_departure_where(cid, user_id)).execute()
        Departure.insert(conversation=cid, user=user_id, change_seq=seq).execute()

    def leave(self, p: Principal, cid: str) -> Write:
        """docs/api.md ``DELETE /v1/conversations/{cid}``: the caller leaves; with no person
        left, the conversation's messages are deleted (gone for everyone). Leaving again
        changes nothing (a repeat is harmless). The value is None (answered 204).

        Raises ApiError 404: the caller neither is nor was a member.
        """
        with write_transaction(self.db):
            if member_row(cid, p.user_id) is None:
                if Departure.get_or_none(_departure_where(cid, p.user_id)) is None:
                    raise not_found("conversation not found")
                return Write(None)
            seq = bump_counter()
            self._depart(cid, p.user_id, seq)
            people = (Member.select().join(User, on=(Member.user == User.id))
                      .where((Member.conversation == cid) & (User.is_system == False))  # noqa: E712
                      .exists())
            affected = {p.user_id}
            if people:
                affected |= self.touch(cid, seq, utcnow())
            else:
                Message.delete().where(Message.conversation == cid).execute()
                Member.delete().where(Member.conversation == cid).execute()
                Conversation.update(message_count=0, last_seq=None).where(
                    Conversation.id == cid).execute()
            return Write(None, affected=affected)

    def _creator_edit(self, p: Principal, cid: str, username: str) -> tuple[Conversation, User]:
        """The conversation and the named user, when the caller may change its members.

        Raises ApiError 404 (the caller is not a member; an unknown or malformed
        username), 403 (the caller is not the creator), 422 (the assistant)."""
        self.membership(p.user_id, cid)
        conv = Conversation.get_by_id(cid)
        if conv.creator_id != p.user_id:
            raise forbidden("only the creator of a conversation adds and removes members")
        try:
            name = normalize_username(username)
        except ValueError:
            raise not_found("user not found") from None
        if name == ASSISTANT_USERNAME:
            raise validation("username: the assistant is chosen when the conversation is "
                             "created")
        user = User.get_or_none(User.username == name)
        if user is None:
            raise not_found("user not found")
        return conv, user

    def add_member(self, p: Principal, cid: str, username: str) -> Write:
        """docs/api.md ``PUT /v1/conversations/{cid}/members/{username}`` (creator only):
        the user becomes a member (a member already: unchanged). The value is the
        conversation as the caller sees it.

        Raises ApiError 404 (not a member, unknown user), 403 (not the creator), 422
        (the assistant).
        """
        with write_transaction(self.db):
            conv, user = self._creator_edit(p, cid, username)
            if member_row(cid, user.id) is not None:
                return Write(self.conversations.views(p.user_id, [conv])[0])
            seq = bump_counter()
            Member.insert(conversation=cid, user=user.id, change_seq=seq).execute()
            Departure.delete().where(_departure_where(cid, user.id)).execute()
            affected = self.touch(cid, seq, utcnow())
            conv = Conversation.get_by_id(cid)
            return Write(self.conversations.views(p.user_id, [conv])[0], affected=affected)

    def remove_member(self, p: Principal, cid: str, username: str) -> Write:
        """docs/api.md ``DELETE /v1/conversations/{cid}/members/{username}`` (creator
        only): the user is no longer a member (its devices see ``removed``); not a member
        (any more): unchanged. The value is the conversation as the caller sees it.

        Raises ApiError 404 (not a member, unknown user), 403 (not the creator), 409 (the
        caller itself: leave instead), 422 (the assistant).
        """
        with write_transaction(self.db):
            conv, user = self._creator_edit(p, cid, username)
            if user.id == p.user_id:
                raise conflict("the creator leaves with DELETE /v1/conversations/{cid}")
            if member_row(cid, user.id) is None:
                return Write(self.conversations.views(p.user_id, [conv])[0])
            seq = bump_counter()
            self._depart(cid, user.id, seq)
            affected = self.touch(cid, seq, utcnow()) | {user.id}
            conv = Conversation.get_by_id(cid)
            return Write(self.conversations.views(p.user_id, [conv])[0], affected=affected)

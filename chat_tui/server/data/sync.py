"""The delta sync read (docs/api.md, ``GET /v1/sync``), without the long-poll wait,
which the route does."""

from __future__ import annotations

from peewee import Database, chunked

from chat_tui.server.data import shape
from chat_tui.server.data.base import Names, Principal, Repository
from chat_tui.server.data.conversations import Conversations
from chat_tui.server.db import current_cursor, read_transaction
from chat_tui.server.errors import cursor_expired
from chat_tui.server.models import Conversation, Departure, Member, Message
from chat_tui.wire.limits import SYNC_PAGE
from chat_tui.wire.models import SyncConversation, SyncResponse

#: Longest ``since`` the server parses (digits); longer ones are unknown cursors.
MAX_CURSOR_DIGITS = 18


def parse_cursor(since: str) -> int:
    """A ``since`` value as the change counter it names.

    Raises ApiError 410 ``cursor_expired`` when it is not a counter of this server's form.
    """
    if not (since.isascii() and since.isdigit()) or len(since) > MAX_CURSOR_DIGITS:
        raise cursor_expired()
    return int(since)


def empty_answer(since: int) -> SyncResponse:
    """The answer of a long-poll that ends with nothing new: the same ``cursor``."""
    return SyncResponse.construct(
        cursor=str(since), initial=False, conversations=(), read_markers=()
    )


class Sync(Repository):
    """What changed for a caller after a cursor."""

    def __init__(self, db: Database, names: Names, conversations: Conversations) -> None:
        super().__init__(db, names)
        self.conversations = conversations

    def has_changes(self, p: Principal, since: int) -> bool:
        """Whether any conversation of the caller changed after ``since`` (one index probe).

        Raises ApiError 410 when ``since`` is newer than the server's newest cursor.
        """
        self.db.connect(reuse_if_open=True)
        if since > current_cursor():
            raise cursor_expired()
        return (
            Member.select().where((Member.user == p.user_id) & (Member.change_seq > since)).exists()
            or Departure.select()
            .where((Departure.user == p.user_id) & (Departure.change_seq > since))
            .exists()
        )

    def read(self, p: Principal, since: int | None) -> SyncResponse:
        """docs/api.md ``GET /v1/sync``: every conversation of the caller that changed
        after ``since`` (all of them when None) with its changed messages, and the read
        markers that moved; the cursor and the rows are read in one transaction.

        Raises ApiError 410 for a cursor newer than the server's.
        """
        with read_transaction(self.db):
            cursor = current_cursor()
            if since is not None and since > cursor:
                raise cursor_expired()
            members = Member.select(Member.conversation).where(Member.user == p.user_id)
            if since is not None:
                members = members.where((Member.change_seq > since) & (Member.change_seq <= cursor))
            cids = [cid for (cid,) in members.tuples()]
            convs = []
            for batch in chunked(cids, 500):
                convs.extend(Conversation.select().where(Conversation.id.in_(batch)))
            convs.sort(key=lambda c: (c.updated_at, c.id), reverse=True)
            views = self.conversations.views(p.user_id, convs)
            entries = []
            for conv, view in zip(convs, views, strict=True):
                messages, limited = self._messages(conv.id, since, cursor)
                entries.append(
                    SyncConversation.construct(
                        conversation=view,
                        messages=tuple(shape.message(m, self.names) for m in messages),
                        limited=limited,
                        removed=False,
                    )
                )
            entries.extend(self._departures(p, since, cursor, set(cids)))
            markers = []
            for batch in chunked(cids, 500):
                query = Member.select().where(
                    Member.conversation.in_(batch) & Member.read_message_id.is_null(False)
                )
                if since is not None:
                    query = query.where(
                        (Member.read_change_seq > since) & (Member.read_change_seq <= cursor)
                    )
                markers.extend(shape.read_marker(m, self.names) for m in query)
            return SyncResponse.construct(
                cursor=str(cursor),
                initial=since is None,
                conversations=tuple(entries),
                read_markers=tuple(markers),
            )

    def _departures(
        self, p: Principal, since: int | None, cursor: int, member_of: set[str]
    ) -> list[SyncConversation]:
        """``removed`` entries for the conversations the caller left, or was removed from,
        after ``since`` (none in an initial sync, docs/api.md ``/v1/sync``)."""
        if since is None:
            return []
        left = [
            cid
            for (cid,) in Departure.select(Departure.conversation)
            .where(
                (Departure.user == p.user_id)
                & (Departure.change_seq > since)
                & (Departure.change_seq <= cursor)
            )
            .tuples()
            if cid not in member_of
        ]
        convs = []
        for batch in chunked(left, 500):
            convs.extend(Conversation.select().where(Conversation.id.in_(batch)))
        return [
            SyncConversation.construct(conversation=view, messages=(), limited=False, removed=True)
            for view in self.conversations.views(p.user_id, convs)
        ]

    def _messages(self, cid: str, since: int | None, cursor: int) -> tuple[list[Message], bool]:
        """Messages of ``cid`` for a sync after ``since`` and whether it is ``limited``:
        the newest :data:`SYNC_PAGE` created after ``since``, plus every edit or tombstone
        of an older message (docs/api.md, ``GET /v1/sync``)."""
        low = since if since is not None else 0
        created = list(
            Message.select()
            .where((Message.conversation == cid) & (Message.seq > low) & (Message.seq <= cursor))
            .order_by(Message.seq.desc())
            .limit(SYNC_PAGE + 1)
        )
        limited = len(created) > SYNC_PAGE
        created = created[:SYNC_PAGE]
        result = {m.id: m for m in created}
        if since is not None:
            for m in Message.select().where(
                (Message.conversation == cid)
                & (Message.change_seq > since)
                & (Message.change_seq <= cursor)
                & (Message.seq <= since)
            ):
                result[m.id] = m
        return sorted(result.values(), key=lambda m: m.seq), limited

"""Database rows as wire objects (docs/api.md, Objects): the one place where the
server's answers take their shape.

The objects are ``chat_tui.wire`` models built with ``construct`` (the rows are the
server's own, so they are not validated again); conversations need queries and are
shaped in :mod:`chat_tui.server.data.conversations`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chat_tui.server.data.base import Names, as_utc
from chat_tui.server.models import Member
from chat_tui.server.models import Message as MessageRow
from chat_tui.wire.models import Message, ReadMarker


def message(row: MessageRow, names: Names) -> Message:
    """docs/api.md, Message, from a ``Message`` row (one query the first time an author
    is seen, for the username)."""
    return Message.construct(
        id=row.id,
        conversation_id=row.conversation_id,
        author=names.of(row.author_id),
        body=row.body,
        created_at=as_utc(row.created_at),
        edited_at=as_utc(row.edited_at),
        seq=row.seq,
        version=row.version,
        deleted=bool(row.deleted),
        streaming=bool(row.streaming),
        error=bool(row.error),
        model=row.model,
        stopped=bool(row.stopped),
    )


def read_marker(member: Member, names: Names) -> ReadMarker:
    """docs/api.md, ReadMarker, from the ``Member`` row of a reader."""
    return ReadMarker.construct(
        conversation_id=member.conversation_id,
        username=names.of(member.user_id),
        message_id=member.read_message_id,
        seq=member.read_seq,
    )


#: The ``message`` columns :func:`message_row` reads, in its order (SQL written by hand on
#: the sync hot path, :mod:`chat_tui.server.data.deltas`).
MESSAGE_COLUMNS = ("id, conversation_id, author_id, body, created_at, edited_at, seq, version, "
                   "deleted, streaming, error, model, stopped")


def message_row(row: Sequence[Any], names: Names) -> Message:
    """docs/api.md, Message, from a row of :data:`MESSAGE_COLUMNS` (extra trailing columns
    are ignored; times may be the text SQLite stores, flags 0/1)."""
    (mid, cid, author_id, body, created_at, edited_at, seq, version, deleted, streaming, error,
     model, stopped) = row[:13]
    return Message.construct(
        id=mid,
        conversation_id=cid,
        author=names.of(author_id),
        body=body,
        created_at=as_utc(created_at),
        edited_at=as_utc(edited_at),
        seq=seq,
        version=version,
        deleted=bool(deleted),
        streaming=bool(streaming),
        error=bool(error),
        model=model,
        stopped=bool(stopped),
    )

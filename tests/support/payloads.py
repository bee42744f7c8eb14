"""Wire payloads built by hand for store tests: :func:`wire_message`,
:func:`wire_conversation`, :func:`sync_response` (shapes of docs/api.md)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from chat_tui.api import SyncResponse


def iso(dt: datetime) -> str:
    """``dt`` as the wire's UTC timestamp (ISO 8601 with a ``Z``)."""
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def wire_message(cid: str, seq: int, author: str = "bob", body: str | None = None,
                 version: int = 1, mid: str | None = None, deleted: bool = False,
                 created: datetime | None = None) -> dict:
    """A message object of conversation ``cid`` at ``seq`` (body ``message SEQ`` unless
    given; empty when ``deleted``), created now unless ``created`` is given."""
    created = created or datetime.now(UTC)
    return {"id": mid or str(uuid.uuid4()), "conversation_id": cid, "author": author,
            "body": "" if deleted else (body if body is not None else f"message {seq}"),
            "created_at": iso(created), "edited_at": None, "seq": seq, "version": version,
            "deleted": deleted, "streaming": False, "error": False}


def wire_conversation(cid: str, title: str = "Chat", unread: int = 0) -> dict:
    """A conversation object: ``cid`` created by bob with members alice and bob."""
    now = iso(datetime.now(UTC))
    return {"id": cid, "title": title, "creator": "bob", "members": ["alice", "bob"],
            "assistant": False, "created_at": now, "updated_at": now, "last_message": None,
            "unread_count": unread}


def sync_response(cursor: str, items: list[tuple[dict, list[dict], bool]],
                  markers: list[dict] = (), initial: bool = False) -> SyncResponse:
    """A parsed sync answer at ``cursor``; ``items`` are ``(conversation, messages,
    limited)`` triples, ``markers`` read-marker objects."""
    return SyncResponse.parse({
        "cursor": cursor, "initial": initial,
        "conversations": [{"conversation": c, "messages": msgs, "limited": limited,
                           "removed": False} for c, msgs, limited in items],
        "read_markers": list(markers)})

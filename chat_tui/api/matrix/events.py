"""Matrix events and room state as the ``chat_tui.wire`` models (docs/sync.md, Matrix).

Pure functions over decoded JSON, no I/O. The mapping:

- a message's ``id`` is the chat-tui id carried in its content under :data:`MESSAGE_KEY`
  (the outbox id of a chat-tui send, rule M1), else its Matrix event id;
- a conversation's ``id`` is the chat-tui id in its ``m.room.create`` content under
  :data:`CREATE_KEY` (rule M2), else its Matrix room id;
- ``body`` is the event's plain ``body``; ``formatted_body`` is never read, so markup in
  it is never interpreted;
- ``seq`` is given here as the event's ``origin_server_ts`` (milliseconds); the client
  replaces it by the event's place in the room timeline (docs/sync.md, rule M5), since a
  timestamp is the sender's clock claim and does not order a room;
- ``version`` is the ``origin_server_ts`` of the event or of its latest edit or redaction
  (last write wins on it, rule S3);
- ``m.room.encrypted`` events are messages with the body :data:`ENCRYPTED_BODY`.

The mapping reads a few fields of the event types it knows and checks each value it reads
(a value of the wrong type counts as absent). A Matrix types library does not save that:
``mautrix.types`` 0.21 deserializes ``origin_server_ts: "yesterday"`` or ``body: 5``
unchecked, costs about 0.2 s to import (half of chat-tui's first frame), and
installs aiohttp and its dependencies, which chat-tui does not use.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

#: Content key of the chat-tui message id in an ``m.room.message`` event (rule M1).
MESSAGE_KEY = "dev.chat_tui.id"
#: Content key of the chat-tui conversation id in an ``m.room.create`` event (rule M2).
CREATE_KEY = "dev.chat_tui.cid"


def creation_alias_localpart(cid: str) -> str:
    """Rule M2: the localpart ``chat-tui.<hash>`` of the room alias a create of the
    conversation ``cid`` takes (a create's ``room_alias_name``). The hash (SHA-256 of the
    id, 32 hex digits) keeps it within the characters an alias may have, whatever the id
    holds."""
    import hashlib  # here: it loads libcrypto, which only a create needs

    return "chat-tui." + hashlib.sha256(cid.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def creation_alias(cid: str, server: str) -> str:
    """Rule M2: the room alias ``#<creation_alias_localpart(cid)>:<server>`` on my
    homeserver ``server`` (the part of my user id after the first ``:``)."""
    return f"#{creation_alias_localpart(cid)}:{server}"


#: What an encrypted event shows as until end-to-end encryption is supported.
ENCRYPTED_BODY = "encrypted message"


def when(ms: Any) -> dt.datetime:
    """The Matrix timestamp ``ms`` (milliseconds since the epoch) as an aware UTC time;
    anything that is not a number counts as 0."""
    if not isinstance(ms, int | float) or isinstance(ms, bool):
        ms = 0
    return dt.datetime.fromtimestamp(ms / 1000.0, dt.UTC)


def ts(event: dict) -> int:
    """The event's ``origin_server_ts`` (int milliseconds; 0 when absent or not a number)."""
    value = event.get("origin_server_ts")
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def replaced_id(event: dict) -> str | None:
    """The event id an ``m.replace`` edit replaces, or None when ``event`` is not an edit."""
    rel = (event.get("content") or {}).get("m.relates_to")
    if isinstance(rel, dict) and rel.get("rel_type") == "m.replace":
        target = rel.get("event_id")
        return target if isinstance(target, str) else None
    return None


def is_message(event: dict) -> bool:
    """True for an event shown as a message: ``m.room.message`` that is not an edit, or
    ``m.room.encrypted``."""
    kind = event.get("type")
    if kind == "m.room.encrypted":
        return True
    return kind == "m.room.message" and replaced_id(event) is None


def message_id(event: dict) -> str:
    """The chat-tui id of a message event (:data:`MESSAGE_KEY`, else the event id)."""
    value = (event.get("content") or {}).get(MESSAGE_KEY)
    return value if isinstance(value, str) and value else str(event.get("event_id", ""))


def plain_body(content: dict) -> str:
    """The plain ``body`` of a message content ("" when absent or not a string); an
    event of another ``msgtype`` (image, file) shows its body, which is its description."""
    body = content.get("body")
    return body if isinstance(body, str) else ""


def fields(event: dict, conversation_id: str) -> dict[str, Any]:
    """The :class:`~chat_tui.wire.models.Message` fields of the message ``event`` (see
    :func:`is_message`) in ``conversation_id``. A redacted event (``unsigned.redacted_because``
    or no content) is a tombstone; an edit bundled in ``unsigned["m.relations"]["m.replace"]``
    is applied."""
    stamp = ts(event)
    content = event.get("content") or {}
    unsigned = event.get("unsigned") or {}
    redacted = "redacted_because" in unsigned or not content
    edited_at = None
    version = stamp
    if event.get("type") == "m.room.encrypted":
        body = ENCRYPTED_BODY
    else:
        body = plain_body(content)
        edit = (unsigned.get("m.relations") or {}).get("m.replace")
        if isinstance(edit, dict) and isinstance(edit.get("content"), dict):
            new = edit["content"].get("m.new_content")
            if isinstance(new, dict):
                body = plain_body(new)
                version = max(version, ts(edit))
                edited_at = when(version)
    if redacted:
        body = ""
        version = max(version, ts(unsigned.get("redacted_because") or {}))
    return {
        "id": message_id(event), "conversation_id": conversation_id,
        "author": str(event.get("sender", "")), "body": body,
        "created_at": when(stamp), "edited_at": edited_at, "seq": stamp,
        "version": version, "deleted": redacted,
    }


class Invite:
    """A pending invite: ``room_id``, ``inviter`` (user id), ``name`` (the room's name or
    "")."""

    def __init__(self, room_id: str, inviter: str, name: str):
        self.room_id, self.inviter, self.name = room_id, inviter, name

    def __repr__(self) -> str:
        return f"Invite({self.room_id!r}, inviter={self.inviter!r}, name={self.name!r})"



class RoomState:
    """What the client knows of one room from its state events: ``room_id``, ``cid``
    (the chat-tui id, :data:`CREATE_KEY`, or None), ``creator``, ``created_ms``,
    ``name`` (``m.room.name`` or None), ``members`` (user id -> display name of joined
    members), ``invited`` (user ids), ``encrypted`` (``m.room.encryption`` seen),
    ``heroes`` (the sync summary's ``m.heroes``), ``updated_ms`` (newest event seen)."""

    def __init__(self, room_id: str):
        self.room_id = room_id
        self.cid: str | None = None
        self.creator = ""
        self.created_ms = 0
        self.name: str | None = None
        self.members: dict[str, str] = {}
        self.invited: set[str] = set()
        self.encrypted = False
        self.heroes: list[str] = []
        self.updated_ms = 0

    @property
    def conversation_id(self) -> str:
        """The chat-tui id of this room: ``cid`` when it has one, else the room id."""
        return self.cid or self.room_id

    def apply(self, event: dict) -> None:
        """Take in one state or timeline event (others are ignored)."""
        self.updated_ms = max(self.updated_ms, ts(event))
        kind, content = event.get("type"), event.get("content") or {}
        if "state_key" not in event:
            return
        if kind == "m.room.create":
            cid = content.get(CREATE_KEY)
            self.cid = cid if isinstance(cid, str) and cid else None
            self.creator = str(content.get("creator") or event.get("sender", ""))
            self.created_ms = ts(event)
        elif kind == "m.room.name":
            name = content.get("name")
            self.name = name.strip() if isinstance(name, str) and name.strip() else None
        elif kind == "m.room.encryption":
            self.encrypted = True
        elif kind == "m.room.member":
            user = str(event.get("state_key"))
            membership = content.get("membership")
            self.invited.discard(user)
            self.members.pop(user, None)
            if membership == "join":
                display = content.get("displayname")
                self.members[user] = display if isinstance(display, str) and display else user
            elif membership == "invite":
                self.invited.add(user)

    def title(self, me: str) -> str:
        """The room's name as Matrix clients compute it: ``m.room.name``, else the other
        members' (or heroes', or invitees') display names, else "Empty room"; at most 200
        characters."""
        if self.name:
            return self.name[:200]
        others = [self.members.get(u, u) for u in self.heroes if u != me]
        if not others:
            others = sorted(name for user, name in self.members.items() if user != me)
        if not others:
            others = sorted(u for u in self.invited if u != me)
        if not others:
            return "Empty room"
        if len(others) > 3:
            return f"{', '.join(others[:3])} and {len(others) - 3} others"[:200]
        return ", ".join(others)[:200]

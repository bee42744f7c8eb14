"""``MatrixMessages``: sends keyed by transaction id (rule M1), edits as ``m.replace``
events, deletes as redactions and read markers as ``m.read`` receipts (docs/sync.md,
Matrix)."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from typing import TYPE_CHECKING, Any

from chat_tui.api.errors import PermanentError
from chat_tui.api.matrix.core import API, q
from chat_tui.api.matrix.events import MESSAGE_KEY, fields, is_message, ts, when
from chat_tui.api.matrix.rooms import MatrixRooms

if TYPE_CHECKING:
    from chat_tui.wire.models import Message, ReadMarker

#: Events read back per request when a room's history is searched (rules M1, M2).
SCAN_PAGE = 100
#: Seconds a transaction id is taken to be remembered by the homeserver for the token it
#: was sent with (Synapse keeps its answer cache 30 minutes; rule M1).
TXN_MEMORY = 30 * 60.0


class MatrixMessages(MatrixRooms):
    """The message calls of :class:`chat_tui.api.matrix.MatrixClient`."""

    async def find_message(self, cid: str, mid: str, *, max_events: int = 1000) -> str | None:
        """Rule M1: the event id of the message carrying ``mid`` under
        :data:`MESSAGE_KEY` in ``cid``'s newest ``max_events`` events, or None."""
        if mid in self._event_of:
            return self._event_of[mid]
        room = await self._room(cid)
        token: str | None = None
        seen = 0
        while seen < max_events:
            params: dict[str, Any] = {"dir": "b", "limit": SCAN_PAGE}
            if token:
                params["from"] = token
            page = await self._call("GET", f"{API}/rooms/{q(room)}/messages", params=params)
            chunk = page.get("chunk") or []
            for event in chunk:
                if is_message(event):
                    self._note_ids(event)
                if (event.get("content") or {}).get(MESSAGE_KEY) == mid:
                    return str(event["event_id"])
            seen += len(chunk)
            token = page.get("end")
            if not chunk or not token:
                break
        return None

    async def _event_id(self, room_id: str, cid: str, mid: str) -> str:
        """The event id of message ``mid`` (memory, the durable ids, else a search of the
        room by content key).

        Raises:
            PermanentError: 404, not found.
        """
        if mid.startswith("$"):
            return mid
        event_id = await self._known_event(mid) or await self.find_message(cid, mid)
        self.flush_ids()
        if event_id is None:
            raise PermanentError(f"no message {mid} in {cid}", 404, "M_NOT_FOUND")
        return event_id

    def _txn_remembered(self, mid: str) -> bool:
        """True when this client sent ``mid`` with its current token less than
        :data:`TXN_MEMORY` seconds ago (the homeserver still answers a repeat itself)."""
        sent = self._tried.get(mid)
        return sent is not None and time.monotonic() - sent < TXN_MEMORY

    async def put_message(self, cid: str, mid: str, body: str, *, attempted: bool = False,
                          check_first: bool = False) -> Message:
        """``PUT /rooms/{room}/send/m.room.message/{mid}``: ``mid`` is the transaction id
        and is carried in the content under :data:`MESSAGE_KEY` (rule M1), so a retry on
        the same token makes no second event. ``attempted``: an earlier attempt may have
        reached the server; unless this client made it with its current token less than
        :data:`TXN_MEMORY` seconds ago, that attempt may be one the server no longer
        matches (another token, a restart, too long ago), so the room is searched for
        ``mid`` first, as with ``check_first``, and a found event is answered without
        sending. Returns the message as the server stored it: read back
        (``GET /event``) only when an earlier attempt may have stored another body
        (``attempted`` or ``check_first``), else built from what was sent, with this
        clock's time. Either way its ``seq`` is a provisional place
        (:meth:`_provisional_place`) and its ``version`` 0 until its echo arrives by sync
        (or a backfill brings it) and places it in the timeline's order (rule M5); an
        event already placed by a sync or backfill keeps that place and its version.

        Raises:
            PermanentError: 403 (not joined), 404 (no such conversation), 413, and any
            other 4xx but 401 and 429 (with or without a Matrix ``errcode``, rule 3b).
            MalformedResponse: a 2xx answer without ``event_id`` (transient, rule 3b).
        """
        room = await self._room(cid)
        await self._refuse_encrypted(room, cid)
        if attempted and not self._txn_remembered(mid):
            check_first = True
        event_id = await self.find_message(cid, mid) if check_first else None
        content = {"msgtype": "m.text", "body": body, MESSAGE_KEY: mid}
        if event_id is None:
            self._tried[mid] = time.monotonic()
            answer = await self._call(
                "PUT", f"{API}/rooms/{q(room)}/send/m.room.message/{q(mid)}", json=content,
                require=("event_id",))
            event_id = answer["event_id"]
        if attempted or check_first:
            # The event may be an earlier attempt's, with the body it had then (rule 7).
            event = await self._event(room, event_id)
            seq = await self._provisional_place(room, cid, event)
            if not self._is_provisional(event_id):
                self._remember(room, event)
                self.flush_ids()
                return self._message(event, cid)
            # Placed for now, like a first attempt: the echo places it and wins (M5, S3).
            self._note_send(room, mid, event_id, seq)
            self.flush_ids()
            from chat_tui.wire.models import Message

            return Message(**{**self._fields(event, cid), "seq": seq, "version": 0})
        # The first attempt: the event is what was sent (rule M1's fast path, one request).
        # Its time is this clock's and its place provisional until its echo from /sync
        # places it in the timeline's order and brings the homeserver's time: version 0
        # lets that echo win (rules M5, S3).
        event = {"type": "m.room.message", "event_id": event_id, "room_id": room,
                 "sender": self.user_id, "content": content,
                 "origin_server_ts": int(time.time() * 1000)}
        seq = await self._provisional_place(room, cid, event, new=True)
        self._note_send(room, mid, event_id, seq)
        self.flush_ids()
        from chat_tui.wire.models import Message

        return Message(**{**fields(event, cid), "seq": seq, "version": 0})

    async def patch_message(self, mid: str, body: str, base_version: int | None, *,
                            conversation_id: str | None = None) -> Message:
        """Edit my message ``mid`` with an ``m.replace`` event (``* body`` as fallback,
        ``m.new_content`` the new text); its transaction id is derived from ``mid``,
        ``body`` and ``base_version``, so a repeat makes no second edit. Returns the
        message with the new body, ``version`` the edit's time.

        Raises:
            PermanentError: no ``conversation_id`` (422), unknown message (404), another
            user's message (403).
            MalformedResponse: a 2xx answer without ``event_id`` (transient, rule 3b).
        """
        if not conversation_id:
            raise PermanentError("a Matrix edit needs the conversation", 422, "bad_request")
        room = await self._room(conversation_id)
        await self._refuse_encrypted(room, conversation_id)
        target = await self._event_id(room, conversation_id, mid)
        digest = hashlib.sha256(f"{mid}\0{base_version}\0{body}".encode()).hexdigest()[:24]
        answer = await self._call(
            "PUT", f"{API}/rooms/{q(room)}/send/m.room.message/{q(mid)}.edit.{digest}",
            json={"msgtype": "m.text", "body": f"* {body}",
                  "m.new_content": {"msgtype": "m.text", "body": body},
                  "m.relates_to": {"rel_type": "m.replace", "event_id": target}},
            require=("event_id",))
        edit = await self._event(room, answer["event_id"])
        original = await self._event(room, target)
        await self._recall_places(room, conversation_id, [original])
        return self._yielding(self._with_edit(original, edit, conversation_id), original)

    def _with_edit(self, original: dict, edit: dict, cid: str) -> Message:
        from chat_tui.wire.models import Message

        data = self._fields(original, cid)
        new = (edit.get("content") or {}).get("m.new_content") or {}
        if not data["deleted"] and data["version"] <= ts(edit):
            data.update(body=new.get("body", "") if isinstance(new.get("body"), str) else "",
                        version=ts(edit), edited_at=when(ts(edit)))
        return Message(**data)

    def _yielding(self, message: Message, original: dict) -> Message:
        """Rule M5: the answer to an edit or redaction of ``original`` while that event
        has no place yet (my send, its echo not synced) carries ``version`` one below the
        edit's, so that the synced copy of the same edit or redaction, which carries the
        event's place in the timeline, wins over it (rule S3) instead of being an equal
        copy that changes nothing."""
        if str(original.get("event_id", "")) in self._place_of or message.version <= 0:
            return message
        return dataclasses.replace(message, version=message.version - 1)

    async def delete_message(self, mid: str, *,
                             conversation_id: str | None = None) -> Message:
        """Redact my message ``mid`` (``PUT /rooms/{room}/redact/{event}/{txn}``, the
        transaction id derived from ``mid``); returns its tombstone.

        Raises:
            PermanentError: no ``conversation_id`` (422), unknown message (404), another
            user's message without the power to redact (403).
        """
        if not conversation_id:
            raise PermanentError("a Matrix delete needs the conversation", 422, "bad_request")
        room = await self._room(conversation_id)
        target = await self._event_id(room, conversation_id, mid)
        await self._call("PUT", f"{API}/rooms/{q(room)}/redact/{q(target)}/{q(mid)}.redact",
                         json={})
        event = await self._event(room, target)
        await self._recall_places(room, conversation_id, [event])
        data = self._fields(event, conversation_id)
        data.update(id=mid, body="", deleted=True)
        from chat_tui.wire.models import Message

        return self._yielding(Message(**data), event)

    async def mark_read(self, cid: str, mid: str) -> ReadMarker:
        """``POST /rooms/{room}/receipt/m.read/{event}``: my read receipt on ``mid``."""
        from chat_tui.wire.models import ReadMarker

        room = await self._room(cid)
        target = await self._event_id(room, cid, mid)
        await self._call("POST", f"{API}/rooms/{q(room)}/receipt/m.read/{q(target)}",
                         json={})
        return ReadMarker(conversation_id=cid, username=self.user_id, message_id=mid,
                          seq=self._seq_of.get(mid, 0))


__all__ = ["SCAN_PAGE", "TXN_MEMORY", "MatrixMessages"]

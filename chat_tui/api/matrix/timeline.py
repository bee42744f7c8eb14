"""``MatrixTimeline``: the delta sync (``/sync`` with ``since`` and a long-poll
``timeout``: rules S1-S4 and S6 on Matrix) and backfill (``/messages?dir=b``: rule S5),
events mapped into the ``chat_tui.wire`` models (docs/sync.md, Matrix)."""

from __future__ import annotations

from json import dumps
from typing import TYPE_CHECKING, Any

from chat_tui.api.errors import MalformedResponse, PermanentError
from chat_tui.api.matrix.core import API, q
from chat_tui.api.matrix.events import (
    MESSAGE_KEY,
    Invite,
    is_message,
    replaced_id,
    ts,
    when,
)
from chat_tui.api.matrix.messages import MatrixMessages

if TYPE_CHECKING:
    from chat_tui.wire.models import Message, MessagesPage, SyncResponse

#: Timeline events per room in one sync answer (rule S4's page).
SYNC_TIMELINE_LIMIT = 50


class MatrixTimeline(MatrixMessages):
    """The sync and backfill calls of :class:`chat_tui.api.matrix.MatrixClient`."""

    async def sync(self, since: str | None, timeout: int = 0) -> SyncResponse:
        """``GET /sync?since=&timeout=`` (``timeout`` seconds; at most
        :data:`SYNC_TIMELINE_LIMIT` timeline events per room). Joined rooms become
        SyncConversations with their new messages (edits and redactions as updated
        messages, ``limited`` as the timeline's flag: rule S4); left rooms come
        ``removed``; ``m.read`` receipts become ReadMarkers; invites are kept in
        :attr:`invites`. The cursor is ``next_batch``.

        Raises:
            CursorExpired: ``since`` is unknown to the server (rule S6).
        """
        from chat_tui.wire.models import SyncResponse

        params: dict[str, Any] = {
            "timeout": int(timeout * 1000),
            "filter": dumps({"room": {"timeline": {"limit": SYNC_TIMELINE_LIMIT}}})}
        if since is not None:
            params["since"] = since
        answer = await self._call("GET", f"{API}/sync", params=params,
                                  timeout=self._sync_timeout(timeout))
        rooms = answer.get("rooms") or {}
        conversations = []
        markers = []
        for room_id, room in (rooms.get("join") or {}).items():
            item, room_markers = await self._joined(room_id, room, since is None)
            conversations.append(item)
            markers.extend(room_markers)
        for room_id, room in (rooms.get("leave") or {}).items():
            conversations.append(await self._left(room_id, room))
        for room_id, room in (rooms.get("invite") or {}).items():
            self.invites[room_id] = self._invite(room_id, room)
        for room_id in (rooms.get("join") or {}).keys() | (rooms.get("leave") or {}).keys():
            self.invites.pop(room_id, None)
        if "next_batch" not in answer:
            raise MalformedResponse("sync answer without next_batch")
        self.flush_ids()
        return SyncResponse(cursor=str(answer["next_batch"]), initial=since is None,
                            conversations=tuple(conversations), read_markers=tuple(markers))

    def _invite(self, room_id: str, room: dict) -> Invite:
        name, inviter = "", ""
        for event in (room.get("invite_state") or {}).get("events") or []:
            content = event.get("content") or {}
            if event.get("type") == "m.room.name" and isinstance(content.get("name"), str):
                name = content["name"]
            if (event.get("type") == "m.room.member" and event.get("state_key") == self.user_id
                    and content.get("membership") == "invite"):
                inviter = str(event.get("sender", ""))
        return Invite(room_id, inviter, name)

    async def _joined(self, room_id: str, room: dict, initial: bool) -> tuple[Any, list]:
        from chat_tui.wire.models import ReadMarker, SyncConversation

        state = self._room_state(room_id)
        for event in (room.get("state") or {}).get("events") or []:
            state.apply(event)
        if initial:
            self._full_state.add(room_id)  # an initial sync carries the whole state
        else:
            await self._ensure_state(room_id)
        heroes = (room.get("summary") or {}).get("m.heroes")
        if isinstance(heroes, list):
            state.heroes = [str(h) for h in heroes]
        timeline = room.get("timeline") or {}
        events = [self.decrypt(room_id, e) for e in timeline.get("events") or []]
        for event in events:
            state.apply(event)
        cid = state.conversation_id
        self._remember_room(cid, room_id, state.encrypted)
        await self._place_after(room_id, cid, events, sync=True)
        messages: dict[str, Message] = {}
        for event in events:
            if is_message(event):
                event = await self._keyed(event)
                mid = self._remember(room_id, event)
                messages[mid] = self._message(event, cid)
        for event in events:
            target = replaced_id(event) if event.get("type") == "m.room.message" else None
            if event.get("type") == "m.room.redaction":
                target = event.get("redacts") or (event.get("content") or {}).get("redacts")
            if not isinstance(target, str):
                continue
            original = await self._original(room_id, target)
            if original is None:
                continue
            await self._recall_places(room_id, cid, [original])
            mid = self._remember(room_id, original)
            if event.get("type") == "m.room.redaction":
                data = self._fields(original, cid)
                data.update(id=mid, body="", deleted=True,
                            version=max(data["version"], ts(event)))
                from chat_tui.wire.models import Message

                messages[mid] = Message(**data)
            elif original.get("sender") == event.get("sender"):
                base = messages.get(mid) or self._message(original, cid)
                if not base.deleted and base.version <= ts(event):
                    new = (event.get("content") or {}).get("m.new_content") or {}
                    body = new.get("body") if isinstance(new.get("body"), str) else ""
                    messages[mid] = type(base)(**{
                        **self._fields(original, cid), "id": mid, "body": body,
                        "version": ts(event), "edited_at": when(ts(event))})
        ordered = sorted(messages.values(), key=lambda m: (m.seq, m.id))
        if events:
            self._token_before[str(events[0].get("event_id"))] = str(
                timeline.get("prev_batch", ""))
        markers = []
        for event in (room.get("ephemeral") or {}).get("events") or []:
            if event.get("type") != "m.receipt":
                continue
            for event_id, kinds in (event.get("content") or {}).items():
                for user in ((kinds or {}).get("m.read") or {}):
                    mid = await self._known_message(event_id) or event_id
                    markers.append(ReadMarker(conversation_id=cid, username=str(user),
                                              message_id=mid, seq=self._seq_of.get(mid, 0)))
        unread = (room.get("unread_notifications") or {}).get("notification_count", 0)
        conversation = self._to_conversation(
            state, ordered[-1] if ordered else None, unread if isinstance(unread, int) else 0)
        return SyncConversation(conversation=conversation, messages=tuple(ordered),
                                limited=bool(timeline.get("limited"))), markers

    async def _original(self, room_id: str, event_id: str) -> dict | None:
        """The event an edit or redaction points at (fetched; None when gone or hidden)."""
        try:
            event = await self._event(room_id, event_id)
        except PermanentError:
            return None
        return await self._keyed(event)

    async def _keyed(self, event: dict) -> dict:
        """``event`` with the chat-tui message id put back in its content when a redaction
        removed it (a redacted event keeps no content) and the id is known (memory or the
        durable ids, rule M4): a redacted message of mine stays the same row."""
        content = event.get("content") or {}
        if MESSAGE_KEY in content or not event.get("event_id"):
            return event
        if content and "redacted_because" not in (event.get("unsigned") or {}):
            return event
        mid = await self._known_message(str(event["event_id"]))
        if mid is None:
            return event
        return {**event, "content": {**content, MESSAGE_KEY: mid}}

    async def _left(self, room_id: str, room: dict) -> Any:
        from chat_tui.wire.models import SyncConversation

        state = self._room_state(room_id)
        for event in (room.get("state") or {}).get("events") or []:
            state.apply(event)
        if state.cid is None and not state.created_ms:
            # A room left since the last run: its conversation id from the kept ids (M4).
            known = await self.ids.lookup_conversation(room_id) if self.ids else None
            if known and known != room_id:
                state.cid = known
        return SyncConversation(conversation=self._to_conversation(state, None, 0),
                                messages=(), limited=False, removed=True)

    async def messages(self, cid: str, before: str | None = None,
                       limit: int = 50) -> MessagesPage:
        """``GET /rooms/{room}/messages?dir=b&from=&limit=``: up to ``limit`` events older
        than message ``before`` (the newest when None), their messages ascending.
        The token comes from the limited timeline or page that held ``before``, else
        from ``GET /context/{event}``. ``has_more`` is false when the room's start is
        reached; ``total_count`` is -1 (Matrix does not count a room's messages).

        Raises:
            PermanentError: 404, ``before`` is not a message of ``cid``.
        """
        from chat_tui.wire.models import MessagesPage

        room = await self._room(cid)
        params: dict[str, Any] = {"dir": "b", "limit": max(1, min(limit, 1000))}
        anchor: int | None = None
        if before is not None:
            event_id = await self._event_id(room, cid, before)
            anchor = self._place_of.get(event_id, self._seq_of.get(before))
            token = self._token_before.get(event_id)
            if not token:
                context = await self._call(
                    "GET", f"{API}/rooms/{q(room)}/context/{q(event_id)}",
                    params={"limit": 0})
                token = str(context.get("start", ""))
            params["from"] = token
        page = await self._call("GET", f"{API}/rooms/{q(room)}/messages", params=params)
        chunk = [self.decrypt(room, e) for e in page.get("chunk") or []]
        state = self._room_state(room)
        cid = state.conversation_id if state.cid else cid
        await self._place_before(room, cid, chunk, anchor)
        found = []
        for event in chunk:
            if is_message(event):
                event = await self._keyed(event)
                self._remember(room, event)
                found.append(self._message(event, cid))
        end = page.get("end")
        if chunk and end:
            self._token_before[str(chunk[-1].get("event_id"))] = str(end)
        found.sort(key=lambda m: (m.seq, m.id))
        self.flush_ids()
        return MessagesPage(messages=tuple(found), has_more=bool(chunk and end),
                            total_count=-1)


__all__ = ["SYNC_TIMELINE_LIMIT", "MatrixTimeline"]

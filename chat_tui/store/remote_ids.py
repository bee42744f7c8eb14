"""A Matrix account's ids and invites in the cache (docs/sync.md, rules M3, M4).

The Matrix backend learns which room each conversation is and which event each message
is; these tables keep that across restarts, so a restarted engine edits, deletes, marks
read and backfills without searching a room's history, and a message of mine that a
redaction emptied stays the same row. The pending invites (as of the last sync) and
whether a room is encrypted are kept here too, so the app shows them offline.
"""

from __future__ import annotations

import json

from peewee import fn

from chat_tui.store.cachefile import CacheFile

_ROOM_UPSERT_SQL = (
    "INSERT INTO remote_room (conversation_id, room_id, encrypted) VALUES (?, ?, ?) "
    "ON CONFLICT (conversation_id) DO UPDATE SET room_id = excluded.room_id, "
    "encrypted = max(encrypted, excluded.encrypted)")


class RemoteIds(CacheFile):
    """The id maps (part of :class:`~chat_tui.store.Cache`); each write is one short
    transaction."""

    def remote_event(self, message_id: str) -> tuple[str, str, int] | None:
        """``(room id, event id, seq)`` of the message ``message_id``, or None; ``seq``
        is 0 while the message has no place in its room's timeline yet (rule M5: my send
        answered, its echo not synced)."""
        E = self.m.RemoteEvent
        row = E.get_or_none(E.message_id == message_id)
        return None if row is None else (row.room_id, row.event_id, row.seq)

    def remote_message_id(self, event_id: str) -> str | None:
        """The message id of the Matrix event ``event_id``, or None."""
        E = self.m.RemoteEvent
        row = E.get_or_none(E.event_id == event_id)
        return None if row is None else row.message_id

    def remote_room(self, conversation_id: str) -> str | None:
        """The room id of the conversation ``conversation_id``, or None."""
        R = self.m.RemoteRoom
        row = R.get_or_none(R.conversation_id == conversation_id)
        return None if row is None else row.room_id

    def remote_conversation_id(self, room_id: str) -> str | None:
        """The conversation id of the Matrix room ``room_id``, or None."""
        R = self.m.RemoteRoom
        row = (R.select(R.conversation_id).where(R.room_id == room_id)
               .order_by(R.conversation_id == room_id).first())
        return None if row is None else row.conversation_id

    def remote_places(self, conversation_id: str,
                      event_ids: list[str]) -> tuple[int, dict[str, int]]:
        """Rule M5: the highest ``seq`` of the conversation's cached messages (0 when none
        or unknown) and ``{event id: seq}`` for each of ``event_ids`` kept here with a
        place (``seq`` > 0; a 0 is my send not placed yet, which its echo places)."""
        E, M = self.m.RemoteEvent, self.m.Message
        top = M.select(fn.MAX(M.seq)).where(M.conv == self._ckey(conversation_id)).scalar()
        kept: dict[str, int] = {}
        for start in range(0, len(event_ids), 500):
            chunk = event_ids[start:start + 500]
            kept.update(E.select(E.event_id, E.seq)
                        .where(E.event_id.in_(chunk) & (E.seq > 0)).tuples())
        return int(top or 0), kept

    def save_remote_ids(self, rooms: dict[str, tuple[str, bool]],
                        events: dict[str, tuple[str, str, int]]) -> None:
        """Keep ``rooms`` (conversation id -> (room id, encrypted)) and ``events``
        (message id -> (room id, event id, seq); ``seq`` 0: no place yet, rule M5) in one
        transaction, replacing what was kept for the same ids; a room once kept as encrypted stays so (a room's
        encryption is never turned off)."""
        E = self.m.RemoteEvent
        with self._write():
            for cid, (room_id, encrypted) in rooms.items():
                self.db.execute_sql(_ROOM_UPSERT_SQL, (cid, room_id, int(encrypted)))
            for mid, (room_id, event_id, seq) in events.items():
                E.insert(message_id=mid, room_id=room_id, event_id=event_id,
                         seq=seq).on_conflict_replace().execute()

    def encrypted_conversations(self) -> set[str]:
        """The ids of the conversations that are encrypted Matrix rooms (rule M3)."""
        R = self.m.RemoteRoom
        return {r.conversation_id for r in R.select(R.conversation_id).where(R.encrypted)}

    def invites(self) -> list[dict[str, str]]:
        """The pending invites as of the last sync: ``[{"room_id", "inviter", "name"}]``
        (``name`` may be "")."""
        text = self._get_meta("invites")
        try:
            rows = json.loads(text) if text else []
        except ValueError:
            return []
        return [r for r in rows if isinstance(r, dict) and isinstance(r.get("room_id"), str)]

    def save_invites(self, invites: list[dict[str, str]]) -> None:
        """Replace the pending invites (see :meth:`invites`)."""
        with self._write():
            self._set_meta("invites", json.dumps(invites))


__all__ = ["RemoteIds"]

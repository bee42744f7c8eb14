"""``MatrixRooms``: rooms as conversations (docs/sync.md, Matrix rules M2, M3): find a
room by its chat-tui id, create one (``createRoom`` with invites), accept or decline an
invite, and refuse to write into an encrypted room."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chat_tui.api.errors import PermanentError, TransientError
from chat_tui.api.matrix.core import API, MatrixCore, log, q
from chat_tui.api.matrix.events import (
    CREATE_KEY,
    RoomState,
    creation_alias,
    creation_alias_localpart,
    when,
)

if TYPE_CHECKING:
    from chat_tui.wire.models import Conversation, Message


class MatrixRooms(MatrixCore):
    """The room calls of :class:`chat_tui.api.matrix.MatrixClient`."""

    async def _find_room_by_cid(self, cid: str) -> str | None:
        """Rule M2: the room created for the conversation ``cid``, or None. Looks at the
        rooms known from sync first, then at the durable ids (rule M4), then asks my
        homeserver for the room of the creation alias (:meth:`_resolve_creation_alias`)."""
        for state in self.rooms.values():
            if state.cid == cid:
                return state.room_id
        if self.ids is not None:
            room = await self.ids.lookup_room(cid)
            if room is not None:
                return room
        return await self._resolve_creation_alias(cid)

    def _creation_alias(self, cid: str) -> str:
        """The alias a create of ``cid`` takes on my homeserver (rule M2)."""
        return creation_alias(cid, self.user_id.split(":", 1)[-1])

    async def _resolve_creation_alias(self, cid: str) -> str | None:
        """``GET /directory/room/{alias}``: the room of ``cid``'s creation alias, or None
        when no create of ``cid`` took it (404)."""
        try:
            answer = await self._call(
                "GET", f"{API}/directory/room/{q(self._creation_alias(cid))}",
                require=("room_id",))
        except PermanentError as exc:
            if exc.status == 404:
                return None
            raise
        return answer["room_id"]

    async def _room(self, cid: str) -> str:
        """The room id of conversation ``cid``.

        Raises:
            PermanentError: 404, no joined room has that id.
        """
        if cid.startswith("!"):
            return cid
        room = self._room_of.get(cid)
        if room is None:
            room = await self._find_room_by_cid(cid)
            if room is None:
                raise PermanentError(f"no room for conversation {cid}", 404, "M_NOT_FOUND")
            self._room_of[cid] = room  # what sync or a create learns is kept (M4)
        return room

    async def _ensure_state(self, room_id: str) -> None:
        """Load the room's whole current state once per client (``GET /state``) when this
        client has not seen it: a delta sync carries only what changed since its token, so
        after a restart the room's creation key (its conversation id, M2), name and members
        would be missing. Applied after the delta's ``state`` section (older) and before its
        timeline (whose state events end at the current state)."""
        if room_id in self._full_state:
            return
        state = self._room_state(room_id)
        for event in await self._state_list(room_id):
            state.apply(event)
        self._full_state.add(room_id)

    async def _conversation(self, room_id: str) -> Conversation:
        """The room as a Conversation from its full current state (``GET /state``)."""
        state = self._room_state(room_id)
        for event in await self._state_list(room_id):
            state.apply(event)
        self._full_state.add(room_id)
        return self._to_conversation(state, None, 0)

    async def _state_list(self, room_id: str) -> list[dict]:
        """``GET /rooms/{room}/state``: the room's current state events."""
        answer = await self._call("GET", f"{API}/rooms/{q(room_id)}/state", expect=list)
        return [event for event in answer if isinstance(event, dict)]

    def _to_conversation(self, state: RoomState, last: Message | None,
                         unread: int) -> Conversation:
        from chat_tui.wire.models import Conversation

        return Conversation(
            id=state.conversation_id, title=state.title(self.user_id),
            creator=state.creator, members=tuple(sorted({*state.members, *state.invited})),
            assistant=False, created_at=when(state.created_ms),
            updated_at=when(max(state.updated_ms, state.created_ms)),
            last_message=last, unread_count=unread)

    def encrypted(self, cid: str) -> bool:
        """True when conversation ``cid`` is an encrypted room (rule M3)."""
        room = cid if cid.startswith("!") else self._room_of.get(cid, "")
        state = self.rooms.get(room)
        return bool(state and state.encrypted)

    async def _refuse_encrypted(self, room_id: str, cid: str) -> None:
        """Rule M3: nothing is sent into an encrypted room. Whether a room is encrypted
        comes from its state seen in sync, else from ``GET /state/m.room.encryption/``
        once per room (encryption is never turned off again).

        Raises:
            PermanentError: 501 ``encrypted_room``.
        """
        state = self._room_state(room_id)
        if not state.encrypted and room_id not in self._plain_checked:
            try:
                await self._call(
                    "GET", f"{API}/rooms/{q(room_id)}/state/m.room.encryption/")
                state.encrypted = True
            except PermanentError as exc:
                if exc.status != 404:
                    raise
                self._plain_checked.add(room_id)
        if state.encrypted:
            self._remember_room(cid, room_id, True)
            self.flush_ids()
            raise PermanentError("end-to-end encrypted rooms are not supported yet", 501,
                                 "encrypted_room")

    async def put_conversation(self, cid: str, title: str, members: list[str],
                               assistant: bool) -> Conversation:
        """``POST /createRoom`` (private chat, ``title`` as its name, ``members`` invited:
        user ids, or localparts of this homeserver; myself left out) with ``cid`` in the
        create content under :data:`CREATE_KEY` and the creation alias
        (:func:`creation_alias`) as its ``room_alias_name``. Rule M2: the room of an
        earlier attempt (whose answer was lost, or which is still under way) is found by
        its key or alias and answered instead of a second room.

        Raises:
            PermanentError: ``assistant`` (Matrix has no chat-tui assistant), an unknown
            or refused invitee (400/403/404), a creation alias another user holds.
            TransientError: the room of the alias is still being created (readable by
            nobody yet); after :attr:`create_grace` seconds of that, the create is taken
            as cut off, the alias is deleted and the room created.
            MalformedResponse: a 2xx answer without ``room_id`` (transient, rule 3b).
        """
        if assistant:
            raise PermanentError("the assistant needs a chat-tui server", 501, "unsupported")
        invite = sorted({self.full_user_id(m) for m in members} - {self.user_id})
        room = await self._find_room_by_cid(cid)
        for _ in range(2):  # the room found or made, then once more after a cut-off create
            if room is None:
                room = await self._create_room(cid, title, invite)
            try:
                conversation = await self._conversation(room)
                break
            except PermanentError as exc:
                if exc.status not in (403, 404):
                    raise
                await self._take_back_cut_off_alias(cid, room)
                room = None
        else:
            raise TransientError("the room of this conversation is still being created", 403,
                                 retry_after=2.0)
        self._unreadable_since.pop(cid, None)
        self._remember_room(cid, room, self.rooms[room].encrypted)
        self.flush_ids()
        return conversation

    async def _create_room(self, cid: str, title: str, invite: list[str]) -> str:
        """``POST /createRoom`` for ``cid`` (see :meth:`put_conversation`); the new room's
        id, or the room of another attempt that took the creation alias first (400
        ``M_ROOM_IN_USE``, or 409 when both were under way at once)."""
        try:
            answer = await self._call("POST", f"{API}/createRoom", json={
                "preset": "private_chat", "name": title, "invite": invite,
                "room_alias_name": creation_alias_localpart(cid),
                # The alias is a key, not an address to show: no m.room.canonical_alias.
                "initial_state": [{"type": "m.room.canonical_alias", "state_key": "",
                                   "content": {}}],
                "creation_content": {CREATE_KEY: cid}}, require=("room_id",))
            return answer["room_id"]
        except PermanentError as exc:
            if exc.code != "M_ROOM_IN_USE" and exc.status != 409:
                raise
        room = await self._resolve_creation_alias(cid)
        if room is None:
            raise TransientError("the conversation's room alias was taken and deleted "
                                 "again; creating its room next attempt", 409)
        return room

    async def _take_back_cut_off_alias(self, cid: str, room: str) -> None:
        """Rule M2 for a creation alias whose room I cannot read: another attempt's room
        still being built (the homeserver takes the alias before it writes the room's
        first event) raises TransientError for :attr:`create_grace` seconds from the
        first time this client saw it so; after that the create was cut off (the
        homeserver stopped between the two), and the alias is deleted
        (``DELETE /directory/room/{alias}``, allowed to its creator) so the caller
        creates the room again.

        Raises:
            TransientError: still within the grace (``retry_after`` 2 s).
            PermanentError: the alias is not mine to delete (403).
        """
        first = self._unreadable_since.setdefault(cid, time.monotonic())
        if time.monotonic() - first < self.create_grace:
            raise TransientError(f"the room {room} of this conversation is still being "
                                 "created", 403, retry_after=2.0)
        log.warning("room create cut off: taking back the alias of %s (room %s)", cid, room)
        try:
            await self._call("DELETE",
                             f"{API}/directory/room/{q(self._creation_alias(cid))}")
        except PermanentError as exc:
            if exc.status != 404:  # 404: another attempt took it back already
                raise
        self._unreadable_since.pop(cid, None)

    def full_user_id(self, name: str) -> str:
        """``name`` as a user id: as given when it starts with ``@``, else the localpart
        of a user on my homeserver (``bob`` -> ``@bob:<my server name>``)."""
        name = name.strip()
        if name.startswith("@") or ":" not in self.user_id:
            return name
        return f"@{name}:{self.user_id.split(':', 1)[1]}"

    async def user_exists(self, username: str) -> bool:
        """``GET /profile/{user id}``: True when the homeserver knows the user
        ``username`` (a user id or a localpart, :meth:`full_user_id`; sync rule 3o on
        Matrix), False on its 404.

        Raises:
            PermanentError: another refusal (a malformed user id: 400).
        """
        try:
            await self._call("GET", f"{API}/profile/{q(self.full_user_id(username))}")
        except PermanentError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def patch_conversation(self, cid: str, changes: dict[str, str | None]
                                 ) -> Conversation:
        """Sync rule 9 on Matrix: a new ``title`` is the room's ``m.room.name`` state
        (``PUT /rooms/{room}/state/m.room.name/``; a state event put again with the same
        content changes nothing, so a retry is harmless). Returns the room as it is now.

        Raises:
            PermanentError: ``model`` or ``system_prompt`` (501: Matrix has no chat-tui
            assistant), 403 (my power level may not rename), 404 (no such room).
        """
        if set(changes) - {"title"}:
            raise PermanentError("a Matrix room has no assistant settings", 501,
                                 "unsupported")
        room = await self._room(cid)
        if "title" in changes:
            await self._call("PUT", f"{API}/rooms/{q(room)}/state/m.room.name/",
                             json={"name": changes["title"] or ""})
        return await self._conversation(room)

    async def leave_conversation(self, cid: str) -> None:
        """Sync rule 11 on Matrix: leave the room (``POST /rooms/{room}/leave``) and forget
        it (``POST /rooms/{room}/forget``), so it leaves my room list on every device.
        Idempotent by state: a leave refused because I am not in the room any more (an
        earlier attempt whose answer was lost, another device) goes on to the forget,
        which a homeserver answers again for a room already forgotten.

        Raises:
            PermanentError: 404 (no such room), 400 (still in the room: the leave did not
            happen).
        """
        room = await self._room(cid)
        try:
            await self._call("POST", f"{API}/rooms/{q(room)}/leave", json={})
        except PermanentError as exc:
            if exc.status != 403:
                raise
        await self._call("POST", f"{API}/rooms/{q(room)}/forget", json={})
        self.rooms.pop(room, None)

    async def _membership(self, room: str, user: str) -> str:
        """``user``'s membership of ``room`` (``join``, ``invite``, ``leave``, ``ban``...),
        "" when the user never had one."""
        try:
            state = await self._call(
                "GET", f"{API}/rooms/{q(room)}/state/m.room.member/{q(user)}")
        except PermanentError as exc:
            if exc.status == 404:
                return ""
            raise
        membership = state.get("membership")
        return membership if isinstance(membership, str) else ""

    async def add_member(self, cid: str, username: str) -> Conversation:
        """Sync rule 11 on Matrix: invite ``username`` (a user id or a localpart of my
        homeserver) to the room (``POST /rooms/{room}/invite``). Idempotent by state: an
        invite refused because the user is invited or joined already is done. The
        answer's members are the joined and the invited users.

        Raises:
            PermanentError: 403 (my power level may not invite, or the user is banned),
            404 (unknown user or room).
        """
        room = await self._room(cid)
        user = self.full_user_id(username)
        try:
            await self._call("POST", f"{API}/rooms/{q(room)}/invite", json={"user_id": user})
        except PermanentError as exc:
            if exc.status != 403 or await self._membership(room, user) not in (
                    "invite", "join"):
                raise
        return await self._conversation(room)

    async def remove_member(self, cid: str, username: str) -> Conversation:
        """Sync rule 11 on Matrix: kick ``username`` (a user id or a localpart) out of the
        room, or take back the invite (``POST /rooms/{room}/kick``). Idempotent by state:
        a kick refused because the user is not in the room (left, kicked already, never
        there) is done.

        Raises:
            PermanentError: 403 (my power level may not kick), 404 (no such room).
        """
        room = await self._room(cid)
        user = self.full_user_id(username)
        try:
            await self._call("POST", f"{API}/rooms/{q(room)}/kick", json={"user_id": user})
        except PermanentError as exc:
            if exc.status != 403 or await self._membership(room, user) in ("invite", "join"):
                raise
        return await self._conversation(room)

    async def join(self, room_id: str) -> None:
        """Accept the invite to ``room_id`` (``POST /join/{room}``)."""
        await self._call("POST", f"{API}/join/{q(room_id)}", json={})
        self.invites.pop(room_id, None)

    async def decline(self, room_id: str) -> None:
        """Decline the invite to ``room_id`` (``POST /rooms/{room}/leave``)."""
        await self._call("POST", f"{API}/rooms/{q(room_id)}/leave", json={})
        self.invites.pop(room_id, None)


__all__ = ["MatrixRooms"]

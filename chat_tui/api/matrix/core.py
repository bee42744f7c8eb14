"""``MatrixCore``: what every part of the Matrix transport shares (docs/sync.md, Matrix):
the request helper with Matrix errors classified, the ids and room state seen so far, the
decrypt seam, and the account calls (versions, health, login, whoami).

The client keeps in memory, per room, the state it has seen (:class:`RoomState`), the
message id <-> event id map of every event it has seen, and the pagination token before
the oldest event of each limited timeline or backfill page. An :class:`IdStore` given by
the engine keeps the id maps durably in the account's cache (rule M4): a fresh client
asks it before it searches a room's history for a message by its content key (M1) or
for a room by its creation key (M2).

Never logs tokens or passwords.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

import httpx

from chat_tui.api.errors import ApiError, MalformedResponse, PermanentError, Unauthorized
from chat_tui.api.matrix.errors import classify_matrix
from chat_tui.api.matrix.events import Invite, RoomState, fields, is_message, message_id, ts
from chat_tui.api.transport import HttpBackend, retry_after

if TYPE_CHECKING:
    from chat_tui.wire.models import Login, Message

log = logging.getLogger(__name__)

API = "/_matrix/client/v3"


def q(value: str) -> str:
    """``value`` quoted as one path segment (``/`` too)."""
    return quote(value, safe="")


class IdStore(Protocol):
    """Where the ids a Matrix client learns are kept across restarts (rule M4; the engine
    gives one backed by the account's cache). Called on the engine's event loop."""

    async def lookup_event(self, mid: str) -> tuple[str, str, int] | None:
        """``(room id, event id, seq)`` of the message ``mid``, or None when unknown;
        ``seq`` is 0 while the message has no place in the timeline yet (rule M5)."""

    async def lookup_message(self, event_id: str) -> str | None:
        """The message id of the event ``event_id``, or None when unknown."""

    async def lookup_room(self, cid: str) -> str | None:
        """The room id of the conversation ``cid``, or None when unknown."""

    async def lookup_conversation(self, room_id: str) -> str | None:
        """The conversation id of the room ``room_id``, or None when unknown."""

    async def lookup_places(self, cid: str, event_ids: list[str]) -> tuple[int, dict[str, int]]:
        """Rule M5: the highest ``seq`` of the conversation ``cid``'s cached messages (0
        when none) and the ``seq`` kept for each of ``event_ids`` that has a place (a
        kept ``seq`` of 0, my send not placed yet, is left out)."""

    def learned(self, rooms: dict[str, tuple[str, bool]],
                events: dict[str, tuple[str, str, int]]) -> None:
        """Keep ``rooms`` (conversation id -> (room id, encrypted)) and ``events``
        (message id -> (room id, event id, seq)): what changed since the last call.
        ``seq`` 0 says the event has no place yet (rule M5: my send answered, its echo
        not synced), so it is placed when it is synced or backfilled."""


class MatrixCore(HttpBackend):
    """The shared part of :class:`chat_tui.api.matrix.MatrixClient` (see there for the
    arguments). ``user_id`` is the logged-in user (``@name:server``), ``rooms`` the state of
    every room seen, ``invites`` the pending invites, ``ids`` the durable id store or
    None (rule M4)."""

    #: Seconds a creation alias may point at a room nobody can read before its create
    #: is taken as cut off (rule M2). A homeserver builds a room within a second or two;
    #: only one stopped between taking the alias and writing the room leaves it so longer.
    create_grace = 30.0

    def __init__(self, base_url: str, token: str | None = None, *, user_id: str = "",
                 timeout: float = 15.0, probe_timeout: float = 3.0,
                 sync_read_timeout: float = 120.0, ids: IdStore | None = None):
        super().__init__(base_url, token, timeout=timeout, probe_timeout=probe_timeout,
                         sync_read_timeout=sync_read_timeout)
        self.user_id = user_id
        self.ids = ids
        self.rooms: dict[str, RoomState] = {}
        #: Pending invites by room id, as of the last sync.
        self.invites: dict[str, Invite] = {}
        self._room_of: dict[str, str] = {}       # conversation id -> room id
        self._event_of: dict[str, str] = {}      # message id -> event id
        self._mid_of: dict[str, str] = {}        # event id -> message id
        self._seq_of: dict[str, int] = {}        # message id -> seq
        self._place_of: dict[str, int] = {}      # event id -> seq, its place (rule M5)
        self._top_of: dict[str, int] = {}        # room id -> highest seq placed (M5)
        self._sync_placed: set[str] = set()      # rooms placed from a sync batch (M5)
        self._provisional_top: dict[str, int] = {}  # room id -> my highest unsynced send
        self._provisional: dict[str, int] = {}   # event id -> provisional place (M5)
        self._token_before: dict[str, str] = {}  # event id -> pagination token before it
        self._plain_checked: set[str] = set()    # rooms seen without m.room.encryption
        self._full_state: set[str] = set()       # rooms whose whole state was applied
        self._tried: dict[str, float] = {}      # transaction id -> monotonic time sent
        self._unreadable_since: dict[str, float] = {}  # cid -> monotonic (M2)
        self._room_known: dict[str, tuple[str, bool]] = {}  # what ``ids`` was given
        self._new_rooms: dict[str, tuple[str, bool]] = {}   # learned, not yet given
        self._new_events: dict[str, tuple[str, str, int]] = {}

    def set_token(self, token: str | None) -> None:
        """Use ``token`` from now on; the transaction ids sent with the old one are
        forgotten (the homeserver matches a repeat only on the same token, rule M1)."""
        super().set_token(token)
        self._tried.clear()

    def _error(self, response: httpx.Response) -> ApiError:
        """A Matrix error body (``errcode``, ``error``, ``retry_after_ms``) classified
        (:func:`classify_matrix`)."""
        try:
            body = response.json()
        except ValueError:
            body = None
        return classify_matrix(response.status_code, body, retry_after(response))

    async def _call(self, method: str, path: str, *, json: Any = None,
                    params: dict | None = None, timeout: float | httpx.Timeout | None = None,
                    auth: bool = True, expect: type = dict,
                    require: tuple[str, ...] = ()) -> Any:
        """The decoded JSON answer of ``method path`` (an ``expect``: dict, or list),
        errors classified. ``require``: keys a dict answer must carry as non-empty
        strings (the ``event_id`` of a send, the ``room_id`` of a create).

        Raises:
            MalformedResponse: the body is not JSON of that type, or lacks a ``require``
            key: a transient error (outbox rule 3b), since the request may have been
            done and a retry with the same transaction id or creation key does nothing
            twice (rules M1, M2). And see :meth:`_send`.
        """
        response = await self._send(method, path, json=json, params=params,
                                    timeout=timeout, auth=auth)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, expect):
            raise MalformedResponse(
                f"HTTP {response.status_code}: body is not a JSON {expect.__name__}",
                response.status_code)
        missing = [k for k in require if not (isinstance(body.get(k), str) and body[k])]
        if missing:
            raise MalformedResponse(
                f"HTTP {response.status_code}: the answer has no {', '.join(missing)}",
                response.status_code)
        return body

    def decrypt(self, room_id: str, event: dict) -> dict:
        """The seam for end-to-end encryption: the event as the mapping should see it.
        Today every event passes unchanged (``m.room.encrypted`` stays encrypted)."""
        return event

    def _remember(self, room_id: str, event: dict) -> str:
        """Note the ids and the place of a message event (given to ``ids`` at the next
        :meth:`flush_ids`); returns its message id. Its ``seq`` is the place given by
        :meth:`_place_after` or :meth:`_place_before` (rule M5), else its timestamp, and
        stays its place from then on. A send placed provisionally before is kept with
        this place now, which replaces its "no place yet" (0) in ``ids``."""
        mid = message_id(event)
        event_id = str(event.get("event_id", ""))
        seq = self._place_of.setdefault(event_id, ts(event))
        provisional = self._provisional.pop(event_id, None) is not None
        if (provisional or self._event_of.get(mid) != event_id
                or self._seq_of.get(mid) != seq):
            self._new_events[mid] = (room_id, event_id, seq)
        self._event_of[mid] = event_id
        self._mid_of[event_id] = mid
        self._seq_of[mid] = seq
        return mid

    def _note_ids(self, event: dict) -> None:
        """Note only which message an event is (memory, not kept, no place): for events
        read while searching a room (rule M1), which are placed when they are synced."""
        mid, event_id = message_id(event), str(event.get("event_id", ""))
        self._event_of.setdefault(mid, event_id)
        self._mid_of.setdefault(event_id, mid)

    async def _recall_places(self, room_id: str, cid: str, events: list[dict]) -> None:
        """Rule M5: read the places of ``events`` this client has not placed, and the
        room's highest place, from ``ids`` (the cache) the first time a room is placed in
        and for events that may be older than this client (backfill, edit targets)."""
        unknown = [str(e.get("event_id", "")) for e in events
                   if str(e.get("event_id", "")) not in self._place_of
                   and str(e.get("event_id", "")) not in self._provisional]
        if room_id in self._top_of and not unknown:
            return
        top, kept = (await self.ids.lookup_places(cid, unknown)
                     if self.ids is not None else (0, {}))
        self._place_of.update(kept)
        self._top_of[room_id] = max(self._top_of.get(room_id, 0), top)

    async def _place_after(self, room_id: str, cid: str, events: list[dict], *,
                           sync: bool = False) -> None:
        """Rule M5: give each message event of ``events`` (in the room timeline's order,
        newer than everything this client has of the room: a ``/sync`` timeline when
        ``sync``, the answer to a send) its place: ``max(origin_server_ts, previous place
        + 1)``, the previous place being the room's highest. An event placed before keeps
        its place: the cache is asked for the room's first sync batch of this client (a
        replay of what an earlier run placed) and before the room's first place; later
        batches hold only events new to the room."""
        events = [e for e in events if is_message(e) and e.get("event_id")]
        if not events:
            return
        if room_id not in self._top_of or (sync and room_id not in self._sync_placed):
            await self._recall_places(room_id, cid, events)
        if sync:
            self._sync_placed.add(room_id)
        top = self._top_of.get(room_id, 0)
        for event in events:
            event_id = str(event["event_id"])
            seq = self._place_of.get(event_id)
            if seq is None:
                seq = self._place_of[event_id] = max(ts(event), top + 1)
            top = max(top, seq)
        self._top_of[room_id] = top

    async def _provisional_place(self, room_id: str, cid: str, event: dict, *,
                                 new: bool = False) -> int:
        """Rule M5 for my send's answer (every attempt's) before its echo: the place a
        sync or backfill gave the event when it came first (in this run, or kept in
        ``ids`` by an earlier one), else a provisional one after everything known of the
        room and after my earlier provisional ones (``max(origin_server_ts, highest +
        1)``; the same one again for the same event), which the echo replaces by the
        event's place in the timeline's order (an event another member sent just before
        comes before it). Whether the place is final: :meth:`_is_provisional`. ``new``:
        the event was just created by a first attempt, so ``ids`` cannot know its place
        and is asked only for the room's highest one."""
        event_id = str(event["event_id"])
        if event_id in self._provisional:
            return self._provisional[event_id]
        if not new or room_id not in self._top_of:
            await self._recall_places(room_id, cid, [] if new else [event])
        if event_id in self._place_of:
            return self._place_of[event_id]
        top = max(self._top_of.get(room_id, 0), self._provisional_top.get(room_id, 0))
        seq = max(ts(event), top + 1)
        self._provisional_top[room_id] = seq
        self._provisional[event_id] = seq  # the cache keeps 0 for it: no place yet
        return seq

    def _is_provisional(self, event_id: str) -> bool:
        """True while my send ``event_id`` has only its provisional place (rule M5)."""
        return event_id in self._provisional

    def _note_send(self, room_id: str, mid: str, event_id: str, seq: int) -> None:
        """Note the ids of my send ``mid`` answered as ``event_id`` at place ``seq``
        (given to ``ids`` at the next :meth:`flush_ids`): a provisional place is kept as
        0, "no place yet", so that no later run reads it back as the event's place in
        the timeline (rule M5); the echo keeps its real place."""
        self._event_of[mid], self._mid_of[event_id], self._seq_of[mid] = event_id, mid, seq
        self._new_events[mid] = (room_id, event_id,
                                 0 if self._is_provisional(event_id) else seq)

    async def _place_before(self, room_id: str, cid: str, events: list[dict],
                            anchor: int | None) -> None:
        """Rule M5: give each message event of ``events`` (newest first, older than the
        message placed at ``anchor``: a ``/messages?dir=b`` page) its place:
        ``min(origin_server_ts, next place - 1)``, the next place being ``anchor`` for the
        newest (its timestamp when ``anchor`` is None). An event placed before keeps its
        place and is the next one's anchor."""
        events = [e for e in events if is_message(e) and e.get("event_id")]
        if not events:
            return
        await self._recall_places(room_id, cid, events)
        following = anchor
        for event in events:
            event_id = str(event["event_id"])
            seq = self._place_of.get(event_id)
            if seq is None:
                seq = ts(event) if following is None else min(ts(event), following - 1)
                self._place_of[event_id] = seq
            following = seq
            self._top_of[room_id] = max(self._top_of.get(room_id, 0), seq)

    def _fields(self, event: dict, cid: str) -> dict[str, Any]:
        """:func:`fields` of ``event`` with its place as ``seq`` when it has one, final
        or provisional (M5)."""
        data = fields(event, cid)
        event_id = str(event.get("event_id", ""))
        seq = self._place_of.get(event_id, self._provisional.get(event_id))
        if seq is not None:
            data["seq"] = seq
        return data

    def _remember_room(self, cid: str, room_id: str, encrypted: bool = False) -> None:
        """Note that conversation ``cid`` is ``room_id`` and whether it is encrypted
        (given to ``ids`` at the next :meth:`flush_ids`)."""
        self._room_of[cid] = room_id
        if self._room_known.get(cid) != (room_id, encrypted):
            self._room_known[cid] = self._new_rooms[cid] = (room_id, encrypted)

    def flush_ids(self) -> None:
        """Give the ids learned since the last call to ``ids`` (rule M4). Every public
        call that learns ids calls it before it returns."""
        if self.ids is not None and (self._new_rooms or self._new_events):
            self.ids.learned(self._new_rooms, self._new_events)
        self._new_rooms, self._new_events = {}, {}

    async def _known_event(self, mid: str) -> str | None:
        """The event id of message ``mid`` from memory, else from ``ids``; None when
        neither knows it."""
        if mid in self._event_of:
            return self._event_of[mid]
        found = await self.ids.lookup_event(mid) if self.ids is not None else None
        if found is None:
            return None
        _room, event_id, seq = found
        self._event_of[mid], self._mid_of[event_id] = event_id, mid
        if seq > 0:  # 0: my send not placed yet (rule M5), placed when it is synced
            self._seq_of[mid] = seq
            self._place_of.setdefault(event_id, seq)
        return event_id

    async def _known_message(self, event_id: str) -> str | None:
        """The message id of ``event_id`` from memory, else from ``ids``, or None."""
        if event_id in self._mid_of:
            return self._mid_of[event_id]
        mid = await self.ids.lookup_message(event_id) if self.ids is not None else None
        if mid is not None:
            self._mid_of[event_id], self._event_of[mid] = mid, event_id
        return mid

    def _room_state(self, room_id: str) -> RoomState:
        state = self.rooms.get(room_id)
        if state is None:
            state = self.rooms[room_id] = RoomState(room_id)
        return state

    async def _event(self, room_id: str, event_id: str) -> dict:
        """``GET /rooms/{room}/event/{event}`` through :meth:`decrypt`."""
        event = await self._call("GET", f"{API}/rooms/{q(room_id)}/event/{q(event_id)}")
        return self.decrypt(room_id, event)

    def _message(self, event: dict, cid: str) -> Message:
        from chat_tui.wire.models import Message

        return Message(**self._fields(event, cid))

    async def versions(self) -> dict:
        """``GET /_matrix/client/versions`` (no auth): ``{"versions": [...], ...}``."""
        return await self._call("GET", "/_matrix/client/versions", auth=False,
                                timeout=self._probe_timeout)

    async def health(self) -> bool:
        """True when ``/_matrix/client/versions`` answers with a list of versions (rule C1,
        with the probe timeout)."""
        answer = await self.versions()
        return isinstance(answer.get("versions"), list) and bool(answer["versions"])

    async def login(self, username: str, password: str, device_name: str) -> Login:
        """``POST /login`` with ``m.login.password``; ``username`` is a localpart or a full
        user id. Returns :class:`Login` (``username`` is the full user id) and remembers
        the user id; the caller sets the token.

        Raises:
            Unauthorized: wrong username or password (Matrix answers 403 ``M_FORBIDDEN``).
        """
        try:
            answer = await self._call("POST", f"{API}/login", auth=False, json={
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": username},
                "password": password, "initial_device_display_name": device_name})
        except PermanentError as exc:
            if exc.status == 403:
                raise Unauthorized(exc.reason, exc.status, exc.code) from None
            raise
        from chat_tui.wire.models import Login

        try:
            login = Login(user_id=answer["user_id"], access_token=answer["access_token"],
                          device_id=answer.get("device_id", ""), username=answer["user_id"])
        except (KeyError, ValueError) as exc:
            raise MalformedResponse(f"login answer: {type(exc).__name__}") from None
        self.user_id = login.user_id
        return login

    async def logout(self) -> None:
        """``POST /logout``: revoke this client's access token.

        Raises:
            Unauthorized: the token was already revoked or is unknown.
        """
        await self._call("POST", f"{API}/logout", json={})

    async def whoami(self) -> str:
        """``GET /account/whoami``: the token's user id (also remembered)."""
        self.user_id = str((await self._call("GET", f"{API}/account/whoami"))["user_id"])
        return self.user_id


__all__ = ["API", "IdStore", "MatrixCore", "q"]

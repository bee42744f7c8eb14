"""``MatrixClient``: the Matrix client-server API v3 transport, a
:class:`chat_tui.api.backend.Backend` (docs/sync.md, Matrix rules M1..M3).

Plain httpx and JSON, no Matrix SDK: the SDKs on PyPI (matrix-nio, mautrix) bring their
own HTTP stack, sync loop and store, which would sit beside the engine's instead of
under it; the event shapes chat-tui reads (:mod:`chat_tui.api.matrix.events`) are few.

The client keeps in memory, per room, the state it has seen (:class:`RoomState`), the
message id <-> event id map of every event it has seen, and the pagination token before
the oldest event of each limited timeline or backfill page. The engine's cache will hold
them durably when the Matrix backend is wired in; until then a fresh client finds a room
by its creation key (M2) and a message by its content key (M1) in the room's history.

:meth:`decrypt` is the one place events pass through before they are mapped: today it
leaves them as they are (encrypted events show as "encrypted message", rule M3).

Never logs tokens or passwords.
"""

from __future__ import annotations

import hashlib
import logging
from json import dumps
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from chat_tui.api.errors import (
    MalformedResponse,
    PermanentError,
    TransientError,
    Unauthorized,
)
from chat_tui.api.matrix.errors import classify_matrix
from chat_tui.api.matrix.events import (
    CREATE_KEY,
    MESSAGE_KEY,
    RoomState,
    fields,
    is_message,
    message_id,
    replaced_id,
    ts,
    when,
)

if TYPE_CHECKING:
    from chat_tui.wire.models import (
        Conversation,
        Login,
        Message,
        MessagesPage,
        ReadMarker,
        SyncResponse,
    )

log = logging.getLogger(__name__)

API = "/_matrix/client/v3"
#: Timeline events per room in one sync answer (rule S4's page).
SYNC_TIMELINE_LIMIT = 50
#: Events read back per request when a room's history is searched (rules M1, M2).
SCAN_PAGE = 100


def _q(value: str) -> str:
    return quote(value, safe="")


class Invite:
    """A pending invite: ``room_id``, ``inviter`` (user id), ``name`` (the room's name or
    "")."""

    def __init__(self, room_id: str, inviter: str, name: str):
        self.room_id, self.inviter, self.name = room_id, inviter, name

    def __repr__(self) -> str:
        return f"Invite({self.room_id!r}, inviter={self.inviter!r}, name={self.name!r})"


class MatrixClient:
    """Client of a Matrix homeserver's client-server API v3 on ``base_url``
    (``https://host[:port]``, without ``/_matrix``).

    Args:
        base_url: the homeserver URL.
        token: the access token, or None before login.
        user_id: the logged-in user id (``@name:server``); set by :meth:`login`.
        timeout: seconds for every request but the sync long-poll.
        probe_timeout: seconds for :meth:`health` (rule C1).
        sync_read_timeout: seconds on top of the long-poll for a sync answer to arrive.

    Every method raises :class:`TransientError` (connection errors, timeouts, 5xx,
    ``M_LIMIT_EXCEEDED`` with ``retry_after``), :class:`PermanentError`,
    :class:`Unauthorized`, :class:`CursorExpired` or :class:`MalformedResponse`
    (:mod:`chat_tui.api.matrix.errors`); never a raw httpx exception.
    """

    def __init__(self, base_url: str, token: str | None = None, *, user_id: str = "",
                 timeout: float = 15.0, probe_timeout: float = 3.0,
                 sync_read_timeout: float = 120.0):
        self.base_url = base_url.rstrip("/")
        self.user_id = user_id
        self._token = token
        self._timeout = timeout
        self._probe_timeout = probe_timeout
        self._sync_read_timeout = max(timeout, sync_read_timeout)
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout,
                                       headers={"user-agent": "chat-tui/0.1"})
        self.rooms: dict[str, RoomState] = {}
        #: Pending invites by room id, as of the last sync.
        self.invites: dict[str, Invite] = {}
        self._room_of: dict[str, str] = {}       # conversation id -> room id
        self._event_of: dict[str, str] = {}      # message id -> event id
        self._mid_of: dict[str, str] = {}        # event id -> message id
        self._seq_of: dict[str, int] = {}        # message id -> seq
        self._token_before: dict[str, str] = {}  # event id -> pagination token before it
        self._plain_checked: set[str] = set()    # rooms seen without m.room.encryption

    # ------------------------------------------------------------------ plumbing

    def set_token(self, token: str | None) -> None:
        """Use ``token`` (or none) for later requests."""
        self._token = token

    async def aclose(self) -> None:
        """Close the connection pool (idempotent)."""
        await self._http.aclose()

    async def __aenter__(self) -> MatrixClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(self, method: str, path: str, *, json: Any = None,
                    params: dict | None = None, timeout: float | httpx.Timeout | None = None,
                    auth: bool = True, expect: type = dict) -> Any:
        """The decoded JSON answer of ``method path`` (an ``expect``: dict, or list),
        errors classified."""
        headers = {}
        if auth and self._token:
            headers["authorization"] = f"Bearer {self._token}"
        try:
            response = await self._http.request(method, path, json=json, params=params,
                                                headers=headers,
                                                timeout=timeout or self._timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise TransientError(f"cannot connect to {self.base_url}: {type(exc).__name__}",
                                 reached_server=False) from exc
        except httpx.TimeoutException as exc:
            raise TransientError(f"{method} {path.split('?')[0]}: timed out") from exc
        except httpx.TransportError as exc:
            raise TransientError(f"{method}: {type(exc).__name__}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            header = response.headers.get("retry-after")
            try:
                retry = float(header) if header is not None else None
            except ValueError:
                retry = None
            raise classify_matrix(response.status_code, body, retry)
        if not isinstance(body, expect):
            raise MalformedResponse(
                f"HTTP {response.status_code}: body is not a JSON {expect.__name__}",
                response.status_code)
        return body

    def decrypt(self, room_id: str, event: dict) -> dict:
        """The seam for end-to-end encryption: the event as the mapping should see it.
        Today every event passes unchanged (``m.room.encrypted`` stays encrypted)."""
        return event

    def _remember(self, room_id: str, event: dict) -> str:
        """Note the ids of a message event; returns its message id."""
        mid = message_id(event)
        event_id = str(event.get("event_id", ""))
        self._event_of[mid] = event_id
        self._mid_of[event_id] = mid
        self._seq_of[mid] = ts(event)
        return mid

    def _room_state(self, room_id: str) -> RoomState:
        state = self.rooms.get(room_id)
        if state is None:
            state = self.rooms[room_id] = RoomState(room_id)
        return state

    # ------------------------------------------------------------------ account

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

    async def whoami(self) -> str:
        """``GET /account/whoami``: the token's user id (also remembered)."""
        self.user_id = str((await self._call("GET", f"{API}/account/whoami"))["user_id"])
        return self.user_id

    # ------------------------------------------------------------------ rooms

    async def _find_room_by_cid(self, cid: str) -> str | None:
        """Rule M2: the joined room whose ``m.room.create`` content carries ``cid`` under
        :data:`CREATE_KEY`, or None. Looks at the rooms known from sync first, then asks
        the server for every joined room's create event."""
        for state in self.rooms.values():
            if state.cid == cid:
                return state.room_id
        joined = (await self._call("GET", f"{API}/joined_rooms")).get("joined_rooms", [])
        for room_id in joined:
            if room_id in self.rooms and self.rooms[room_id].created_ms:
                continue  # its create event is known and carries another id
            try:
                create = await self._call(
                    "GET", f"{API}/rooms/{_q(room_id)}/state/m.room.create/")
            except PermanentError:
                continue
            if create.get(CREATE_KEY) == cid:
                return room_id
        return None

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
            self._room_of[cid] = room
        return room

    async def _conversation(self, room_id: str) -> Conversation:
        """The room as a Conversation from its full current state (``GET /state``)."""
        state = self._room_state(room_id)
        for event in await self._state_list(room_id):
            state.apply(event)
        return self._to_conversation(state, None, 0)

    async def _state_list(self, room_id: str) -> list[dict]:
        """``GET /rooms/{room}/state``: the room's current state events."""
        answer = await self._call("GET", f"{API}/rooms/{_q(room_id)}/state", expect=list)
        return [event for event in answer if isinstance(event, dict)]

    def _to_conversation(self, state: RoomState, last: Message | None,
                         unread: int) -> Conversation:
        from chat_tui.wire.models import Conversation

        return Conversation(
            id=state.conversation_id, title=state.title(self.user_id),
            creator=state.creator, members=tuple(sorted(state.members)),
            assistant=False, created_at=when(state.created_ms),
            updated_at=when(max(state.updated_ms, state.created_ms)),
            last_message=last, unread_count=unread)

    def encrypted(self, cid: str) -> bool:
        """True when conversation ``cid`` is an encrypted room (rule M3)."""
        room = cid if cid.startswith("!") else self._room_of.get(cid, "")
        state = self.rooms.get(room)
        return bool(state and state.encrypted)

    async def _refuse_encrypted(self, room_id: str) -> None:
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
                    "GET", f"{API}/rooms/{_q(room_id)}/state/m.room.encryption/")
                state.encrypted = True
            except PermanentError as exc:
                if exc.status != 404:
                    raise
                self._plain_checked.add(room_id)
        if state.encrypted:
            raise PermanentError("end-to-end encrypted rooms are not supported yet", 501,
                                 "encrypted_room")

    async def put_conversation(self, cid: str, title: str, members: list[str],
                               assistant: bool) -> Conversation:
        """``POST /createRoom`` (private chat, ``title`` as its name, ``members`` user ids
        invited) with ``cid`` in the create content under :data:`CREATE_KEY`. Rule M2: a
        room already created under ``cid`` (an earlier attempt whose answer was lost) is
        found first and answered instead of a second room.

        Raises:
            PermanentError: ``assistant`` (Matrix has no chat-tui assistant), an unknown
            or refused invitee (400/403/404).
        """
        if assistant:
            raise PermanentError("the assistant needs a chat-tui server", 501, "unsupported")
        room = await self._find_room_by_cid(cid)
        if room is None:
            answer = await self._call("POST", f"{API}/createRoom", json={
                "preset": "private_chat", "name": title, "invite": list(members),
                "creation_content": {CREATE_KEY: cid}})
            room = str(answer["room_id"])
        self._room_of[cid] = room
        return await self._conversation(room)

    async def join(self, room_id: str) -> None:
        """Accept the invite to ``room_id`` (``POST /join/{room}``)."""
        await self._call("POST", f"{API}/join/{_q(room_id)}", json={})
        self.invites.pop(room_id, None)

    async def decline(self, room_id: str) -> None:
        """Decline the invite to ``room_id`` (``POST /rooms/{room}/leave``)."""
        await self._call("POST", f"{API}/rooms/{_q(room_id)}/leave", json={})
        self.invites.pop(room_id, None)

    # ------------------------------------------------------------------ messages

    async def _event(self, room_id: str, event_id: str) -> dict:
        event = await self._call("GET", f"{API}/rooms/{_q(room_id)}/event/{_q(event_id)}")
        return self.decrypt(room_id, event)

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
            page = await self._call("GET", f"{API}/rooms/{_q(room)}/messages", params=params)
            chunk = page.get("chunk") or []
            for event in chunk:
                if is_message(event):
                    self._remember(room, event)
                if (event.get("content") or {}).get(MESSAGE_KEY) == mid:
                    return str(event["event_id"])
            seen += len(chunk)
            token = page.get("end")
            if not chunk or not token:
                break
        return None

    async def _event_id(self, room_id: str, cid: str, mid: str) -> str:
        if mid.startswith("$"):
            return mid
        event_id = self._event_of.get(mid) or await self.find_message(cid, mid)
        if event_id is None:
            raise PermanentError(f"no message {mid} in {cid}", 404, "M_NOT_FOUND")
        return event_id

    async def put_message(self, cid: str, mid: str, body: str, *,
                          check_first: bool = False) -> Message:
        """``PUT /rooms/{room}/send/m.room.message/{mid}``: ``mid`` is the transaction id
        and is carried in the content under :data:`MESSAGE_KEY` (rule M1), so a retry on
        the same token makes no second event. With ``check_first`` (an earlier attempt may
        have reached the server under another token or longer ago than the server keeps
        transaction ids) the room is searched for ``mid`` first and a found event is
        answered without sending. Returns the message as the server stored it.

        Raises:
            PermanentError: 403 (not joined), 404 (no such conversation), 413.
        """
        room = await self._room(cid)
        await self._refuse_encrypted(room)
        event_id = await self.find_message(cid, mid) if check_first else None
        if event_id is None:
            answer = await self._call(
                "PUT", f"{API}/rooms/{_q(room)}/send/m.room.message/{_q(mid)}",
                json={"msgtype": "m.text", "body": body, MESSAGE_KEY: mid})
            event_id = str(answer["event_id"])
        event = await self._event(room, event_id)
        self._remember(room, event)
        return self._message(event, cid)

    def _message(self, event: dict, cid: str) -> Message:
        from chat_tui.wire.models import Message

        return Message(**fields(event, cid))

    async def patch_message(self, mid: str, body: str, base_version: int | None, *,
                            conversation_id: str | None = None) -> Message:
        """Edit my message ``mid`` with an ``m.replace`` event (``* body`` as fallback,
        ``m.new_content`` the new text); its transaction id is derived from ``mid``,
        ``body`` and ``base_version``, so a repeat makes no second edit. Returns the
        message with the new body, ``version`` the edit's time.

        Raises:
            PermanentError: no ``conversation_id`` (422), unknown message (404), another
            user's message (403).
        """
        if not conversation_id:
            raise PermanentError("a Matrix edit needs the conversation", 422, "bad_request")
        room = await self._room(conversation_id)
        await self._refuse_encrypted(room)
        target = await self._event_id(room, conversation_id, mid)
        digest = hashlib.sha256(f"{mid}\0{base_version}\0{body}".encode()).hexdigest()[:24]
        answer = await self._call(
            "PUT", f"{API}/rooms/{_q(room)}/send/m.room.message/{_q(mid)}.edit.{digest}",
            json={"msgtype": "m.text", "body": f"* {body}",
                  "m.new_content": {"msgtype": "m.text", "body": body},
                  "m.relates_to": {"rel_type": "m.replace", "event_id": target}})
        edit = await self._event(room, str(answer["event_id"]))
        original = await self._event(room, target)
        return self._with_edit(original, edit, conversation_id)

    def _with_edit(self, original: dict, edit: dict, cid: str) -> Message:
        from chat_tui.wire.models import Message

        data = fields(original, cid)
        new = (edit.get("content") or {}).get("m.new_content") or {}
        if not data["deleted"] and data["version"] <= ts(edit):
            data.update(body=new.get("body", "") if isinstance(new.get("body"), str) else "",
                        version=ts(edit), edited_at=when(ts(edit)))
        return Message(**data)

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
        await self._call("PUT", f"{API}/rooms/{_q(room)}/redact/{_q(target)}/{_q(mid)}.redact",
                         json={})
        event = await self._event(room, target)
        data = fields(event, conversation_id)
        data.update(id=mid, body="", deleted=True)
        from chat_tui.wire.models import Message

        return Message(**data)

    async def mark_read(self, cid: str, mid: str) -> ReadMarker:
        """``POST /rooms/{room}/receipt/m.read/{event}``: my read receipt on ``mid``."""
        from chat_tui.wire.models import ReadMarker

        room = await self._room(cid)
        target = await self._event_id(room, cid, mid)
        await self._call("POST", f"{API}/rooms/{_q(room)}/receipt/m.read/{_q(target)}",
                         json={})
        return ReadMarker(conversation_id=cid, username=self.user_id, message_id=mid,
                          seq=self._seq_of.get(mid, 0))

    # ------------------------------------------------------------------ sync

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
        limits = httpx.Timeout(self._timeout, read=self._sync_read_timeout + timeout)
        answer = await self._call("GET", f"{API}/sync", params=params, timeout=limits)
        rooms = answer.get("rooms") or {}
        conversations = []
        markers = []
        for room_id, room in (rooms.get("join") or {}).items():
            item, room_markers = await self._joined(room_id, room)
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

    async def _joined(self, room_id: str, room: dict) -> tuple[Any, list]:
        from chat_tui.wire.models import ReadMarker, SyncConversation

        state = self._room_state(room_id)
        for event in (room.get("state") or {}).get("events") or []:
            state.apply(event)
        heroes = (room.get("summary") or {}).get("m.heroes")
        if isinstance(heroes, list):
            state.heroes = [str(h) for h in heroes]
        timeline = room.get("timeline") or {}
        events = [self.decrypt(room_id, e) for e in timeline.get("events") or []]
        for event in events:
            state.apply(event)
        if state.cid:
            self._room_of[state.cid] = room_id
        cid = state.conversation_id
        messages: dict[str, Message] = {}
        for event in events:
            if is_message(event):
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
            mid = self._remember(room_id, original)
            if event.get("type") == "m.room.redaction":
                data = fields(original, cid)
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
                        **fields(original, cid), "id": mid, "body": body,
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
                    mid = self._mid_of.get(event_id, event_id)
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
        if event_id in self._mid_of:  # a redacted event has lost its content key
            event = {**event, "content": {**(event.get("content") or {}),
                                          MESSAGE_KEY: self._mid_of[event_id]}}
        return event

    async def _left(self, room_id: str, room: dict) -> Any:
        from chat_tui.wire.models import SyncConversation

        state = self._room_state(room_id)
        for event in (room.get("state") or {}).get("events") or []:
            state.apply(event)
        return SyncConversation(conversation=self._to_conversation(state, None, 0),
                                messages=(), limited=False, removed=True)

    # ------------------------------------------------------------------ backfill

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
        if before is not None:
            event_id = await self._event_id(room, cid, before)
            token = self._token_before.get(event_id)
            if not token:
                context = await self._call(
                    "GET", f"{API}/rooms/{_q(room)}/context/{_q(event_id)}",
                    params={"limit": 0})
                token = str(context.get("start", ""))
            params["from"] = token
        page = await self._call("GET", f"{API}/rooms/{_q(room)}/messages", params=params)
        chunk = [self.decrypt(room, e) for e in page.get("chunk") or []]
        state = self._room_state(room)
        cid = state.conversation_id if state.cid else cid
        found = []
        for event in chunk:
            if is_message(event):
                self._remember(room, event)
                found.append(self._message(event, cid))
        end = page.get("end")
        if chunk and end:
            self._token_before[str(chunk[-1].get("event_id"))] = str(end)
        found.sort(key=lambda m: (m.seq, m.id))
        return MessagesPage(messages=tuple(found), has_more=bool(chunk and end),
                            total_count=-1)


__all__ = ["Invite", "MatrixClient"]

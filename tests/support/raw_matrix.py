"""A plain Matrix client over raw HTTP for tests (:class:`RawMatrix`): what another
Matrix user's client does, written without chat-tui's code, so the tests see the rooms
as any Matrix client does. Synchronous httpx; every call raises ``httpx.HTTPStatusError``
on a refusal.
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

import httpx

API = "/_matrix/client/v3"


def _q(value: str) -> str:
    return quote(value, safe="")


class RawMatrix:
    """User ``localpart`` logged in with ``password`` on the homeserver at ``url``:
    ``user_id`` and ``token`` after construction."""

    def __init__(self, url: str, localpart: str, password: str, *,
                 token: tuple[str, str] | None = None):
        self.http = httpx.Client(base_url=url, timeout=30)
        if token is None:
            answer = self.http.post(f"{API}/login", json={
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": localpart},
                "password": password}).raise_for_status().json()
            token = answer["user_id"], answer["access_token"]
        self.user_id: str = token[0]
        self.token: str = token[1]
        self.http.headers["authorization"] = f"Bearer {self.token}"

    @classmethod
    def appservice(cls, url: str, user_id: str, as_token: str) -> RawMatrix:
        """The application service's own user ``user_id`` with its token ``as_token``
        (no login): it may claim an event's ``origin_server_ts`` (:meth:`say_at`)."""
        return cls(url, "", "", token=(user_id, as_token))

    def say_at(self, room: str, text: str, ts: int) -> str:
        """Send the plain text ``text`` claiming ``origin_server_ts`` ``ts`` (milliseconds;
        ``?ts=``, honoured for an application service only); the event id."""
        return self.http.put(
            f"{API}/rooms/{_q(room)}/send/m.room.message/{uuid.uuid4().hex}",
            params={"ts": ts}, json={"msgtype": "m.text", "body": text},
        ).raise_for_status().json()["event_id"]

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def create_room(self, name: str, invite: list[str], *, encrypted: bool = False) -> str:
        """A private room named ``name`` with ``invite`` invited (and
        ``m.room.encryption`` in its initial state when ``encrypted``); its room id."""
        body: dict = {"preset": "private_chat", "name": name, "invite": invite}
        if encrypted:
            body["initial_state"] = [{"type": "m.room.encryption", "state_key": "",
                                      "content": {"algorithm": "m.megolm.v1.aes-sha2"}}]
        return self.http.post(f"{API}/createRoom", json=body).raise_for_status().json()[
            "room_id"]

    def join(self, room: str) -> None:
        """Join (or accept the invite to) ``room``."""
        self.http.post(f"{API}/join/{_q(room)}", json={}).raise_for_status()

    def send(self, room: str, content: dict, event_type: str = "m.room.message") -> str:
        """Send ``content`` as ``event_type`` with a fresh transaction id; the event id."""
        return self.http.put(
            f"{API}/rooms/{_q(room)}/send/{event_type}/{uuid.uuid4().hex}",
            json=content).raise_for_status().json()["event_id"]

    def say(self, room: str, text: str) -> str:
        """Send the plain text ``text``; the event id."""
        return self.send(room, {"msgtype": "m.text", "body": text})

    def edit(self, room: str, event_id: str, text: str) -> str:
        """Edit my message ``event_id`` to ``text`` (an ``m.replace`` event)."""
        return self.send(room, {"msgtype": "m.text", "body": f"* {text}",
                                "m.new_content": {"msgtype": "m.text", "body": text},
                                "m.relates_to": {"rel_type": "m.replace",
                                                 "event_id": event_id}})

    def redact(self, room: str, event_id: str) -> None:
        """Redact ``event_id``."""
        self.http.put(f"{API}/rooms/{_q(room)}/redact/{_q(event_id)}/{uuid.uuid4().hex}",
                      json={}).raise_for_status()

    def state(self, room: str, event_type: str, key: str = "") -> dict | None:
        """The content of the room's current state event ``event_type``/``key``, or None
        when it has none."""
        answer = self.http.get(f"{API}/rooms/{_q(room)}/state/{event_type}/{_q(key)}")
        if answer.status_code == 404:
            return None
        return answer.raise_for_status().json()

    def membership(self, room: str, user: str) -> str | None:
        """``user``'s membership of ``room`` (``join``, ``invite``, ``leave``...), or None."""
        content = self.state(room, "m.room.member", user)
        return None if content is None else content.get("membership")

    def joined_rooms(self) -> list[str]:
        """The rooms I am joined to."""
        return self.http.get(f"{API}/joined_rooms").raise_for_status().json()["joined_rooms"]

    def events(self, room: str) -> list[dict]:
        """Every event of ``room`` I can see, oldest first (``/messages`` page by page)."""
        events: list[dict] = []
        params: dict = {"dir": "b", "limit": 500}
        while True:
            page = self.http.get(f"{API}/rooms/{_q(room)}/messages",
                                 params=params).raise_for_status().json()
            events.extend(page["chunk"])
            if not page["chunk"] or "end" not in page:
                return events[::-1]
            params["from"] = page["end"]

    def texts(self, room: str) -> list[str]:
        """The bodies of the room's (not redacted, not edit) text messages, oldest first."""
        return [e["content"]["body"] for e in self.events(room)
                if e["type"] == "m.room.message" and "body" in e.get("content", {})
                and "m.relates_to" not in e["content"]]


__all__ = ["RawMatrix"]

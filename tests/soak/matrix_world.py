"""The soak world of a Matrix account (docs/sync.md, Matrix; docs/reliability.md): the same
steps and oracle as :class:`tests.soak.harness.World`, against a real Synapse of its own.

What differs from the chat-tui world:

- the server is ``matrix-synapse`` (:class:`tests.support.synapse.Synapse`, SQLite, loopback)
  behind the fault proxy; the client is the same ``tests/soak/driver.py`` on a saved Matrix
  account (``kind`` matrix), so sends are ``PUT .../send/m.room.message/{outbox id}``;
- the checker and the phone are two more devices of the same Matrix user, over raw HTTP:
  the checker reads each room's events (``/messages``) and rebuilds the messages the way
  any Matrix client does (edits applied, redactions as tombstones); the phone sends with
  its own transaction ids and the chat-tui id in the content, as a second chat-tui would;
- a redacted event keeps no content, so a message sent and deleted between two quiet
  points may be unknown to the checker: such tombstones are left out (the message is
  deleted either way), and the cache is compared on live messages and known tombstones;
- the room's ``seq`` here is ``origin_server_ts`` (Matrix has no total order number), so
  ``reordered`` compares the send order with the timestamps' order, ties by the events'
  order; the cache's ``seq`` is the client's place of an event (docs/sync.md, rule M5),
  so the cache is compared with the room by the order of the messages, not their
  ``seq``.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import httpx

from chat_tui.config import Account, save_account, store_token
from tests.soak.harness import XDG_VARS, Sent, World
from tests.support.fault_proxy import FaultProxy
from tests.support.synapse import Synapse

#: Content keys chat-tui writes (``chat_tui.api.matrix.events``), spelled out so the
#: checker does not read events through the code under test.
MESSAGE_KEY = "dev.chat_tui.id"
CREATE_KEY = "dev.chat_tui.cid"
API = "/_matrix/client/v3"
PASSWORD = "soak-pw"


def _q(value: str) -> str:
    return quote(value, safe="")


class SynapseServer:
    """The world's Synapse with the controls :class:`World` uses on its server."""

    def __init__(self, synapse: Synapse):
        self.synapse = synapse

    @property
    def running(self) -> bool:
        process = self.synapse.process
        return process is not None and process.poll() is None

    def start(self) -> None:
        self.synapse.start()

    def stop(self) -> None:
        self.synapse.stop()

    def kill(self) -> None:
        """SIGKILL of the homeserver's process group (a crash)."""
        process, self.synapse.process = self.synapse.process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(15)


class MatrixWorld(World):
    """A soak world on a Matrix account (see module doc)."""

    SEND_PATH = "/send/m.room.message/"
    FAULT_PATH = "/rooms/"

    def __init__(self, workdir: Path, cache_key: str = "none"):
        super().__init__(workdir, cache_key)
        self.synapse: Synapse | None = None
        self._rooms: dict[str, str] = {}          # conversation id -> room id
        self._key_of_room: dict[str, str | None] = {}  # room id -> its creation key
        self._mid_of_event: dict[str, str] = {}   # event id -> chat-tui id, as seen
        self._duplicate_ids: dict[str, list[str]] = {}
        self._split_rooms: dict[str, list[str]] = {}  # conversation id -> its extra rooms

    def start(self) -> MatrixWorld:
        """Start Synapse, the proxy and the client; log in the client (through the
        proxy), the checker and the phone (directly); create the first room."""
        self._saved_env = {k: os.environ.get(k) for k in XDG_VARS}
        for k in XDG_VARS:
            path = self.workdir / "user" / k.lower()
            path.mkdir(parents=True, exist_ok=True)
            os.environ[k] = str(path)
        os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
        from chat_tui.config import config_file

        config_file().write_text(f'[cache]\nkey = "{self.cache_key}"\n', encoding="utf-8")
        self.synapse = Synapse(self.workdir / "synapse")
        self.server = SynapseServer(self.synapse)  # type: ignore[assignment]
        self.proxy = FaultProxy(self.synapse.url).start()
        self.me = self.synapse.register("alice", PASSWORD)
        self.other = self.synapse.register("bob", PASSWORD)
        answer = self._login("soak-client")
        self.account = Account(server_url=self.proxy.url, username=self.me, user_id=self.me,
                               device_id=answer["device_id"], kind="matrix")
        store_token(self.account, answer["access_token"])
        save_account(self.account)
        self.checker = self._http("checker")
        self.phone = self._http("phone")
        self.client.start()
        self.create_conversation()
        return self

    def _login(self, device: str) -> dict:
        assert self.synapse is not None
        return httpx.post(f"{self.synapse.url}{API}/login", timeout=30, json={
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"},
            "password": PASSWORD, "initial_device_display_name": device,
        }).raise_for_status().json()

    def _http(self, device: str) -> httpx.Client:
        assert self.synapse is not None
        token = self._login(device)["access_token"]
        return httpx.Client(base_url=self.synapse.url, timeout=30,
                            headers={"authorization": f"Bearer {token}"})

    def close(self) -> None:
        """Stop the client, the proxy and Synapse; restore the environment."""
        try:
            super().close()
        finally:
            if self.synapse is not None:
                self.synapse.close()

    # ------------------------------------------------------------------ rooms

    def _room(self, cid: str) -> str | None:
        """The room of conversation ``cid`` (found by its creation key), or None while it
        is not created on the homeserver. When several rooms carry the key (rule M2
        broken), the first one seen; :meth:`_rooms_of` lists them all."""
        if cid not in self._rooms:
            self._scan_rooms()
        return self._rooms.get(cid)

    def _scan_rooms(self) -> None:
        """Read the creation key of every joined room not read yet (a room's
        ``m.room.create`` never changes, so each is read once)."""
        assert self.checker is not None
        joined = self.checker.get(f"{API}/joined_rooms").raise_for_status().json()
        for room in joined["joined_rooms"]:
            if room in self._key_of_room:
                continue
            r = self.checker.get(f"{API}/rooms/{_q(room)}/state/m.room.create/")
            if r.status_code != 200:
                continue
            key = r.json().get(CREATE_KEY)
            self._key_of_room[room] = key if isinstance(key, str) else None
            if isinstance(key, str):
                self._rooms.setdefault(key, room)

    def _rooms_of(self, cid: str) -> list[str]:
        """Every joined room created for conversation ``cid`` (one, unless a create was
        made twice), the one :meth:`_room` gives first."""
        first = self._room(cid)
        if first is None:
            return []
        self._scan_rooms()
        return [first, *(r for r, k in self._key_of_room.items() if k == cid and r != first)]

    # ------------------------------------------------------------------ the phone

    def _phone_may_send(self, cid: str) -> bool:
        """The phone (a second device of the same user) sends only into a room that
        exists: not while the room is not created yet, nor when Synapse cannot say."""
        try:
            return self._room(cid) is not None
        except httpx.HTTPError:
            return False

    def _phone_put(self, msg: Sent) -> bool:
        assert self.phone is not None
        try:
            room = self._room(msg.cid)
            if room is None:
                return False
            r = self.phone.put(f"{API}/rooms/{_q(room)}/send/m.room.message/{msg.mid}",
                               json={"msgtype": "m.text", "body": msg.body,
                                     MESSAGE_KEY: msg.mid})
        except httpx.HTTPError:
            return False
        return r.status_code == 200

    # ------------------------------------------------------------------ the oracle

    def _events(self, room: str) -> list[dict]:
        assert self.checker is not None
        events: list[dict] = []
        params: dict = {"dir": "b", "limit": 500}
        while True:
            page = self.checker.get(f"{API}/rooms/{_q(room)}/messages",
                                    params=params).raise_for_status().json()
            events.extend(page["chunk"])
            if not page["chunk"] or "end" not in page:
                return events[::-1]
            params["from"] = page["end"]

    def server_messages(self, cid: str) -> list[dict]:
        """The room's messages as the chat-tui API would list them (``id``, ``author``,
        ``seq``, ``body`` with the latest edit, ``deleted``), in the room's order."""
        rooms = self._rooms_of(cid)
        self._split_rooms[cid] = rooms[1:]
        if len(rooms) > 1:  # the conversation's messages, whichever room they went to
            events = sorted((e for r in rooms for e in self._events(r)),
                            key=lambda e: e.get("origin_server_ts", 0))
        elif rooms:
            events = self._events(rooms[0])
        else:
            return []
        out: list[dict] = []
        by_event: dict[str, dict] = {}
        for e in events:
            content = e.get("content") or {}
            if e.get("type") != "m.room.message":
                continue
            if (content.get("m.relates_to") or {}).get("rel_type") == "m.replace":
                continue
            eid = e["event_id"]
            if isinstance(content.get(MESSAGE_KEY), str):
                self._mid_of_event[eid] = content[MESSAGE_KEY]
            redacted = "redacted_because" in (e.get("unsigned") or {}) or not content
            mid = self._mid_of_event.get(eid) or (None if redacted else eid)
            if mid is None:
                continue  # a redaction hid whose message it was (see module doc)
            m = {"id": mid, "conversation_id": cid, "author": e.get("sender"),
                 "seq": e.get("origin_server_ts", 0), "version": e.get("origin_server_ts", 0),
                 "body": "" if redacted else str(content.get("body", "")),
                 "deleted": redacted}
            out.append(m)
            by_event[eid] = m
        for e in events:
            content = e.get("content") or {}
            rel = content.get("m.relates_to") or {}
            target = by_event.get(rel.get("event_id", "")) if rel.get("rel_type") == \
                "m.replace" else None
            if target is None or target["deleted"] or e.get("sender") != target["author"]:
                continue
            new = content.get("m.new_content") or {}
            target["body"] = str(new.get("body", ""))
            target["version"] = e.get("origin_server_ts", 0)
        counts = Counter(m["id"] for m in out)
        self._duplicate_ids[cid] = [k for k, v in counts.items() if v > 1]
        return out

    def check(self, cache_wait: float = 20.0) -> dict[str, list[str]]:
        """:meth:`World.check`, plus a message id on more than one event, and a
        conversation created as more than one room (rule M2), as ``duplicated``."""
        problems = super().check(cache_wait)
        for cid, extra in self._split_rooms.items():
            if extra:
                problems.setdefault("duplicated", []).append(
                    f"conversation {cid} is {1 + len(extra)} rooms: the first "
                    f"{self._rooms[cid]}, then {extra} (rule M2)")
                self.stats.problems["duplicated"] += 1
        for cid, ids in self._duplicate_ids.items():
            for mid in ids:
                problems.setdefault("duplicated", []).append(
                    f"{mid} is on {cid}'s room more than once")
                self.stats.problems["duplicated"] += 1
        return problems

    def _compare_cache(self, server: dict[str, list[dict]],  # type: ignore[override]
                       rows: dict[str, list[tuple]]) -> list[str]:
        """The cache against the room: the same live messages (id, body) in the room
        timeline's order (the cache's by its ``seq``, rule M5), and no known tombstone
        shown live."""
        out = []
        for cid, msgs in server.items():
            want = [(n, m["id"], m["body"]) for n, m in enumerate(
                m for m in msgs if not m["deleted"])]
            have = [(n, r[0], r[3]) for n, r in enumerate(
                r for r in sorted(rows.get(cid, []), key=lambda r: (r[1], r[0]))
                if not r[4])]
            gone = {m["id"] for m in msgs if m["deleted"]}
            shown = [r[0] for r in rows.get(cid, []) if not r[4] and r[0] in gone]
            if want != have or shown:
                w, h = {x[1]: x for x in want}, {x[1]: x for x in have}
                out.append(f"{cid}: cache vs room: missing {sorted(set(w) - set(h))[:5]}, "
                           f"extra {sorted(set(h) - set(w))[:5]}, deleted but shown "
                           f"{shown[:5]}, differing "
                           f"{[(w[k], h[k]) for k in set(w) & set(h) if w[k] != h[k]][:3]}")
        return out


__all__ = ["MatrixWorld", "SynapseServer"]

"""The soak world: real server process, fault proxy, the real engine in a killable process,
a second device of the same account, and the oracle that checks the promise.

Used by ``tests/soak/test_soak_machine.py`` (hypothesis, short CI profile) and by
``tools/soak.py`` (the long soak). No mocks: the server is ``chat-tui-server serve`` on
loopback with its own SQLite file (:class:`tests.support.servers.ServerFactory`), the client is
``tests/soak/driver.py`` (the engine exactly as ``chat-tui sync`` builds it) talking to the
server through :class:`tests.support.fault_proxy.FaultProxy`.

The oracle (:meth:`World.check`, called at quiet points) checks, per docs/sync.md and
docs/reliability.md:

- every message device 1 sent and did not discard is on the server exactly once, with its
  latest edit (or a tombstone when deleted); a message deleted or discarded before it was
  sent is absent;  -> ``lost``, ``duplicated``, ``stale``
- device 1's messages are in the order it sent them, within each conversation (by ``seq``);
  -> ``reordered``
- no server message by the account is unknown to the model; -> ``phantom``
- every server message is in the cache exactly once, with the server's version, body and
  tombstone; the cache holds no acknowledged message the server lacks;  -> ``cache``
- once online and idle, the outbox is empty (nothing ``sending``, ``queued``, ``failed``,
  ``blocked`` or ``expired`` except the message the test poisoned);  -> ``stuck``
- ``PRAGMA integrity_check`` of the cache file is ``ok``.  -> ``integrity``

Every method that draws nothing itself takes its random choices as arguments, so a driver
(hypothesis or ``random.Random(seed)``) replays the same sequence of steps from its seed.
Timing (how far a request got when ``kill -9`` lands) is real and is not replayed exactly.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from chat_tui.config import Account, load_accounts, save_account, store_token
from tests.support.accounts import PASSWORDS
from tests.support.fault_proxy import FaultProxy, Rule
from tests.support.servers import ServerFactory, ServerProcess
from tests.support.waiting import wait_until

DRIVER = Path(__file__).with_name("driver.py")

#: Client settings of the soak (``CHAT_TUI_*`` overrides, docs: chat_tui/config/settings.py):
#: small backoff so retries take milliseconds, a 2 s request timeout so the "slow" fault
#: (held 3 s) times out, and enough attempts that injected 5xx never exhaust a message.
CLIENT_ENV = {
    "CHAT_TUI_BACKOFF_BASE": "0.02",
    "CHAT_TUI_BACKOFF_CAP": "0.3",
    "CHAT_TUI_POLL_TIMEOUT": "2",
    "CHAT_TUI_PROBE_TIMEOUT": "1",
    "CHAT_TUI_REQUEST_TIMEOUT": "2",
    "CHAT_TUI_MAX_ATTEMPTS": "1000",
}
SLOW_SECONDS = 3.0
XDG_VARS = ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")
FAULT_KINDS = ("refused", "reset", "drop", "500", "502", "503", "429", "slow")


class SoakFailure(AssertionError):
    """An invariant broke. ``problems`` maps a category to readable details."""

    def __init__(self, problems: dict[str, list[str]]):
        self.problems = problems
        lines = [f"{k}: {len(v)}\n    " + "\n    ".join(v[:8]) for k, v in problems.items()]
        super().__init__("soak invariants broken:\n" + "\n".join(lines))


@dataclass
class Sent:
    """A message the model expects: ``order`` is the global send order of its device."""

    mid: str
    cid: str
    order: int
    body: str
    device: int = 1
    deleted: bool = False
    discarded: bool = False
    poison: Rule | None = None  # a 422 rule on this message (device 1)
    discard_on_fail: bool = False


@dataclass
class Stats:
    """Figures of a run (printed by tools/soak.py)."""

    rounds: int = 0
    messages_sent: int = 0
    edits: int = 0
    deletes: int = 0
    conversations: int = 0
    kills: int = 0
    server_restarts: int = 0
    faults: Counter = field(default_factory=Counter)
    checks: int = 0
    faults_fired: int = 0  # requests the proxy answered other than by a plain forward
    problems: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {"rounds": self.rounds, "messages_sent": self.messages_sent,
                "edits": self.edits, "deletes": self.deletes,
                "conversations": self.conversations, "kills": self.kills,
                "server_restarts": self.server_restarts,
                "faults_injected": sum(self.faults.values()), "faults": dict(self.faults),
                "requests_faulted": self.faults_fired,
                "quiet_point_checks": self.checks,
                **{k: self.problems.get(k, 0) for k in
                   ("lost", "duplicated", "reordered", "stale", "phantom", "cache", "stuck",
                    "integrity")}}


class ClientProcess:
    """``tests/soak/driver.py`` as a subprocess with a JSON-lines command channel."""

    def __init__(self, workdir: Path, user: str = "alice"):
        self.workdir = workdir
        self.user = user
        self.proc: subprocess.Popen[str] | None = None
        self.stderr_path = workdir / "client-stderr.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        env = {**os.environ, **CLIENT_ENV}
        with self.stderr_path.open("a") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(DRIVER), "--user", self.user], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=self.workdir)
        ready = self._read(timeout)
        if ready != {"ready": True}:
            raise RuntimeError(f"client did not start (got {ready!r}):\n{self.stderr_tail()}")

    def _read(self, timeout: float) -> dict | None:
        assert self.proc is not None and self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def cmd(self, op: str, timeout: float = 30.0, **kw) -> dict:
        """Send a command, return its answer. Raises RuntimeError when the process died
        or did not answer within ``timeout`` seconds."""
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError as exc:
            raise RuntimeError(f"client died:\n{self.stderr_tail()}") from exc
        answer = self._read(timeout)
        if answer is None:
            raise RuntimeError(f"client gave no answer to {op}:\n{self.stderr_tail()}")
        return answer

    def kill9(self) -> None:
        """SIGKILL: no shutdown code runs (a crash, a power cut of the process)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self._close()

    def stop(self) -> None:
        """Graceful stop through the command channel (kill after 15 s)."""
        if self.proc is None:
            return
        if self.running:
            try:
                self.cmd("stop", timeout=15)
                self.proc.wait(timeout=15)
            except (RuntimeError, subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait()
        self._close()

    def _close(self) -> None:
        if self.proc is not None:
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass
        self.proc = None

    def stderr_tail(self, n: int = 3000) -> str:
        try:
            return self.stderr_path.read_text()[-n:]
        except FileNotFoundError:
            return ""


class World:
    """One soak world (see module doc). ``start()`` it, call steps, ``check()`` at quiet
    points, ``close()`` at the end. ``stats`` accumulates figures; ``log`` the steps taken.

    The class attributes name what a kind of server spells differently (a Matrix world,
    ``tests/soak/matrix_world.py``, sets its own): ``SEND_PATH``, the part of a send's
    request target before the message id; ``FAULT_PATH``, what a fault on one method
    matches; ``me`` and ``other``, the account's author name and the member it talks to.
    """

    SEND_PATH = "/messages/"
    FAULT_PATH = "/messages"
    me = "alice"
    other = "bob"

    def __init__(self, workdir: Path, cache_key: str = "none"):
        #: ``[cache] key`` of the world's config.toml: ``"file"`` runs the client's cache
        #: encrypted with a 0600 key file (sync rules D6, D7).
        self.cache_key = cache_key
        self.workdir = Path(workdir)
        self.factory = ServerFactory(self.workdir)
        self.server: ServerProcess | None = None
        self.proxy: FaultProxy | None = None
        self.client = ClientProcess(self.workdir)
        self.account: Account | None = None
        self.checker: httpx.Client | None = None
        self.phone: httpx.Client | None = None
        self.sent: list[Sent] = []
        self.conversations: list[str] = []
        self.fault_rules: list[Rule] = []
        self.refused = False
        self.work_offline = False
        self.stats = Stats()
        self.log: list[str] = []
        self._order = 0
        #: Seconds :meth:`settle` waits for each of its phases (:meth:`check` uses it).
        self.settle_timeout = 60.0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> World:
        """Start server, proxy and client; log in device 1 (through the proxy), the phone
        and the checker (directly). The world's user dirs (``XDG_*``) live in ``workdir``
        (restored by :meth:`close`), so every world has its own accounts and cache."""
        self._saved_env = {k: os.environ.get(k) for k in XDG_VARS}
        for k in XDG_VARS:
            path = self.workdir / "user" / k.lower()
            path.mkdir(parents=True, exist_ok=True)
            os.environ[k] = str(path)
        os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
        from chat_tui.config import config_file

        config_file().write_text(f'[cache]\nkey = "{self.cache_key}"\n', encoding="utf-8")
        self.server = self.factory.start(users=PASSWORDS)
        self.proxy = FaultProxy(self.server.url).start()
        data = self.server.login("alice", PASSWORDS["alice"], device="soak-client")
        self.account = Account(server_url=self.proxy.url, username=data["username"],
                               user_id=data["user_id"], device_id=data["device_id"])
        store_token(self.account, data["access_token"])
        save_account(self.account)
        self.checker = self._http("checker")
        self.phone = self._http("phone")
        self.client.start()
        self.create_conversation()
        return self

    def _http(self, device: str) -> httpx.Client:
        assert self.server is not None
        token = self.server.login("alice", PASSWORDS["alice"], device=device)["access_token"]
        return httpx.Client(base_url=self.server.url, timeout=10,
                            headers={"authorization": f"Bearer {token}"})

    def close(self) -> None:
        """Stop client, proxy and servers (safe after a partial start)."""
        self.client.stop()
        for c in (self.checker, self.phone):
            if c is not None:
                c.close()
        if self.proxy is not None:
            self.stats.faults_fired = sum(1 for e in self.proxy.log if e[2] != "forwarded")
            self.proxy.stop()
        self.factory.stop_all()
        for k, v in getattr(self, "_saved_env", {}).items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    @property
    def db_path(self) -> Path:
        assert self.account is not None
        return self.account.db_path

    def _note(self, text: str) -> None:
        self.log.append(text)

    def _client_cmd(self, op: str, **kw) -> dict:
        if not self.client.running:
            self.client.start()
            if self.work_offline:
                self.client.cmd("offline")
        answer = self.client.cmd(op, **kw)
        if "error" in answer:
            raise RuntimeError(f"client {op} {kw}: {answer['error']}")
        return answer

    # ------------------------------------------------------------------ user steps

    def create_conversation(self) -> str:
        """Create a conversation with bob (queued; works offline)."""
        cid = self._client_cmd("create", title=f"soak {len(self.conversations)}",
                               members=[self.other])["id"]
        self.conversations.append(cid)
        self.stats.conversations += 1
        self._note(f"create {cid[:8]}")
        return cid

    def send(self, conv: int, poison: bool = False, discard_on_fail: bool = False) -> Sent:
        """Device 1 sends into ``conversations[conv % n]``. ``poison``: the proxy answers
        ``422`` to this message's ``PUT`` until the quiet point, which then retries it or,
        with ``discard_on_fail``, discards it (the user's two choices, outbox rule 3).

        A poisoned message never reaches the server before that: it is queued while
        working offline, so the drain cannot send it before its rule is in place, and
        the rule goes first in the proxy's list, so a fault rule of an earlier step that
        forwards requests (``slow``, ``drop``, a ``reset``'s hold) cannot take its
        ``PUT`` and let the server store it."""
        cid = self.conversations[conv % len(self.conversations)]
        self._order += 1
        body = f"m{self._order} {uuid.uuid4().hex[:6]}"
        if poison:
            was_offline = self.work_offline
            self.set_work_offline(True)
        mid = self._client_cmd("send", cid=cid, body=body)["id"]
        msg = Sent(mid, cid, self._order, body)
        self.sent.append(msg)
        if poison:
            assert self.proxy is not None
            msg.poison = self.proxy.respond(422, method="PUT",
                                            path_contains=f"{self.SEND_PATH}{mid}",
                                            count=None, first=True)
            msg.discard_on_fail = discard_on_fail
            self.set_work_offline(was_offline)
        self.stats.messages_sent += 1
        self._note(f"send {body!r} -> {cid[:8]}" + (" (poisoned 422)" if poison else ""))
        return msg

    def _mine(self, index: int) -> Sent | None:
        live = [m for m in self.sent if m.device == 1 and not m.deleted and not m.discarded]
        return live[index % len(live)] if live else None

    def edit(self, index: int) -> None:
        """Edit one of device 1's live messages (queued, in flight or sent)."""
        msg = self._mine(index)
        if msg is None:
            return
        msg.body = msg.body.split(" e")[0] + f" e{uuid.uuid4().hex[:4]}"
        self._client_cmd("edit", mid=msg.mid, body=msg.body)
        self.stats.edits += 1
        self._note(f"edit {msg.mid[:8]} -> {msg.body!r}")

    def delete(self, index: int) -> None:
        """Delete one of device 1's live messages (queued ones are never sent)."""
        msg = self._mine(index)
        if msg is None:
            return
        self._client_cmd("delete", mid=msg.mid)
        msg.deleted = True
        if msg.poison is not None:
            msg.poison.count = 0
        self.stats.deletes += 1
        self._note(f"delete {msg.mid[:8]}")

    def set_work_offline(self, enabled: bool) -> None:
        """The user's "work offline" switch (sync rule C3)."""
        self._client_cmd("offline" if enabled else "online")
        self.work_offline = enabled
        self._note(f"work offline {enabled}")

    def phone_send(self, conv: int) -> None:
        """A second device of the same account sends (directly to the server). Skipped
        while the server is down or :meth:`_phone_may_send` says no; a lost answer is
        retried with the same id at check."""
        assert self.server is not None and self.phone is not None
        if not self.server.running:
            return
        cid = self.conversations[conv % len(self.conversations)]
        if not self._phone_may_send(cid):
            return
        self._order += 1
        msg = Sent(str(uuid.uuid4()), cid, self._order, f"phone {self._order}", device=2)
        self.sent.append(msg)
        self.stats.messages_sent += 1
        self._note(f"phone send {msg.body!r} -> {cid[:8]}")
        self._phone_put(msg)

    def _phone_may_send(self, cid: str) -> bool:
        """Whether the phone can send into ``cid`` now: always on chat-tui's server (a
        conversation not there yet answers 404, retried at check)."""
        return True

    def _phone_put(self, msg: Sent) -> bool:
        assert self.phone is not None
        try:
            r = self.phone.put(f"/v1/conversations/{msg.cid}/messages/{msg.mid}",
                               json={"body": msg.body})
        except httpx.TransportError:
            return False
        # 404: the conversation is not on the server yet (created offline by device 1).
        return r.status_code in (200, 201)

    # ------------------------------------------------------------------ chaos steps

    def kill_client(self, delay: float) -> None:
        """``kill -9`` the client ``delay`` seconds from now, then restart it from its cache
        file (outbox rule 4)."""
        time.sleep(delay)
        self.client.kill9()
        self.stats.kills += 1
        self._note(f"kill -9 client after {delay:.3f}s")
        self._client_cmd("status")  # restarts it

    def kill_client_mid_request(self) -> None:
        """Hold the answer to the next send (the server has committed it) and ``kill -9``
        the client while it waits for that answer (bug class 2). Skipped while a fault
        keeps requests from reaching the server."""
        assert self.proxy is not None and self.server is not None
        method = "PUT"
        if self.work_offline or self.refused or not self.server.running or self.fault_rules:
            return
        rule = self.proxy.hold(30, method=method, path_contains=self.SEND_PATH, count=1)
        before = len(self.proxy.requests(method, self.SEND_PATH))
        self.send(len(self.sent))
        deadline = time.monotonic() + 3
        while (time.monotonic() < deadline
               and len(self.proxy.requests(method, self.SEND_PATH)) <= before):
            time.sleep(0.01)
        self.client.kill9()
        rule.count = 0
        self.stats.kills += 1
        self._note(f"kill -9 client mid {method}")
        self._client_cmd("status")

    def restart_server(self, hard: bool, down_for: float) -> None:
        """Stop (SIGTERM, or SIGKILL when ``hard``) the server, wait, start it again on the
        same port and database."""
        assert self.server is not None
        if not self.server.running:
            self.server.start()
            return
        self.server.kill() if hard else self.server.stop()
        time.sleep(down_for)
        self.server.start()
        self.stats.server_restarts += 1
        self._note(f"server {'killed' if hard else 'stopped'} for {down_for:.2f}s")

    def stop_server(self) -> None:
        """The server goes away until the next quiet point (or restart step)."""
        assert self.server is not None
        if self.server.running:
            self.server.stop()
            self.stats.server_restarts += 1
            self._note("server stopped")

    def fault(self, kind: str, method: str | None, count: int) -> None:
        """Inject a proxy fault on the next ``count`` requests of ``method`` (None: any):
        ``refused`` (the listening socket closes), ``reset`` (connections are cut while
        the server works on a request), ``drop`` (the server commits, the answer is lost),
        ``500``/``502``/``503``, ``429`` (``Retry-After: 1``), ``slow`` (the answer comes
        after the client's timeout)."""
        assert self.proxy is not None
        p = self.proxy
        path = self.FAULT_PATH if method else ""
        if kind == "refused":
            p.refuse()
            self.refused = True
        elif kind == "reset":
            # Hold the next matching request while the server works on it, then cut every
            # open connection (the network resets mid-request).
            rule = p.hold(30, method=method, path_contains=path, count=1)
            time.sleep(0.05 * count)
            p.refuse()
            p.accept()
            rule.count = 0
        elif kind == "drop":
            self.fault_rules.append(p.drop_response(method=method, path_contains=path,
                                                    count=count))
        elif kind == "429":
            self.fault_rules.append(p.respond(429, retry_after=1, method=method,
                                              path_contains=path, count=count))
        elif kind == "slow":
            self.fault_rules.append(p.hold(SLOW_SECONDS, method=method, path_contains=path,
                                           count=count))
        else:
            self.fault_rules.append(p.respond(int(kind), method=method, path_contains=path,
                                              count=count))
        self.stats.faults[kind] += 1
        self._note(f"fault {kind} {method or 'any'} x{count}")

    # ------------------------------------------------------------------ quiet point

    def heal(self) -> None:
        """End every fault: proxy rules off (except poison), proxy accepting, server and
        client running, work offline off."""
        assert self.proxy is not None and self.server is not None
        for rule in self.fault_rules:
            rule.count = 0
        self.fault_rules.clear()
        if self.refused:
            self.proxy.accept()
            self.refused = False
        if not self.server.running:
            self.server.start()
        if self.work_offline or not self.client.running:
            self.set_work_offline(False)

    def _status(self) -> dict:
        return self._client_cmd("status")

    def settle(self, timeout: float = 60.0) -> list[str]:
        """Heal, resolve poisoned messages the way the user chose, then wait until the
        outbox is empty and the client online. Returns "stuck" details (empty when idle).

        A stuck item does not end the settling, so :meth:`check` still compares a
        settled world and its lost / duplicated / reordered counts mean what they say: a
        poisoned message that does not show as failed within ``timeout`` seconds is
        reported with what the client, its cache and the server hold for it
        (:meth:`_not_failed`), its refusal is lifted and the model keeps it as sent (the
        oracle then finds it on the server, or reports it lost); the other poisoned
        messages, the phone's sends and the outbox are settled as usual. The poisoned
        messages share one ``timeout`` (each gets at least 5 s); the phone and the
        outbox get another."""
        self.heal()
        stuck: list[str] = []
        deadline = time.monotonic() + timeout
        poisoned = [m for m in self.sent if m.poison is not None and not m.deleted
                    and not m.discarded]
        for msg in poisoned:
            failed = wait_until(lambda mid=msg.mid: any(
                p["message_id"] == mid and p["state"] == "failed"
                for p in self._status()["problems"]),
                max(deadline - time.monotonic(), min(5.0, timeout)), interval=0.05)
            assert msg.poison is not None
            msg.poison.count = 0
            msg.poison = None
            if not failed:
                stuck.append(self._not_failed(msg, timeout))
                self._note(f"poisoned {msg.mid[:8]} never failed; kept as sent")
                continue
            if msg.discard_on_fail:
                text = self._client_cmd("discard", mid=msg.mid)["text"]
                msg.discarded = True
                self._note(f"discard {msg.mid[:8]}")
                if text != msg.body:
                    stuck.append(f"discard of {msg.mid} gave back {text!r}, not {msg.body!r}")
            else:
                self._client_cmd("retry", mid=msg.mid)
                self._note(f"retry {msg.mid[:8]}")
        mids = {m.mid: m for m in self.sent}
        for p in self._status()["problems"]:
            msg = mids.get(p["message_id"] or "")
            if p["state"] == "failed" and msg is not None and msg.deleted:
                # A delete queued behind its own failed send: the user discards both.
                self._client_cmd("discard", mid=msg.mid)
                self._note(f"discard deleted-but-failed {msg.mid[:8]}")
        deadline = time.monotonic() + timeout
        for msg in self.sent:
            if msg.device == 2:
                while not self._phone_put(msg) and time.monotonic() < deadline:
                    time.sleep(0.1)
        st: dict = {}

        def idle() -> bool:
            nonlocal st
            st = self._status()
            return st["connectivity"] == "online" and not any(st["counts"].values())

        if not wait_until(idle, deadline - time.monotonic(), interval=0.05):
            stuck.append(f"outbox not empty {timeout:.0f}s after healing: {st}")
        return stuck

    def _not_failed(self, msg: Sent, timeout: float) -> str:
        """The "stuck" detail of a poisoned message that did not show as failed: its
        outbox rows and acknowledged copy in the cache, the client's outbox status, and
        whether the server has it (and with which body)."""
        try:
            rows, outbox, _ = self.cache_rows()
            mine = [o for o in outbox if o[2] == msg.mid]
            cached = [r for r in rows.get(msg.cid, []) if r[0] == msg.mid]
        except Exception as exc:  # the detail must not hide the finding
            mine, cached = [f"cache unreadable: {exc}"], []
        try:
            server = [m for m in self.server_messages(msg.cid) if m["id"] == msg.mid]
            on_server = (f"on the server {len(server)}x: "
                         f"{[(m['body'], m['deleted']) for m in server]}"
                         if server else "not on the server")
        except Exception as exc:
            on_server = f"server unreadable: {exc}"
        return (f"poisoned {msg.mid} {msg.body!r} never showed as failed in {timeout:.0f}s: "
                f"{on_server}; cache outbox rows {mine}, acknowledged copy {cached}; "
                f"client {self._status()}")

    def server_messages(self, cid: str) -> list[dict]:
        """Every message of ``cid`` on the server (tombstones included), ascending by seq."""
        assert self.checker is not None
        out: list[dict] = []
        before = None
        while True:
            params: dict = {"limit": 500}
            if before:
                params["before"] = before
            r = self.checker.get(f"/v1/conversations/{cid}/messages", params=params)
            r.raise_for_status()
            data = r.json()
            out = data["messages"] + out
            if not data["has_more"] or not data["messages"]:
                return out
            before = data["messages"][0]["id"]

    def cache_rows(self) -> tuple[dict[str, list[tuple]], list[tuple], str]:
        """(acknowledged messages by conversation, outbox rows, integrity_check) read from
        the cache file with a separate read-only SQLite connection."""
        from chat_tui.config.cachekeys import load_cache_key
        from chat_tui.store.cipher import open_raw_connection

        con = open_raw_connection(self.db_path, load_cache_key(self.db_path), readonly=True,
                                  timeout=30)
        try:
            rows: dict[str, list[tuple]] = {}
            for r in con.execute("SELECT c.id, m.id, m.seq, m.version, m.body, m.deleted "
                                 "FROM message m JOIN conversation c ON c.pk = m.conv "
                                 "WHERE m.seq IS NOT NULL ORDER BY m.seq"):
                rows.setdefault(r[0], []).append(r[1:])
            outbox = con.execute("SELECT id, kind, message_id, state FROM outbox").fetchall()
            integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
            return rows, outbox, integrity
        finally:
            con.close()

    def check(self, cache_wait: float = 20.0) -> dict[str, list[str]]:
        """Settle, then check every invariant (module doc). Returns ``{category:
        [details]}`` for what broke (empty when all hold); adds the counts to ``stats``."""
        self.stats.checks += 1
        problems: dict[str, list[str]] = {}

        def bad(kind: str, text: str) -> None:
            problems.setdefault(kind, []).append(text)

        for text in self.settle(self.settle_timeout):
            bad("stuck", text)
        server = {cid: self.server_messages(cid) for cid in self.conversations}
        by_id = {m["id"]: m for msgs in server.values() for m in msgs}
        expected = {m.mid: m for m in self.sent}
        for msg in self.sent:
            srv = by_id.get(msg.mid)
            copies = [m for msgs in server.values() for m in msgs
                      if m["body"] == msg.body and not m["deleted"]]
            if msg.discarded or (msg.deleted and srv is None):
                if srv is not None and not srv["deleted"]:
                    bad("phantom", f"{msg.mid} was discarded/deleted but the server has it")
                continue
            if srv is None:
                bad("lost", f"{msg.mid} {msg.body!r} (device {msg.device}) not on the server")
                continue
            if srv["conversation_id"] != msg.cid:
                bad("lost", f"{msg.mid} landed in {srv['conversation_id']}, not {msg.cid}")
            if msg.deleted:
                if not srv["deleted"]:
                    bad("stale", f"{msg.mid} deleted by the user but not a tombstone")
                continue
            if srv["deleted"]:
                bad("lost", f"{msg.mid} {msg.body!r} is a tombstone but was never deleted")
            elif srv["body"] != msg.body:
                bad("stale", f"{msg.mid}: server has {srv['body']!r}, latest edit {msg.body!r}")
            if len(copies) > 1:
                bad("duplicated", f"{msg.body!r} is on the server {len(copies)} times")
        for cid, msgs in server.items():
            mine = [expected[m["id"]] for m in msgs if m["id"] in expected
                    and expected[m["id"]].device == 1]
            orders = [m.order for m in mine]
            if orders != sorted(orders):
                bad("reordered", f"{cid}: device 1 send order by seq is {orders}")
            for m in msgs:
                if m["author"] == self.me and m["id"] not in expected:
                    bad("phantom", f"{m['id']} {m['body']!r} by alice is unknown to the model")
        for cid in self.conversations:
            answer = self._client_cmd("backfill", cid=cid)
            if answer.get("gaps"):
                bad("cache", f"{cid}: {answer['gaps']} gap(s) left after backfill")
        deadline = time.monotonic() + cache_wait
        while True:
            rows, outbox, integrity = self.cache_rows()
            cache_problems = self._compare_cache(server, rows)
            if not cache_problems or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        for text in cache_problems:
            bad("cache", text)
        if any(o[3] == "sending" for o in outbox):
            bad("stuck", f"outbox rows left in 'sending' while idle: {outbox}")
        if integrity != "ok":
            bad("integrity", f"PRAGMA integrity_check: {integrity}")
        for kind, items in problems.items():
            self.stats.problems[kind] += len(items)
        return problems

    @staticmethod
    def _compare_cache(server: dict[str, list[dict]], rows: dict[str, list[tuple]]
                       ) -> list[str]:
        out = []
        for cid, msgs in server.items():
            want = [(m["id"], m["seq"], m["version"], m["body"], int(m["deleted"]))
                    for m in msgs]
            have = [(r[0], r[1], r[2], r[3], int(r[4])) for r in rows.get(cid, [])]
            if want != have:
                w, h = {x[0]: x for x in want}, {x[0]: x for x in have}
                dup = sorted(k for k, v in Counter(x[0] for x in have).items() if v > 1)
                out.append(f"{cid}: cache vs server: missing {sorted(set(w) - set(h))[:5]}, "
                           f"extra {sorted(set(h) - set(w))[:5]}, duplicated {dup[:5]}, "
                           f"differing {[(w[k], h[k]) for k in set(w) & set(h) if w[k] != h[k]][:3]}")
        return out


def saved_account() -> Account:
    """The account the soak logged in (for tools)."""
    return load_accounts()[-1]

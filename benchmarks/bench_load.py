"""Benchmark 5: the server under load, chat-tui-server against Synapse (target 5).

``pollers`` clients long-poll (timeout 25 s) while ``senders`` clients send chitchat
messages as fast as they are answered, for ``duration`` seconds. Each sender owns one
conversation whose members are itself and ``pollers / senders`` pollers, so every send fans
out to that many long-polls. The same load generator runs against two servers in the same
run, alternating round by round (:data:`ROUNDS` rounds each, chat-tui first):

- **chat-tui-server**: one ``chat-tui-server serve --rate-limit 0`` process (one uvicorn
  worker, SQLite) that already holds the imported chitchat conversations; ``PUT
  /v1/conversations/{cid}/messages/{mid}`` and ``GET /v1/sync?since=&timeout=25``.
- **Synapse** (``matrix-synapse`` from PyPI, one process, SQLite, loopback, rate limits
  raised: the test fixture ``tests/support/synapse.py``, with ``bcrypt_rounds: 4`` so the
  set-up's registrations are quick): users registered through the shared-secret admin API
  and logged in with their password, one private room per sender with its pollers invited
  and joined; ``PUT /_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}`` and
  ``GET /_matrix/client/v3/sync?since=&timeout=25000`` with an uploaded filter (timeline
  limit 50 like chat-tui's sync page, lazy-loaded members, no presence or account data,
  which chat-tui's sync does not have either).

Both servers are started before the first round and stay up to the end; users and
conversations are made once, before the rounds. Per round: sends/s, p50/p99 send latency
(the send's round trip), p50/p99 fan-out latency (from the message's server timestamp,
``created_at`` or ``origin_server_ts``, to a poller holding the parsed answer, same clock),
deliveries seen vs expected, peak RSS of the server, the CPU the server used (percent of
one core, and milliseconds per send) and the CPU of this client process, and errors
(non-2xx answers and transport errors of any client; target: none). All clients are
``httpx.AsyncClient`` tasks in this one process on the same 2 cores as the server, so the
figures are a floor for both servers alike.

Reported per server: the median sends/s of its rounds (and their range), latencies over
every sample of its rounds, totals of sends, deliveries and errors. The ratio is chat-tui's
median sends/s over Synapse's; the target is at least 2x with a fan-out p99 under 1 s, no
errors and every delivery seen.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import httpx

from benchmarks.common import add_users, login, ms, percentile, ratio, rss_kb, start_server

#: Rounds per server, alternating chat-tui and Synapse.
ROUNDS = 2
#: Long-poll seconds of every poll.
POLL_TIMEOUT = 25
#: Sends/s the target asks of chat-tui, as a multiple of Synapse's in the same run.
TARGET_RATIO = 2.0
#: The fan-out p99 the target allows (milliseconds).
TARGET_FANOUT_P99_MS = 1000.0
#: The password of every load user on both servers.
PASSWORD = "bench-pw"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# ---------------------------------------------------------------------- the two servers


@dataclass
class Target:
    """One server under load, as the load generator sees it: ``name``, ``url``, server
    ``pid``, bearer ``tokens`` per user, the sender's conversation (``rooms``) and the
    status a successful send answers (``send_ok``). Subclasses say how to sync and send."""

    name: str
    url: str
    pid: int
    send_ok: int
    tokens: dict[str, str] = field(default_factory=dict)
    rooms: dict[str, str] = field(default_factory=dict)

    def client(self, user: str) -> httpx.AsyncClient:
        """One connection of ``user`` (keep-alive), as every real client has."""
        return httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {self.tokens[user]}"},
            timeout=60, limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))

    def rss_mb(self) -> float:
        """The server's resident set now (MiB)."""
        rss, _ = rss_kb(self.pid)
        return round((rss or 0) / 1024, 1)

    async def first_sync(self, c: httpx.AsyncClient, user: str) -> str:
        """The initial sync of a poller; returns its cursor."""
        raise NotImplementedError

    async def poll(self, c: httpx.AsyncClient, user: str, cursor: str) -> httpx.Response:
        """One long-poll after ``cursor``."""
        raise NotImplementedError

    def deliveries(self, data: dict) -> tuple[str, list[float], int]:
        """``(next cursor, server timestamps (s) of the load messages in it, limited
        conversations)`` of a decoded poll answer."""
        raise NotImplementedError

    async def send(self, c: httpx.AsyncClient, sender: str, body: str) -> httpx.Response:
        """Send ``body`` into ``sender``'s conversation."""
        raise NotImplementedError


class ChatTuiTarget(Target):
    """``chat-tui-server`` (docs/api.md)."""

    def setup(self, plan: dict[str, list[str]]) -> None:
        """Log every user in and create one conversation per sender with its pollers."""
        for name in [*plan, *(p for members in plan.values() for p in members)]:
            self.tokens[name] = login(self.url, name, PASSWORD)["access_token"]
        for sender, members in plan.items():
            cid = str(uuid.uuid4())
            r = httpx.put(f"{self.url}/v1/conversations/{cid}", timeout=30,
                          headers={"Authorization": f"Bearer {self.tokens[sender]}"},
                          json={"title": f"load {sender}", "members": members,
                                "assistant": False})
            r.raise_for_status()
            self.rooms[sender] = cid

    async def first_sync(self, c, user):
        r = await c.get("/v1/sync")
        r.raise_for_status()
        return r.json()["cursor"]

    async def poll(self, c, user, cursor):
        return await c.get("/v1/sync", params={"since": cursor, "timeout": POLL_TIMEOUT})

    def deliveries(self, data):
        times, limited = [], 0
        for item in data["conversations"]:
            limited += bool(item["limited"])
            for m in item["messages"]:
                if m["author"].startswith("load-s"):
                    times.append(_ts(m["created_at"]))
        return data["cursor"], times, limited

    async def send(self, c, sender, body):
        return await c.put(f"/v1/conversations/{self.rooms[sender]}/messages/{uuid.uuid4()}",
                           json={"body": body})


#: The sync filter of every Synapse poller (see the module doc).
SYNAPSE_FILTER = {
    "room": {"timeline": {"limit": 50}, "state": {"lazy_load_members": True},
             "account_data": {"not_types": ["*"]}},
    "presence": {"not_types": ["*"]},
    "account_data": {"not_types": ["*"]},
}


class SynapseTarget(Target):
    """Synapse (the Matrix client-server API)."""

    filters: dict[str, str]

    async def setup(self, homeserver, plan: dict[str, list[str]]) -> None:
        """Register and log in every user, create one private room per sender with its
        pollers invited, join them, upload each poller's sync filter."""
        self.filters = {}
        users = [*plan, *(p for members in plan.values() for p in members)]
        gate = asyncio.Semaphore(8)

        async def register(name: str) -> None:
            async with gate:
                await asyncio.to_thread(homeserver.register, name, PASSWORD)
                async with httpx.AsyncClient(base_url=self.url, timeout=60) as c:
                    r = await c.post("/_matrix/client/v3/login", json={
                        "type": "m.login.password", "password": PASSWORD,
                        "identifier": {"type": "m.id.user", "user": name}})
                    r.raise_for_status()
                    self.tokens[name] = r.json()["access_token"]

        await asyncio.gather(*(register(n) for n in users))

        async def room(sender: str, members: list[str]) -> None:
            async with gate, self.client(sender) as c:
                r = await c.post("/_matrix/client/v3/createRoom", json={
                    "name": f"load {sender}", "preset": "private_chat",
                    "invite": [f"@{m}:localhost" for m in members]})
                r.raise_for_status()
                self.rooms[sender] = r.json()["room_id"]

        await asyncio.gather(*(room(s, m) for s, m in plan.items()))

        async def join(member: str, room_id: str) -> None:
            async with gate, self.client(member) as c:
                r = await c.post(f"/_matrix/client/v3/rooms/{quote(room_id)}/join", json={})
                r.raise_for_status()
                r = await c.post(f"/_matrix/client/v3/user/{quote(f'@{member}:localhost')}"
                                 "/filter", json=SYNAPSE_FILTER)
                r.raise_for_status()
                self.filters[member] = r.json()["filter_id"]

        await asyncio.gather(*(join(m, self.rooms[s]) for s, ms_ in plan.items() for m in ms_))

    async def first_sync(self, c, user):
        r = await c.get("/_matrix/client/v3/sync",
                        params={"filter": self.filters[user], "timeout": 0})
        r.raise_for_status()
        return r.json()["next_batch"]

    async def poll(self, c, user, cursor):
        return await c.get("/_matrix/client/v3/sync", params={
            "since": cursor, "timeout": POLL_TIMEOUT * 1000, "filter": self.filters[user]})

    def deliveries(self, data):
        times, limited = [], 0
        for joined in data.get("rooms", {}).get("join", {}).values():
            timeline = joined.get("timeline", {})
            limited += bool(timeline.get("limited"))
            for ev in timeline.get("events", ()):
                if ev.get("type") == "m.room.message" and ev["sender"].startswith("@load-s"):
                    times.append(ev["origin_server_ts"] / 1000)
        return data["next_batch"], times, limited

    async def send(self, c, sender, body):
        return await c.put(f"/_matrix/client/v3/rooms/{quote(self.rooms[sender])}/send/"
                           f"m.room.message/{uuid.uuid4().hex}",
                           json={"msgtype": "m.text", "body": body})


# ---------------------------------------------------------------------- one round


async def _round(target: Target, plan: dict[str, list[str]], bodies: list[str],
                 duration: float) -> dict:
    """One round of load against ``target``: every poller syncs, then long-polls while
    the senders send for ``duration`` seconds; returns the round's figures (raw samples
    under ``_send_lat`` and ``_fanout``)."""
    senders = list(plan)
    pollers = [p for members in plan.values() for p in members]
    errors: list[str] = []
    fanout: list[float] = []
    send_lat: list[float] = []
    state = {"limited": 0, "deliveries": 0}
    ready = 0
    all_ready = asyncio.Event()
    if not pollers:
        all_ready.set()

    async def poll(name: str) -> None:
        nonlocal ready
        async with target.client(name) as c:
            cursor = await target.first_sync(c, name)
            ready += 1
            if ready == len(pollers):
                all_ready.set()
            while True:
                try:
                    r = await target.poll(c, name, cursor)
                except httpx.HTTPError as exc:
                    errors.append(f"poll {type(exc).__name__}")
                    await asyncio.sleep(0.1)
                    continue
                now = time.time()
                if r.status_code != 200:
                    errors.append(f"poll {r.status_code}")
                    await asyncio.sleep(0.1)
                    continue
                cursor, times, limited = target.deliveries(r.json())
                state["limited"] += limited
                state["deliveries"] += len(times)
                fanout.extend(now - t for t in times)

    sent = 0

    async def send(name: str, deadline: float) -> None:
        nonlocal sent
        i = hash(name) % len(bodies)
        async with target.client(name) as c:
            while time.perf_counter() < deadline:
                body = bodies[i % len(bodies)]
                i += 1
                t0 = time.perf_counter()
                try:
                    r = await target.send(c, name, body)
                except httpx.HTTPError as exc:
                    errors.append(f"send {type(exc).__name__}")
                    continue
                send_lat.append(time.perf_counter() - t0)
                if r.status_code == target.send_ok:
                    sent += 1
                else:
                    errors.append(f"send {r.status_code}")

    poll_tasks = [asyncio.create_task(poll(p)) for p in pollers]
    await asyncio.wait_for(all_ready.wait(), 120)
    await asyncio.sleep(0.5)
    rss_peak = 0.0
    cpu0 = (cpu_seconds(target.pid), cpu_seconds(os.getpid()))
    t0 = time.perf_counter()
    deadline = t0 + duration
    send_tasks = [asyncio.create_task(send(s, deadline)) for s in senders]
    while not all(t.done() for t in send_tasks):
        rss_peak = max(rss_peak, target.rss_mb())
        await asyncio.sleep(0.25)
    elapsed = time.perf_counter() - t0
    cpu1 = (cpu_seconds(target.pid), cpu_seconds(os.getpid()))
    for t in send_tasks:
        if t.exception() is not None:
            errors.append(f"sender crashed: {t.exception()!r}")
    await asyncio.sleep(2.0)  # let the last fan-outs arrive
    for t in poll_tasks:
        t.cancel()
    for result in await asyncio.gather(*poll_tasks, return_exceptions=True):
        if isinstance(result, Exception) and not isinstance(result, asyncio.CancelledError):
            errors.append(f"poller crashed: {result!r}")
    per_conv = len(pollers) // len(senders)
    server_cpu = cpu1[0] - cpu0[0]
    return {
        "server": target.name, "pollers": len(pollers), "senders": len(senders),
        "duration_s": round(elapsed, 1), "sends": sent,
        "sends_per_s": round(sent / elapsed, 1),
        "send_p50_ms": ms(percentile(send_lat, 50)), "send_p99_ms": ms(percentile(send_lat, 99)),
        "fanout_p50_ms": ms(percentile(fanout, 50)), "fanout_p99_ms": ms(percentile(fanout, 99)),
        "deliveries": state["deliveries"], "deliveries_expected": sent * per_conv,
        "limited_answers": state["limited"], "server_rss_peak_mb": rss_peak,
        "server_cpu_pct": round(100 * server_cpu / elapsed),
        "server_cpu_ms_per_send": round(1000 * server_cpu / sent, 1) if sent else None,
        "clients_cpu_pct": round(100 * (cpu1[1] - cpu0[1]) / elapsed),
        "errors": len(errors), "error_kinds": sorted(set(errors))[:10],
        "_send_lat": send_lat, "_fanout": fanout,
    }


def summarize(rounds: list[dict]) -> dict:
    """One server's figures over its ``rounds`` (see the module doc): median and range of
    sends/s and CPU per send, percentiles over every latency sample, totals of counts;
    the raw samples are dropped from the rounds."""
    send_lat = [x for r in rounds for x in r.pop("_send_lat")]
    fanout = [x for r in rounds for x in r.pop("_fanout")]
    rates = [r["sends_per_s"] for r in rounds]
    cpu = [r["server_cpu_ms_per_send"] for r in rounds if r["server_cpu_ms_per_send"]]
    first = rounds[0]
    return {
        "server": first["server"], "pollers": first["pollers"], "senders": first["senders"],
        "rounds": len(rounds), "duration_s": round(sum(r["duration_s"] for r in rounds), 1),
        "sends": sum(r["sends"] for r in rounds),
        "sends_per_s": round(statistics.median(rates), 1),
        "sends_per_s_range": [min(rates), max(rates)],
        "send_p50_ms": ms(percentile(send_lat, 50)), "send_p99_ms": ms(percentile(send_lat, 99)),
        "fanout_p50_ms": ms(percentile(fanout, 50)), "fanout_p99_ms": ms(percentile(fanout, 99)),
        "deliveries": sum(r["deliveries"] for r in rounds),
        "deliveries_expected": sum(r["deliveries_expected"] for r in rounds),
        "limited_answers": sum(r["limited_answers"] for r in rounds),
        "server_rss_peak_mb": max(r["server_rss_peak_mb"] for r in rounds),
        "server_cpu_pct": round(statistics.median(r["server_cpu_pct"] for r in rounds)),
        "server_cpu_ms_per_send": round(statistics.median(cpu), 1) if cpu else None,
        "clients_cpu_pct": round(statistics.median(r["clients_cpu_pct"] for r in rounds)),
        "errors": sum(r["errors"] for r in rounds),
        "error_kinds": sorted({k for r in rounds for k in r["error_kinds"]})[:10],
    }


def describe(s: dict) -> str:
    """The one-line figures of a :func:`summarize` result."""
    low, high = s["sends_per_s_range"]
    spread = f" ({low:g}-{high:g})" if s["rounds"] > 1 else ""
    return (f"{s['sends_per_s']:g} sends/s{spread}; send p99 {s['send_p99_ms']} ms; "
            f"fan-out p99 {s['fanout_p99_ms']} ms; {s['server_cpu_ms_per_send']} ms "
            f"server CPU per send; RSS {s['server_rss_peak_mb']} MB; "
            f"{s['deliveries']}/{s['deliveries_expected']} deliveries; {s['errors']} errors")


# ---------------------------------------------------------------------- the benchmark


def _synapse_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("matrix-synapse")
    except Exception:  # not installed: reported as not measured
        return None


def run(ctx) -> dict:
    """Run the benchmark; ``ctx`` is :class:`benchmarks.run.Context`."""
    size = ctx.size
    senders = [f"load-s{i:02d}" for i in range(size.load_senders)]
    pollers = [f"load-p{i:03d}" for i in range(size.load_pollers)]
    plan = {s: [p for j, p in enumerate(pollers) if j % len(senders) == i]
            for i, s in enumerate(senders)}
    db = ctx.fresh_server_db("load")
    add_users(db, senders + pollers, PASSWORD)
    rounds: dict[str, list[dict]] = {"chat-tui-server": [], "Synapse": []}
    detail: list[dict] = []  # every round in the order it ran
    synapse_problem = None
    with start_server(db, ctx.workdir) as server:
        chat = ChatTuiTarget("chat-tui-server", server.url, server.pid, 201)
        chat.setup(plan)
        homeserver = None
        try:
            from tests.support.synapse import Synapse as Homeserver

            homeserver = Homeserver(ctx.workdir / "synapse", extra_config="bcrypt_rounds: 4\n")
        except Exception as exc:  # not installed, or did not start: the column says why
            synapse_problem = f"{type(exc).__name__}: {exc}"[:500]
        try:
            matrix = None
            if homeserver is not None:
                assert homeserver.process is not None
                matrix = SynapseTarget("Synapse", homeserver.url, homeserver.process.pid, 200)
                asyncio.run(matrix.setup(homeserver, plan))
            for _ in range(ROUNDS):
                for target in (chat, matrix):
                    if target is not None:
                        figures = asyncio.run(_round(target, plan, ctx.bodies,
                                                     size.load_duration))
                        rounds[target.name].append(figures)
                        detail.append(figures)
        finally:
            if homeserver is not None:
                homeserver.close()
    m = summarize(rounds["chat-tui-server"])
    if rounds["Synapse"]:
        syn = summarize(rounds["Synapse"])
        syn["version"] = _synapse_version()
        baseline = f"Synapse {syn['version']}: {describe(syn)}"
    else:
        syn = {"status": "not measured", "reason": synapse_problem}
        baseline = f"Synapse not measured: {synapse_problem}"
    m["synapse"] = syn
    m["rounds_detail"] = detail
    speedup = ratio(m["sends_per_s"], syn.get("sends_per_s"))
    m["ratio_sends_per_s"] = speedup
    met = (speedup is not None and speedup >= TARGET_RATIO
           and m["fanout_p99_ms"] is not None and m["fanout_p99_ms"] < TARGET_FANOUT_P99_MS
           and m["errors"] == 0 and m["deliveries"] == m["deliveries_expected"])
    return {
        "title": f"Server under load: {m['pollers']} long-polling clients, "
                 f"{m['senders']} senders, {ROUNDS} x {size.load_duration:.0f} s, "
                 "alternating with Synapse",
        "target": (f">= {TARGET_RATIO:g} x Synapse's sends/s, fan-out p99 < "
                   f"{TARGET_FANOUT_P99_MS / 1000:g} s, no errors, every delivery seen"),
        "value": describe(m),
        "baseline": baseline,
        "ratio": speedup,
        "met": bool(met),
        "metrics": m,
    }

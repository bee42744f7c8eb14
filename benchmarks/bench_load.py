"""Benchmark 5: the server under load, chat-tui-server against Synapse (target 5), and
chat-tui-server on PostgreSQL with one and two processes.

``pollers`` clients long-poll (timeout 25 s) while ``senders`` clients send chitchat
messages as fast as they are answered, for ``duration`` seconds. Each sender owns one
conversation whose members are itself and ``pollers / senders`` pollers, so every send fans
out to that many long-polls. One load generator (:func:`_round`) runs against every server
of the run, alternating round by round (:data:`ROUNDS` rounds each, in the order below):

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
- **PostgreSQL, 1 process** and **PostgreSQL, 2 processes**: chat-tui-server on a fresh,
  empty database each (the throwaway cluster of ``tests/support/postgres.py``, ``fsync=off``),
  served by one ``serve`` process, and by two separate ``serve`` processes with the clients
  split between them: sender ``i`` talks to process ``i % 2``, poller ``j`` (in the
  conversation of sender ``j % senders``) to process ``(j // senders) % 2``, so each
  conversation's pollers alternate between the processes and half of the deliveries cross
  from one process to the other (``LISTEN/NOTIFY``, docs/api.md P1). Skipped, with the
  reason in the results, when the PostgreSQL server binaries are missing.

Every server is started before the first round and stays up to the end; users and
conversations are made once, before the rounds. Per round: sends/s, p50/p99 send latency
(the send's round trip), p50/p99 fan-out latency (from the message's server timestamp,
``created_at`` or ``origin_server_ts``, to a poller holding the parsed answer, same clock),
deliveries seen vs expected and deliveries seen twice, with several processes the fan-out
p50 of deliveries that crossed processes and of those that did not, peak RSS of the
server processes (summed), and errors (non-2xx answers and transport errors of any
client; target: none). Where the cores went (:func:`_cpu_figures`, from /proc): the CPU
of the server processes (summed, and each), of the database server beside them (a
PostgreSQL cluster's postmaster and every backend and worker it started, exited ones
included), of this load generator, of the whole machine and of everything else on it,
each as a percent of one core and in milliseconds per send.

The load generator is this one process, on the same 2 cores as the servers: an asyncio
task per user, each with one keep-alive HTTP/1.1 connection, sending through the lean
client of :mod:`benchmarks.lean_http` (asyncio streams, one write per request, a minimal
answer parser, pydantic-core's JSON parser). It is the benchmark's tool, not a product,
and the same for every server, so the comparison is fair; it is lean because every CPU
millisecond it spends per send is taken from the servers it measures (``httpx.AsyncClient``
cost ~13 ms of CPU per send here, as much as half a server process).

Reported per server: the median sends/s of its rounds (and their range), latencies over
every sample of its rounds, totals of sends, deliveries and errors. Targets: chat-tui on
SQLite at least 2x Synapse's median sends/s with a fan-out p99 under 1 s, no errors and
every delivery seen; on PostgreSQL, two processes at least 1.6x one's sends/s, no errors,
every delivery seen exactly once, and the cross-process fan-out p50 within 2x of the
one-process fan-out p50 (the second row of the results table).

``python -m benchmarks.bench_load [--size smoke|full] [--servers sqlite synapse postgres]
[--duration S] [--out FILE]`` runs this benchmark alone (:func:`main`);
``python -m benchmarks --only server_load`` runs it with every server.
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
from benchmarks.lean_http import Connection, TransportError

#: Rounds per server, alternating the servers.
ROUNDS = 2
#: At the smoke size (a check that the benchmark runs, no figure to read), each sender
#: sends at most this many messages a round: fewer than one sync page (``SYNC_PAGE``,
#: 50), so that a poller held up by a loaded machine for the whole round still gets every
#: message in one answer instead of a ``limited`` one, whose skipped messages this load
#: generator, which does not backfill, would count as not delivered.
SMOKE_MAX_SENDS = 40
#: Long-poll seconds of every poll.
POLL_TIMEOUT = 25
#: Sends/s the target asks of chat-tui, as a multiple of Synapse's in the same run.
TARGET_RATIO = 2.0
#: The fan-out p99 the target allows (milliseconds).
TARGET_FANOUT_P99_MS = 1000.0
#: Sends/s the PostgreSQL target asks of two processes, as a multiple of one process's.
TARGET_PG_SPEEDUP = 1.6
#: The cross-process fan-out p50 the PostgreSQL target allows, as a multiple of the
#: one-process fan-out p50.
TARGET_PG_CROSS_P50 = 2.0
#: The password of every load user on every server.
PASSWORD = "bench-pw"
#: The servers this benchmark can run, in the order of its rounds.
SERVERS = ("sqlite", "synapse", "postgres")
#: The names of the servers in the results, and of the PostgreSQL ones by process count.
CHAT_TUI = "chat-tui-server"
SYNAPSE = "Synapse"
PG_NAMES = {1: "PostgreSQL, 1 process", 2: "PostgreSQL, 2 processes"}


def _stat(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name (field 3 first)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` (from /proc)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by process ``pid`` and its children, living and exited
    (user + system, from /proc): ``pid``'s own time, the time of its exited children it
    has waited for, and each living child's own and exited children's time. For a
    PostgreSQL cluster's postmaster: the whole cluster (backends, background workers)."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat(int(entry.name))
        except (OSError, ValueError):  # exited meanwhile
            continue
        if entry.name == str(pid) or fields[1] == str(pid):
            ticks += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """CPU seconds every core of this machine spent busy so far (``/proc/stat``: all but
    idle and iowait), summed over the cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# ---------------------------------------------------------------------- the servers


@dataclass
class Target:
    """One server under load, as the load generator sees it: ``name``, ``url``, the
    server's process ids ``pids`` (several for several processes), the status a successful
    send answers (``send_ok``), bearer ``tokens`` per user, the sender's conversation
    (``rooms``), with several processes the url of each user's process (``urls``; a user
    not in it talks to ``url``), and the process id of a database server running beside
    it (``database_pid``: a PostgreSQL cluster's postmaster; None when the database is
    inside the server's process). Subclasses say how to sync and send."""

    name: str
    url: str
    pids: list[int]
    send_ok: int
    tokens: dict[str, str] = field(default_factory=dict)
    rooms: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    database_pid: int | None = None

    def url_of(self, user: str) -> str:
        """The url of the server process ``user`` talks to."""
        return self.urls.get(user, self.url)

    def client(self, user: str) -> Connection:
        """One connection of ``user`` (keep-alive), as every real client has; the load
        generator's lean client (:mod:`benchmarks.lean_http`), the same for every server."""
        return Connection(self.url_of(user),
                          {"Authorization": f"Bearer {self.tokens[user]}"}, timeout=60)

    def rss_mb(self) -> float:
        """The resident set of the server's processes now, summed (MiB)."""
        return round(sum((rss_kb(pid)[0] or 0) for pid in self.pids) / 1024, 1)

    def cpu_seconds(self) -> list[float]:
        """CPU seconds each of the server's processes used so far."""
        return [cpu_seconds(pid) for pid in self.pids]

    def database_cpu_seconds(self) -> float | None:
        """CPU seconds the database server beside it (``database_pid`` and its children)
        used so far; None without one."""
        return None if self.database_pid is None else tree_cpu_seconds(self.database_pid)

    async def first_sync(self, c: Connection, user: str) -> str:
        """The initial sync of a poller; returns its cursor."""
        raise NotImplementedError

    async def poll(self, c: Connection, user: str, cursor: str):
        """One long-poll after ``cursor``."""
        raise NotImplementedError

    def deliveries(self, data: dict) -> tuple[str, list[tuple[str, str, float]], int]:
        """``(next cursor, the load messages in it as (message id, sender's user name,
        server timestamp in s), limited conversations)`` of a decoded poll answer."""
        raise NotImplementedError

    async def send(self, c: Connection, sender: str, body: str):
        """Send ``body`` into ``sender``'s conversation."""
        raise NotImplementedError


class ChatTuiTarget(Target):
    """``chat-tui-server`` (docs/api.md), on one process or several."""

    def setup(self, plan: dict[str, list[str]]) -> None:
        """Log every user in (at its own process) and create one conversation per sender
        with its pollers."""
        for name in [*plan, *(p for members in plan.values() for p in members)]:
            self.tokens[name] = login(self.url_of(name), name, PASSWORD)["access_token"]
        for sender, members in plan.items():
            cid = str(uuid.uuid4())
            r = httpx.put(f"{self.url_of(sender)}/v1/conversations/{cid}", timeout=30,
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
        found, limited = [], 0
        for item in data["conversations"]:
            limited += bool(item["limited"])
            for m in item["messages"]:
                if m["author"].startswith("load-s"):
                    found.append((m["id"], m["author"], _ts(m["created_at"])))
        return data["cursor"], found, limited

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
                async with Connection(self.url, timeout=60) as c:
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
        found, limited = [], 0
        for joined in data.get("rooms", {}).get("join", {}).values():
            timeline = joined.get("timeline", {})
            limited += bool(timeline.get("limited"))
            for ev in timeline.get("events", ()):
                if ev.get("type") == "m.room.message" and ev["sender"].startswith("@load-s"):
                    sender = ev["sender"][1:].split(":", 1)[0]
                    found.append((ev["event_id"], sender, ev["origin_server_ts"] / 1000))
        return data["next_batch"], found, limited

    async def send(self, c, sender, body):
        return await c.put(f"/_matrix/client/v3/rooms/{quote(self.rooms[sender])}/send/"
                           f"m.room.message/{uuid.uuid4().hex}",
                           json={"msgtype": "m.text", "body": body})


# ---------------------------------------------------------------------- one round


async def _round(target: Target, plan: dict[str, list[str]], bodies: list[str],
                 duration: float, max_sends: int | None = None) -> dict:
    """One round of load against ``target``: every poller syncs, then long-polls while
    the senders send for ``duration`` seconds (each at most ``max_sends`` messages, when
    given); returns the round's figures (raw samples under ``_send_lat``, ``_fanout``
    and, for deliveries between two processes, ``_fanout_cross``)."""
    senders = list(plan)
    pollers = [p for members in plan.values() for p in members]
    errors: list[str] = []
    fanout: list[float] = []
    fanout_cross: list[float] = []  # sender and poller on different processes
    seen: set[tuple[str, str]] = set()
    send_lat: list[float] = []
    state = {"limited": 0, "deliveries": 0, "duplicates": 0}
    ready = 0
    all_ready = asyncio.Event()
    if not pollers:
        all_ready.set()

    async def poll(name: str) -> None:
        nonlocal ready
        here = target.url_of(name)
        async with target.client(name) as c:
            cursor = await target.first_sync(c, name)
            ready += 1
            if ready == len(pollers):
                all_ready.set()
            while True:
                try:
                    r = await target.poll(c, name, cursor)
                except TransportError as exc:
                    errors.append(f"poll {str(exc).split(':', 1)[0]}")
                    await asyncio.sleep(0.1)
                    continue
                now = time.time()
                if r.status_code != 200:
                    errors.append(f"poll {r.status_code}")
                    await asyncio.sleep(0.1)
                    continue
                cursor, found, limited = target.deliveries(r.json())
                state["limited"] += limited
                for message_id, sender, ts in found:
                    if (name, message_id) in seen:
                        state["duplicates"] += 1
                        continue
                    seen.add((name, message_id))
                    state["deliveries"] += 1
                    (fanout if target.url_of(sender) == here else fanout_cross).append(now - ts)

    sent = 0

    async def send(name: str, deadline: float) -> None:
        nonlocal sent
        i = hash(name) % len(bodies)
        async with target.client(name) as c:
            sends = 0
            while time.perf_counter() < deadline and (max_sends is None or sends < max_sends):
                sends += 1
                body = bodies[i % len(bodies)]
                i += 1
                t0 = time.perf_counter()
                try:
                    r = await target.send(c, name, body)
                except TransportError as exc:
                    errors.append(f"send {str(exc).split(':', 1)[0]}")
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
    cpu0 = _cpu_now(target)
    t0 = time.perf_counter()
    deadline = t0 + duration
    send_tasks = [asyncio.create_task(send(s, deadline)) for s in senders]
    while not all(t.done() for t in send_tasks):
        rss_peak = max(rss_peak, target.rss_mb())
        await asyncio.sleep(0.25)
    elapsed = time.perf_counter() - t0
    cpu1 = _cpu_now(target)
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
    return {
        "server": target.name, "processes": len(target.pids), "pollers": len(pollers),
        "senders": len(senders), "duration_s": round(elapsed, 1), "sends": sent,
        "sends_per_s": round(sent / elapsed, 1),
        **_latencies(send_lat, fanout, fanout_cross),
        "deliveries": state["deliveries"], "deliveries_expected": sent * per_conv,
        "duplicate_deliveries": state["duplicates"],
        "limited_answers": state["limited"], "server_rss_peak_mb": rss_peak,
        **_cpu_figures(cpu0, cpu1, elapsed, sent),
        "errors": len(errors), "error_kinds": sorted(set(errors))[:10],
        "_send_lat": send_lat, "_fanout": fanout, "_fanout_cross": fanout_cross,
    }


def _cpu_now(target: Target) -> dict:
    """CPU seconds used so far by each server process, the database server beside it
    (None without one), this load generator, and the whole machine."""
    return {"servers": target.cpu_seconds(), "database": target.database_cpu_seconds(),
            "clients": cpu_seconds(os.getpid()), "machine": machine_cpu_seconds()}


def _cpu_figures(before: dict, after: dict, elapsed: float, sent: int) -> dict:
    """Where the cores went during a round of ``elapsed`` seconds and ``sent`` sends,
    from two :func:`_cpu_now` readings: for the servers (summed, and each process), the
    database server, the load generator (``clients``), the whole machine and what else
    ran on it (``other``: the machine's less the three), the CPU used as a percent of one
    core, and per send in milliseconds (``*_cpu_ms_per_send``; the database's None
    without one)."""
    each = [b - a for a, b in zip(before["servers"], after["servers"], strict=True)]
    spent = {"server": sum(each), "clients": after["clients"] - before["clients"],
             "machine": after["machine"] - before["machine"]}
    if before["database"] is not None:
        spent["database"] = after["database"] - before["database"]
    spent["other"] = max(0.0, spent["machine"] - spent["server"] - spent["clients"]
                         - spent.get("database", 0.0))
    figures: dict = {"server_cpu_pct_each": [round(100 * x / elapsed) for x in each]}
    for name in ("server", "database", "clients", "machine", "other"):
        used = spent.get(name)
        figures[f"{name}_cpu_pct"] = None if used is None else round(100 * used / elapsed)
        figures[f"{name}_cpu_ms_per_send"] = (
            round(1000 * used / sent, 1) if used is not None and sent else None)
    return figures


def _latencies(send_lat: list[float], fanout: list[float], cross: list[float]) -> dict:
    """Send and fan-out percentiles (ms) of raw samples (seconds); with deliveries between
    processes (``cross``) also their p50 and p99 and the p50 of the others."""
    every = fanout + cross
    figures = {
        "send_p50_ms": ms(percentile(send_lat, 50)), "send_p99_ms": ms(percentile(send_lat, 99)),
        "fanout_p50_ms": ms(percentile(every, 50)), "fanout_p99_ms": ms(percentile(every, 99)),
    }
    if cross:
        figures.update({
            "fanout_cross_p50_ms": ms(percentile(cross, 50)),
            "fanout_cross_p99_ms": ms(percentile(cross, 99)),
            "fanout_same_p50_ms": ms(percentile(fanout, 50)),
            "cross_deliveries": len(cross)})
    return figures


def summarize(rounds: list[dict]) -> dict:
    """One server's figures over its ``rounds`` (see the module doc): median and range of
    sends/s and CPU per send, percentiles over every latency sample, totals of counts;
    the raw samples are dropped from the rounds."""
    send_lat = [x for r in rounds for x in r.pop("_send_lat")]
    fanout = [x for r in rounds for x in r.pop("_fanout")]
    cross = [x for r in rounds for x in r.pop("_fanout_cross")]
    rates = [r["sends_per_s"] for r in rounds]
    first = rounds[0]
    return {
        "server": first["server"], "processes": first["processes"],
        "pollers": first["pollers"], "senders": first["senders"],
        "rounds": len(rounds), "duration_s": round(sum(r["duration_s"] for r in rounds), 1),
        "sends": sum(r["sends"] for r in rounds),
        "sends_per_s": round(statistics.median(rates), 1),
        "sends_per_s_range": [min(rates), max(rates)],
        **_latencies(send_lat, fanout, cross),
        "deliveries": sum(r["deliveries"] for r in rounds),
        "deliveries_expected": sum(r["deliveries_expected"] for r in rounds),
        "duplicate_deliveries": sum(r["duplicate_deliveries"] for r in rounds),
        "limited_answers": sum(r["limited_answers"] for r in rounds),
        "server_rss_peak_mb": max(r["server_rss_peak_mb"] for r in rounds),
        **_cpu_medians(rounds),
        "errors": sum(r["errors"] for r in rounds),
        "error_kinds": sorted({k for r in rounds for k in r["error_kinds"]})[:10],
    }


def _cpu_medians(rounds: list[dict]) -> dict:
    """The medians over ``rounds`` of each CPU figure of :func:`_cpu_figures` (None when
    no round has it), per server process for ``server_cpu_pct_each``."""
    figures: dict = {}
    for name in ("server", "database", "clients", "machine", "other"):
        for unit, digits in (("pct", 0), ("ms_per_send", 1)):
            key = f"{name}_cpu_{unit}"
            values = [r[key] for r in rounds if r.get(key) is not None]
            figures[key] = round(statistics.median(values), digits) if values else None
            if digits == 0 and values:
                figures[key] = int(figures[key])
    each = [r["server_cpu_pct_each"] for r in rounds]
    figures["server_cpu_pct_each"] = [round(statistics.median(x)) for x in zip(*each, strict=True)]
    return figures


def describe(s: dict) -> str:
    """The one-line figures of a :func:`summarize` result."""
    low, high = s["sends_per_s_range"]
    spread = f" ({low:g}-{high:g})" if s["rounds"] > 1 else ""
    twice = (f", {s['duplicate_deliveries']} twice" if s["duplicate_deliveries"] else "")
    return (f"{s['sends_per_s']:g} sends/s{spread}; send p99 {s['send_p99_ms']} ms; "
            f"fan-out p50 {s['fanout_p50_ms']} ms, p99 {s['fanout_p99_ms']} ms; "
            f"CPU per send: server {s['server_cpu_ms_per_send']} ms, "
            + (f"database {s['database_cpu_ms_per_send']} ms, "
               if s.get("database_cpu_ms_per_send") is not None else "")
            + f"load generator {s['clients_cpu_ms_per_send']} ms; "
            f"RSS {s['server_rss_peak_mb']} MB; "
            f"{s['deliveries']}/{s['deliveries_expected']} deliveries{twice}; "
            f"{s['errors']} errors")


def postgres_summary(one: dict, two: dict) -> dict:
    """The PostgreSQL comparison of the :func:`summarize` results of one process (``one``)
    and two (``two``): ``speedup`` (sends/s of two over one), ``cross_over_in_process_p50``
    (two's cross-process fan-out p50 over one's fan-out p50), ``exactly_once`` (both
    delivered every message to every poller once), ``errors`` (total) and whether the
    targets were ``met`` (:data:`TARGET_PG_SPEEDUP`, :data:`TARGET_PG_CROSS_P50`)."""
    speedup = ratio(two["sends_per_s"], one["sends_per_s"])
    cross, base = two.get("fanout_cross_p50_ms"), one.get("fanout_p50_ms")
    cross_ratio = round(cross / base, 2) if cross and base else None
    exactly_once = all(r["deliveries"] == r["deliveries_expected"] > 0
                       and r["duplicate_deliveries"] == 0 for r in (one, two))
    errors = one["errors"] + two["errors"]
    met = (speedup is not None and speedup >= TARGET_PG_SPEEDUP and errors == 0
           and exactly_once and cross_ratio is not None
           and cross_ratio <= TARGET_PG_CROSS_P50)
    return {"speedup": speedup, "cross_over_in_process_p50": cross_ratio,
            "exactly_once": exactly_once, "errors": errors, "met": bool(met)}


# ---------------------------------------------------------------------- the benchmark


def _synapse_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("matrix-synapse")
    except Exception:  # not installed: reported as not measured
        return None


def _plan(size) -> dict[str, list[str]]:
    """Sender name -> its pollers' names, for ``size``'s senders and pollers."""
    senders = [f"load-s{i:02d}" for i in range(size.load_senders)]
    pollers = [f"load-p{i:03d}" for i in range(size.load_pollers)]
    return {s: [p for j, p in enumerate(pollers) if j % len(senders) == i]
            for i, s in enumerate(senders)}


def _split(plan: dict[str, list[str]], urls: list[str]) -> dict[str, str]:
    """Each user's process url when ``plan``'s clients are split between the processes
    of ``urls`` (see the module doc)."""
    senders = list(plan)
    pollers = [p for members in plan.values() for p in members]
    split = {name: urls[i % len(urls)] for i, name in enumerate(senders)}
    split.update({name: urls[(j // len(senders)) % len(urls)]
                  for j, name in enumerate(sorted(pollers))})
    return split


def run(ctx, servers: tuple[str, ...] = SERVERS) -> dict:
    """Run the benchmark against ``servers`` (of :data:`SERVERS`; chat-tui on SQLite
    always runs); ``ctx`` is :class:`benchmarks.run.Context`. The result's ``more_rows``
    holds the PostgreSQL row of the results table."""
    from contextlib import ExitStack

    size = ctx.size
    plan = _plan(size)
    names = [*plan, *(p for members in plan.values() for p in members)]
    db = ctx.fresh_server_db("load")
    add_users(db, names, PASSWORD)
    rounds: dict[str, list[dict]] = {}
    detail: list[dict] = []  # every round in the order it ran
    synapse_problem = postgres_problem = None
    with ExitStack() as stack:
        server = stack.enter_context(start_server(db, ctx.workdir))
        targets: list[Target] = [ChatTuiTarget(CHAT_TUI, server.url, [server.pid], 201)]
        targets[0].setup(plan)
        if "synapse" in servers:
            try:
                from tests.support.synapse import Synapse as Homeserver

                homeserver = Homeserver(ctx.workdir / "synapse",
                                        extra_config="bcrypt_rounds: 4\n")
                stack.callback(homeserver.close)
                assert homeserver.process is not None
                matrix = SynapseTarget(SYNAPSE, homeserver.url, [homeserver.process.pid], 200)
                asyncio.run(matrix.setup(homeserver, plan))
                targets.append(matrix)
            except Exception as exc:  # not installed, or did not start: the column says why
                synapse_problem = f"{type(exc).__name__}: {exc}"[:500]
        if "postgres" in servers:
            try:
                targets += _postgres_targets(stack, ctx.workdir, plan, names)
            except Exception as exc:  # no PostgreSQL here: its row says why
                postgres_problem = f"{type(exc).__name__}: {exc}"[:500]
        for _ in range(ROUNDS):
            for target in targets:
                figures = asyncio.run(_round(target, plan, ctx.bodies, size.load_duration,
                                             SMOKE_MAX_SENDS if size.name == "smoke" else None))
                rounds.setdefault(target.name, []).append(figures)
                detail.append(figures)
    m = summarize(rounds[CHAT_TUI])
    if SYNAPSE in rounds:
        syn = summarize(rounds[SYNAPSE])
        syn["version"] = _synapse_version()
        baseline = f"Synapse {syn['version']}: {describe(syn)}"
    else:
        reason = synapse_problem or "not asked for (--servers)"
        syn = {"status": "not measured", "reason": reason}
        baseline = f"Synapse not measured: {reason}"
    m["synapse"] = syn
    m["rounds_detail"] = detail
    speedup = ratio(m["sends_per_s"], syn.get("sends_per_s"))
    m["ratio_sends_per_s"] = speedup
    met = (speedup is not None and speedup >= TARGET_RATIO
           and m["fanout_p99_ms"] is not None and m["fanout_p99_ms"] < TARGET_FANOUT_P99_MS
           and m["errors"] == 0 and m["deliveries"] == m["deliveries_expected"]
           and m["duplicate_deliveries"] == 0)
    more_rows = []
    if "postgres" in servers:
        m["postgres"], row = _postgres_result(rounds, postgres_problem, size)
        more_rows.append(row)
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
        "more_rows": more_rows,
    }


def _postgres_targets(stack, workdir: Path, plan: dict[str, list[str]],
                      names: list[str]) -> list[Target]:
    """Start a throwaway PostgreSQL cluster, and for 1 and 2 processes a fresh database
    with the load users served by that many ``serve`` processes; log in and make the
    conversations. Everything is stopped by ``stack``.

    Raises:
        tests.support.postgres.PostgresUnavailable: no PostgreSQL server binaries.
    """
    from tests.support.postgres import Cluster

    cluster = Cluster()
    stack.callback(cluster.stop)
    # The cluster's postmaster: its process tree is the database's CPU in the figures.
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    targets: list[Target] = []
    for count, name in PG_NAMES.items():
        url = cluster.create_database()
        add_users(url, names, PASSWORD)
        started = []
        for n in range(count):
            place = workdir / f"pg{count}-process{n}"
            place.mkdir(parents=True, exist_ok=True)
            started.append(stack.enter_context(start_server(url, place)))
        target = ChatTuiTarget(name, started[0].url, [s.pid for s in started], 201,
                               database_pid=postmaster)
        if count > 1:
            target.urls = _split(plan, [s.url for s in started])
        target.setup(plan)
        targets.append(target)
    return targets


def _postgres_result(rounds: dict[str, list[dict]], problem: str | None,
                     size) -> tuple[dict, dict]:
    """The ``postgres`` metrics and the results-table row of the PostgreSQL rounds (or
    of their absence: ``problem``)."""
    title = (f"Server under load on PostgreSQL: 2 processes vs 1 ({size.load_pollers} "
             f"long-polling clients, {size.load_senders} senders, {ROUNDS} x "
             f"{size.load_duration:.0f} s each, alternating)")
    target = (f">= {TARGET_PG_SPEEDUP:g} x one process's sends/s, cross-process fan-out "
              f"p50 <= {TARGET_PG_CROSS_P50:g} x one process's fan-out p50, no errors, "
              "every delivery seen exactly once")
    if not all(name in rounds for name in PG_NAMES.values()):
        reason = problem or "did not run"
        return ({"status": "not measured", "reason": reason},
                {"number": 5, "title": title, "status": "not measured", "reason": reason,
                 "value": None, "baseline": None, "ratio": None, "target": target,
                 "met": None})
    one, two = (summarize(rounds[name]) for name in PG_NAMES.values())
    pg = {"runs": {"1": one, "2": two}, **postgres_summary(one, two)}
    value = (f"2 processes: {describe(two)}; cross-process fan-out p50 "
             f"{two.get('fanout_cross_p50_ms')} ms (same process "
             f"{two.get('fanout_same_p50_ms')} ms, "
             f"{pg['cross_over_in_process_p50']} x one process's)")
    row = {"number": 5, "title": title, "status": "measured", "value": value,
           "baseline": f"1 process: {describe(one)}", "ratio": pg["speedup"],
           "target": target, "met": pg["met"]}
    return pg, row


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.bench_load [--size smoke|full] [--servers sqlite synapse
    postgres] [--duration S] [--out FILE] [--data-dir DIR]``: this benchmark alone
    (chat-tui on SQLite always runs; the default is every server), printed as JSON (and
    written to ``--out``). Exit status 0 when every server that ran had no errors and
    delivered every message exactly once, else 1."""
    import argparse
    import json
    import shutil
    import tempfile
    from dataclasses import asdict

    from benchmarks.common import DATA_DIR
    from benchmarks.run import SIZES, Context, Size

    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_load")
    parser.add_argument("--size", choices=sorted(SIZES), default="smoke")
    parser.add_argument("--servers", nargs="+", choices=SERVERS, default=list(SERVERS))
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    if args.duration:
        size = Size(**{**asdict(size), "load_duration": args.duration})
    workdir = Path(tempfile.mkdtemp(prefix="chat-tui-bench-load-"))
    try:
        result = run(Context(size, workdir, args.data_dir), tuple(args.servers))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["size"] = size.name
    text = json.dumps(result, indent=2, sort_keys=True)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    m = result["metrics"]
    ran = [m, *(s for s in (m["synapse"],) if "sends" in s),
           *m.get("postgres", {}).get("runs", {}).values()]
    clean = all(r["errors"] == 0 and r["deliveries"] == r["deliveries_expected"]
                and r["duplicate_deliveries"] == 0 for r in ran)
    return 0 if clean else 1


if __name__ == "__main__":
    raise SystemExit(main())

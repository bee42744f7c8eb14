"""Benchmark 5 on PostgreSQL with one and two ``serve`` processes.

``python -m benchmarks.bench_load_pg [--size smoke|full]`` (:func:`run_postgres`): the load
of benchmark 5 (long-polling clients, senders, each send fanning out to the pollers of its
conversation; :mod:`benchmarks.bench_load` runs it against chat-tui-server on SQLite and
Synapse) on a fresh PostgreSQL database served by one, then by two ``serve`` processes, with
the clients split between the processes. Reported: sends/s, p50/p99 send and fan-out
latency, deliveries seen vs expected and duplicates, server RSS and CPU, errors; the
speed-up of two processes over one (target: at least 1.6x on 2 cores), the fan-out p50 of
deliveries that cross between processes against one process's (target: within 2x), and
whether every message reached every poller exactly once.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx

from benchmarks.common import login, ms, percentile, start_server


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def _load(url: str | dict[str, str], tokens: dict[str, str], plan: dict[str, list[str]],
                bodies: list[str], duration: float, server) -> dict:
    """One load run. ``url``: the server's, or each client's (name -> url: several
    processes); ``server``: the server process, or a list of them."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    servers = server if isinstance(server, list) else [server]
    url_of = (lambda name: url) if isinstance(url, str) else url.__getitem__

    def client(name: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=url_of(name),
                                 headers={"Authorization": f"Bearer {tokens[name]}"},
                                 timeout=60, limits=limits)

    senders = list(plan)
    pollers = [p for members in plan.values() for p in members]
    errors: list[str] = []
    fanout: list[float] = []
    fanout_cross: list[float] = []  # sender and poller on different processes
    seen: set[tuple[str, str]] = set()
    send_lat: list[float] = []
    state = {"measuring": False, "limited": 0, "deliveries": 0, "duplicates": 0}
    ready = 0
    all_ready = asyncio.Event()
    if not pollers:
        all_ready.set()

    async def poll(name: str) -> None:
        nonlocal ready
        async with client(name) as c:
            r = await c.get("/v1/sync")
            cursor = r.json()["cursor"]
            ready += 1
            if ready == len(pollers):
                all_ready.set()
            while True:
                try:
                    r = await c.get("/v1/sync", params={"since": cursor, "timeout": 25})
                except httpx.HTTPError as exc:
                    errors.append(f"poll {type(exc).__name__}")
                    await asyncio.sleep(0.1)
                    continue
                now = time.time()
                if r.status_code != 200:
                    errors.append(f"poll {r.status_code}")
                    await asyncio.sleep(0.1)
                    continue
                data = r.json()
                cursor = data["cursor"]
                for item in data["conversations"]:
                    state["limited"] += bool(item["limited"])
                    for m in item["messages"]:
                        if m["author"].startswith("load-s"):
                            if (name, m["id"]) in seen:
                                state["duplicates"] += 1
                                continue
                            seen.add((name, m["id"]))
                            state["deliveries"] += 1
                            same = url_of(m["author"]) == url_of(name)
                            (fanout if same else fanout_cross).append(
                                now - _ts(m["created_at"]))

    sent = 0

    async def send(name: str, cid: str, deadline: float) -> None:
        nonlocal sent
        i = hash(name) % len(bodies)
        async with client(name) as c:
            while time.perf_counter() < deadline:
                body = bodies[i % len(bodies)]
                i += 1
                t0 = time.perf_counter()
                try:
                    r = await c.put(f"/v1/conversations/{cid}/messages/{uuid.uuid4()}",
                                    json={"body": body})
                except httpx.HTTPError as exc:
                    errors.append(f"send {type(exc).__name__}")
                    continue
                send_lat.append(time.perf_counter() - t0)
                if r.status_code == 201:
                    sent += 1
                else:
                    errors.append(f"send {r.status_code}")

    cids: dict[str, str] = {}
    for s, members in plan.items():
        cid = str(uuid.uuid4())
        async with client(s) as c:
            r = await c.put(f"/v1/conversations/{cid}",
                            json={"title": f"load {s}", "members": members, "assistant": False})
            r.raise_for_status()
        cids[s] = cid
    poll_tasks = [asyncio.create_task(poll(p)) for p in pollers]
    await asyncio.wait_for(all_ready.wait(), 120)
    await asyncio.sleep(0.5)
    rss_peak = 0.0

    def server_cpu() -> float:
        return sum(cpu_seconds(s.pid) for s in servers)

    cpu0 = (server_cpu(), cpu_seconds(os.getpid()))
    t0 = time.perf_counter()
    deadline = t0 + duration
    send_tasks = [asyncio.create_task(send(s, cids[s], deadline)) for s in senders]
    while not all(t.done() for t in send_tasks):
        rss_peak = max(rss_peak, sum(s.memory()["rss_mb"] or 0 for s in servers))
        await asyncio.sleep(0.25)
    elapsed = time.perf_counter() - t0
    cpu = [round(100 * (b - a) / elapsed) for a, b in
           zip(cpu0, (server_cpu(), cpu_seconds(os.getpid())), strict=True)]
    for t in send_tasks:
        if t.exception() is not None:
            errors.append(f"sender crashed: {t.exception()!r}")
    await asyncio.sleep(2.0)  # let the last fan-outs arrive
    for t in poll_tasks:
        t.cancel()
    await asyncio.gather(*poll_tasks, return_exceptions=True)
    per_conv = len(pollers) // len(senders)
    cross = {}
    if fanout_cross:
        cross = {"fanout_cross_p50_ms": ms(percentile(fanout_cross, 50)),
                 "fanout_cross_p99_ms": ms(percentile(fanout_cross, 99)),
                 "fanout_same_p50_ms": ms(percentile(fanout, 50)),
                 "cross_deliveries": len(fanout_cross)}
    fanout = fanout + fanout_cross
    return {**cross,
        "pollers": len(pollers), "senders": len(senders), "duration_s": round(elapsed, 1),
        "sends": sent, "sends_per_s": round(sent / elapsed, 1),
        "send_p50_ms": ms(percentile(send_lat, 50)), "send_p99_ms": ms(percentile(send_lat, 99)),
        "fanout_p50_ms": ms(percentile(fanout, 50)), "fanout_p99_ms": ms(percentile(fanout, 99)),
        "deliveries": state["deliveries"], "deliveries_expected": sent * per_conv,
        "duplicate_deliveries": state["duplicates"],
        "limited_answers": state["limited"],
        "server_rss_peak_mb": round(rss_peak, 1),
        "server_memory_end": [s.memory() for s in servers] if len(servers) > 1
        else servers[0].memory(),
        "server_cpu_pct": cpu[0], "clients_cpu_pct": cpu[1],
        "errors": len(errors), "error_kinds": sorted(set(errors))[:10],
    }



def _pg_users(url: str, names: list[str]) -> None:
    """Create the load users (password ``bench-pw``) in the PostgreSQL database ``url``."""
    from chat_tui.server.data import ServerDB
    from chat_tui.server.db import open_and_migrate

    db = open_and_migrate(url)
    users = ServerDB(db).users
    for name in names:
        users.set_password(name, "bench-pw")
    db.close()


def run_postgres_processes(processes: int, pg_url: str, pollers: int, senders: int,
                           duration: float, bodies: list[str], workdir: Path) -> dict:
    """Benchmark 5's load on the fresh, empty PostgreSQL database ``pg_url`` served by
    ``processes`` separate ``chat-tui-server serve`` processes. Sender ``i`` talks to
    process ``i % processes``, poller ``j`` (in the conversation of sender ``j % senders``)
    to process ``(j // senders) % processes``, so each conversation's pollers alternate
    between the processes and with two processes half of the deliveries cross from one
    process to the other (reported apart: ``fanout_cross_p50_ms`` against
    ``fanout_same_p50_ms``)."""
    sender_names = [f"load-s{i:02d}" for i in range(senders)]
    poller_names = [f"load-p{i:03d}" for i in range(pollers)]
    plan = {s: [p for j, p in enumerate(poller_names) if j % senders == i]
            for i, s in enumerate(sender_names)}
    names = sender_names + poller_names
    _pg_users(pg_url, names)
    started = []
    try:
        for n in range(processes):
            place = workdir / f"pg-process{n}"
            place.mkdir(parents=True, exist_ok=True)
            started.append(start_server(pg_url, place))  # type: ignore[arg-type]
        urls = {name: started[i % processes].url for i, name in enumerate(sender_names)}
        urls.update({name: started[(j // senders) % processes].url
                     for j, name in enumerate(poller_names)})
        tokens = {name: login(urls[name], name)["access_token"] for name in names}
        metrics = asyncio.run(_load(urls, tokens, plan, bodies, duration, started))
    finally:
        for server in started:
            server.stop()
    metrics["processes"] = processes
    return metrics


def run_postgres(pollers: int, senders: int, duration: float, bodies: list[str],
                 workdir: Path, process_counts: tuple[int, ...] = (1, 2),
                 make_database=None) -> dict:
    """Benchmark 5 on PostgreSQL with each of ``process_counts`` processes (a fresh
    database each, from ``make_database()``; default: a throwaway cluster of
    ``tests/support/postgres.py``). Returns ``{"runs": {count: metrics}, "speedup":
    sends/s of the most processes over one, "cross_over_in_process_p50": cross-process
    fan-out p50 over the one-process p50, "exactly_once": every run delivered every
    message to every poller once, "errors": total}``."""
    cluster = None
    if make_database is None:
        from tests.support.postgres import Cluster

        cluster = Cluster()
        make_database = cluster.create_database
    try:
        runs = {}
        for count in process_counts:
            runs[count] = run_postgres_processes(count, make_database(), pollers, senders,
                                                 duration, bodies, workdir)
    finally:
        if cluster is not None:
            cluster.stop()
    one, most = runs[min(runs)], runs[max(runs)]
    speedup = (most["sends_per_s"] / one["sends_per_s"]) if one["sends_per_s"] else None
    cross = most.get("fanout_cross_p50_ms")
    base = one.get("fanout_p50_ms")
    return {
        "runs": runs,
        "speedup": None if speedup is None else round(speedup, 2),
        "cross_over_in_process_p50": (round(cross / base, 2) if cross and base else None),
        "exactly_once": all(r["deliveries"] == r["deliveries_expected"]
                            and r["duplicate_deliveries"] == 0 for r in runs.values()),
        "errors": sum(r["errors"] for r in runs.values()),
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.bench_load_pg [--size smoke|full] [--processes 1 2]
    [--duration S] [--out FILE]``: benchmark 5 on PostgreSQL (see :func:`run_postgres`);
    prints the result as JSON (and writes it to ``--out``). Exit status 0 when the run
    had no errors and delivered every message exactly once, else 1."""
    import argparse
    import json
    import tempfile

    from benchmarks.data import bodies as chitchat_bodies
    from benchmarks.run import SIZES

    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_load_pg")
    parser.add_argument("--size", choices=sorted(SIZES), default="smoke")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    with tempfile.TemporaryDirectory(prefix="chat-tui-bench-pg-") as tmp:
        result = run_postgres(size.load_pollers, size.load_senders,
                              args.duration or size.load_duration, chitchat_bodies(2000),
                              Path(tmp), tuple(args.processes))
    result["size"] = args.size
    text = json.dumps(result, indent=2, sort_keys=True)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0 if result["errors"] == 0 and result["exactly_once"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

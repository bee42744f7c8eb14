"""Benchmark 5: the server under load (target 5).

``pollers`` clients long-poll ``/v1/sync`` (timeout 25 s) while ``senders`` clients PUT
chitchat messages as fast as they are answered, for ``duration`` seconds, against one
``chat-tui-server serve --rate-limit 0`` process (one uvicorn worker) that already holds the
imported chitchat conversations. Each sender owns one conversation whose members are itself
and ``pollers / senders`` pollers, so every send fans out to that many long-polls.

Reported: sends/s, p50/p99 send latency (PUT round trip), p50/p99 fan-out latency (from the
message's server ``created_at`` to a poller holding the parsed answer, same clock), the
deliveries seen vs expected, server RSS (peak), the CPU used by the server and by the client
process (percent of one core: 100 means that process was the bottleneck), and errors (non-2xx answers and transport
errors of any client; target: none). All clients run as asyncio tasks in this one process
(``httpx.AsyncClient`` each) on the same 2 cores as the server, so the figures are a floor.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx

from benchmarks.common import add_users, login, ms, percentile, start_server


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by process ``pid`` (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def _load(url: str, tokens: dict[str, str], plan: dict[str, list[str]],
                bodies: list[str], duration: float, server) -> dict:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    def client(name: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {tokens[name]}"},
                                 timeout=60, limits=limits)

    senders = list(plan)
    pollers = [p for members in plan.values() for p in members]
    errors: list[str] = []
    fanout: list[float] = []
    send_lat: list[float] = []
    state = {"measuring": False, "limited": 0, "deliveries": 0}
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
                            state["deliveries"] += 1
                            fanout.append(now - _ts(m["created_at"]))

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
    cpu0 = (cpu_seconds(server.pid), cpu_seconds(os.getpid()))
    t0 = time.perf_counter()
    deadline = t0 + duration
    send_tasks = [asyncio.create_task(send(s, cids[s], deadline)) for s in senders]
    while not all(t.done() for t in send_tasks):
        rss_peak = max(rss_peak, server.memory()["rss_mb"] or 0)
        await asyncio.sleep(0.25)
    elapsed = time.perf_counter() - t0
    cpu = [round(100 * (b - a) / elapsed) for a, b in
           zip(cpu0, (cpu_seconds(server.pid), cpu_seconds(os.getpid())), strict=True)]
    for t in send_tasks:
        if t.exception() is not None:
            errors.append(f"sender crashed: {t.exception()!r}")
    await asyncio.sleep(2.0)  # let the last fan-outs arrive
    for t in poll_tasks:
        t.cancel()
    await asyncio.gather(*poll_tasks, return_exceptions=True)
    per_conv = len(pollers) // len(senders)
    return {
        "pollers": len(pollers), "senders": len(senders), "duration_s": round(elapsed, 1),
        "sends": sent, "sends_per_s": round(sent / elapsed, 1),
        "send_p50_ms": ms(percentile(send_lat, 50)), "send_p99_ms": ms(percentile(send_lat, 99)),
        "fanout_p50_ms": ms(percentile(fanout, 50)), "fanout_p99_ms": ms(percentile(fanout, 99)),
        "deliveries": state["deliveries"], "deliveries_expected": sent * per_conv,
        "limited_answers": state["limited"],
        "server_rss_peak_mb": round(rss_peak, 1), "server_memory_end": server.memory(),
        "server_cpu_pct": cpu[0], "clients_cpu_pct": cpu[1],
        "errors": len(errors), "error_kinds": sorted(set(errors))[:10],
    }


def run(ctx) -> dict:
    """Run the benchmark; ``ctx`` is :class:`benchmarks.run.Context`."""
    size = ctx.size
    senders = [f"load-s{i:02d}" for i in range(size.load_senders)]
    pollers = [f"load-p{i:03d}" for i in range(size.load_pollers)]
    plan = {s: [p for j, p in enumerate(pollers) if j % len(senders) == i]
            for i, s in enumerate(senders)}
    db = ctx.fresh_server_db("load")
    add_users(db, senders + pollers)
    with start_server(db, ctx.workdir) as server:
        tokens = {name: login(server.url, name)["access_token"] for name in senders + pollers}
        m = asyncio.run(_load(server.url, tokens, plan, ctx.bodies, size.load_duration, server))
    return {
        "title": f"Server under load: {m['pollers']} long-polling clients, "
                 f"{m['senders']} senders, {m['duration_s']:.0f} s",
        "target": "errors: none",
        "value": (f"{m['sends_per_s']:.0f} sends/s; send p99 {m['send_p99_ms']} ms; "
                  f"fan-out p99 {m['fanout_p99_ms']} ms; server RSS {m['server_rss_peak_mb']} MB; "
                  f"{m['errors']} errors"),
        "baseline": None,
        "ratio": None,
        "met": m["errors"] == 0,
        "metrics": m,
    }

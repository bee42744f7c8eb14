"""Benchmark 4: sync latency, sender -> the other client's cache (target 4).

Two engines (two users of one conversation, each with its own cache file, both
long-polling ``/v1/sync`` over loopback) run on one event loop. For each message the clock
starts just before ``Engine.send`` on the sender (the local echo is committed) and stops when
the receiver's engine publishes ``MessagesChanged`` for that id, which happens after the
sync response holding it was committed to the receiver's cache. One message at a time.

Baseline, same server, same run: two bare ``httpx.AsyncClient`` s, one PUTs the message,
the other long-polls ``/v1/sync`` and parses the JSON; the clock stops when the long-poll
answer holding the id arrives (no cache, no outbox: the network and server floor).
Target: p50 <= 50 ms and p99 <= 200 ms; the ratio is engine p50 / baseline p50.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx

from benchmarks.common import (
    add_users,
    latency_stats,
    login,
    median,
    percentile,
    ratio,
    start_server,
    sync_latencies,
)

WARMUP = 5


async def _engines(url: str, tokens: dict[str, str], cid: str, bodies: list[str],
                   workdir) -> list[float]:
    from chat_tui.config import Settings
    from chat_tui.store import Cache
    from chat_tui.sync.engine import Engine

    settings = Settings(retention_days=0)
    sender = Engine(Cache(workdir / "latency-a.db", "lat-a"), url, tokens["lat-a"], settings)
    receiver = Engine(Cache(workdir / "latency-b.db", "lat-b"), url, tokens["lat-b"], settings)
    return await sync_latencies(sender, receiver, cid, bodies, warmup=WARMUP, settle=0.2)


async def _raw(url: str, tokens: dict[str, str], cid: str, bodies: list[str]) -> list[float]:
    a = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {tokens['lat-a']}"},
                          timeout=40)
    b = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {tokens['lat-b']}"},
                          timeout=40)
    waiting: dict[str, asyncio.Future] = {}
    cursor = (await b.get("/v1/sync")).json()["cursor"]

    async def poll() -> None:
        nonlocal cursor
        while True:
            r = await b.get("/v1/sync", params={"since": cursor, "timeout": 25})
            now = time.perf_counter()
            data = r.json()
            cursor = data["cursor"]
            for item in data["conversations"]:
                for m in item["messages"]:
                    fut = waiting.get(m["id"])
                    if fut is not None and not fut.done():
                        fut.set_result(now)

    poller = asyncio.create_task(poll())
    loop = asyncio.get_running_loop()
    out = []
    try:
        await asyncio.sleep(0.2)
        for i, body in enumerate(bodies):
            mid = str(uuid.uuid4())
            fut = waiting[mid] = loop.create_future()
            t0 = time.perf_counter()
            r = await a.put(f"/v1/conversations/{cid}/messages/{mid}", json={"body": body})
            r.raise_for_status()
            t1 = await asyncio.wait_for(fut, 30)
            del waiting[mid]
            if i >= WARMUP:
                out.append(t1 - t0)
        return out
    finally:
        poller.cancel()
        await asyncio.gather(poller, return_exceptions=True)
        await a.aclose()
        await b.aclose()


def run(ctx) -> dict:
    """Run the benchmark; ``ctx`` is :class:`benchmarks.run.Context`."""
    n = ctx.size.latency_messages
    bodies = ctx.bodies[:n + WARMUP]
    db = ctx.fresh_server_db("latency")
    add_users(db, ["lat-a", "lat-b"])
    with start_server(db, ctx.workdir) as server:
        tokens = {name: login(server.url, name)["access_token"] for name in ("lat-a", "lat-b")}
        cid = str(uuid.uuid4())
        httpx.put(f"{server.url}/v1/conversations/{cid}",
                  headers={"Authorization": f"Bearer {tokens['lat-a']}"},
                  json={"title": "latency", "members": ["lat-b"], "assistant": False},
                  timeout=30).raise_for_status()
        raw = asyncio.run(_raw(server.url, tokens, cid, bodies))
        eng = asyncio.run(_engines(server.url, tokens, cid, bodies, ctx.workdir))
    e, b = latency_stats(eng), latency_stats(raw)
    met = e["p50_ms"] <= 50 and e["p99_ms"] <= 200
    return {
        "title": "Sync latency: sender -> other client's cache (both long-polling)",
        "target": "p50 <= 50 ms, p99 <= 200 ms",
        "value": f"p50 {e['p50_ms']} ms, p99 {e['p99_ms']} ms ({n} messages)",
        "baseline": f"p50 {b['p50_ms']} ms, p99 {b['p99_ms']} ms (bare httpx PUT + long-poll)",
        "ratio": ratio(median(eng), median(raw)),
        "met": bool(met),
        "metrics": {"messages": n, "engine": e, "raw_httpx": b,
                    "p99_ratio": ratio(percentile(eng, 99), percentile(raw, 99))},
    }

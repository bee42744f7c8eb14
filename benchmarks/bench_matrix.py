"""Benchmarks 3 and 4 against a real Synapse (docs/sync.md, Matrix): the outbox drain and
the sync latency of Matrix accounts, each with its same-run baseline of bare httpx against
the same homeserver.

- ``outbox_drain_matrix`` (3): a fresh Matrix account cache gets one queued room create and
  ``n`` queued sends; ``Engine.start()`` and the clock runs until the outbox is empty. The
  baseline PUTs the same bodies with fresh transaction ids one after another into one room
  from one ``httpx.Client`` (keep-alive). Target as benchmark 3: >= 0.8 x the loop's
  throughput. The engine's send is a ``PUT`` and a ``GET`` of the stored event (its
  ``origin_server_ts`` is the message's ``seq``), the loop's a ``PUT`` alone.
- ``sync_latency_matrix`` (4): two Matrix accounts' engines in one room; for each message
  the clock starts before ``Engine.send`` and stops when the receiver publishes
  ``MessagesChanged`` for it. Baseline: a bare client PUTs, another long-polls ``/sync``;
  the clock stops when the answer holding the event arrives. Target as benchmark 4:
  p50 <= 50 ms, p99 <= 200 ms.

Synapse is ``matrix-synapse`` from the test extra (``tests.support.synapse``); without it
the benchmarks say ``not measured``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import time
import uuid
from pathlib import Path

import httpx

from benchmarks.common import (
    latency_stats,
    median,
    ratio,
    sync_latencies,
    timed_drain,
)

API = "/_matrix/client/v3"
WARMUP = 5


def _unavailable() -> dict | None:
    if importlib.util.find_spec("synapse") is None:
        return {"status": "not measured", "reason": "matrix-synapse is not installed",
                "met": None}
    return None


def _synapse(ctx):
    from tests.support.synapse import Synapse

    if "synapse" not in ctx.shared:
        ctx.shared["synapse"] = Synapse(ctx.workdir / "synapse")
    return ctx.shared["synapse"]


def _user(synapse, name: str) -> tuple[str, str, str]:
    """Register ``name`` (with a unique suffix); ``(user id, token, device id)``."""
    localpart = f"{name}{uuid.uuid4().hex[:6]}"
    user_id = synapse.register(localpart, "bench-pw")
    answer = httpx.post(f"{synapse.url}{API}/login", timeout=30, json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": localpart},
        "password": "bench-pw"}).raise_for_status().json()
    return user_id, answer["access_token"], answer["device_id"]


def _engine(url: str, user_id: str, token: str, cache: Path):
    from chat_tui.config import Settings
    from chat_tui.store import Cache
    from chat_tui.sync.engine import Engine

    return Engine(Cache(cache, user_id), url, token, Settings(retention_days=0),
                  kind="matrix", user_id=user_id)


def _texts(url: str, token: str, room: str) -> list[str]:
    headers = {"authorization": f"Bearer {token}"}
    events: list[dict] = []
    params: dict = {"dir": "b", "limit": 1000}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        while True:
            page = http.get(f"{API}/rooms/{room}/messages", params=params).raise_for_status(
            ).json()
            events.extend(page["chunk"])
            if not page["chunk"] or "end" not in page:
                break
            params["from"] = page["end"]
    return [e["content"]["body"] for e in events[::-1]
            if e["type"] == "m.room.message" and "body" in e.get("content", {})]


# ---------------------------------------------------------------------- 3: drain

async def _drain(url: str, user_id: str, token: str, bodies: list[str],
                 cache: Path) -> tuple[float, str]:
    engine = _engine(url, user_id, token, cache)
    elapsed, room = await timed_drain(engine, "drain benchmark", [], bodies, timeout=900,
                                      answer=engine.store.remote_room)
    return elapsed, str(room)


def _loop(url: str, token: str, bodies: list[str]) -> tuple[float, str]:
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        room = client.post(f"{API}/createRoom", json={
            "preset": "private_chat", "name": "loop baseline"}).raise_for_status().json()[
            "room_id"]
        t0 = time.perf_counter()
        for body in bodies:
            client.put(f"{API}/rooms/{room}/send/m.room.message/{uuid.uuid4().hex}",
                       json={"msgtype": "m.text", "body": body}).raise_for_status()
        return time.perf_counter() - t0, room


def run_outbox_drain_matrix(ctx) -> dict:
    """Benchmark 3 on Synapse; ``ctx`` is :class:`benchmarks.run.Context`."""
    missing = _unavailable()
    if missing:
        return missing
    n, runs = ctx.size.drain_messages, ctx.size.runs
    bodies = ctx.bodies[:n]
    synapse = _synapse(ctx)
    user_id, token, _ = _user(synapse, "drain")
    drain_s, loop_s, ok = [], [], True
    for i in range(runs):
        elapsed, room = asyncio.run(_drain(synapse.url, user_id, token, bodies,
                                           ctx.workdir / f"matrix-drain-{i}.db"))
        drain_s.append(elapsed)
        ok = ok and _texts(synapse.url, token, room) == bodies
        elapsed, room = _loop(synapse.url, token, bodies)
        loop_s.append(elapsed)
        ok = ok and _texts(synapse.url, token, room) == bodies
    drain_tput = [n / s for s in drain_s]
    loop_tput = [n / s for s in loop_s]
    r = ratio(median(drain_tput), median(loop_tput))
    return {
        "title": "Outbox drain of queued messages vs sequential httpx PUTs, on Synapse",
        "target": ">= 0.8 x the loop's throughput",
        "value": f"{median(drain_tput):.0f} msg/s ({n} messages, median of {runs})",
        "baseline": f"{median(loop_tput):.0f} msg/s (bare httpx PUT loop, same Synapse)",
        "ratio": r,
        "met": bool(r is not None and r >= 0.8 and ok),
        "metrics": {
            "messages": n, "runs": runs, "delivered_in_order": ok,
            "drain_s": [round(s, 3) for s in drain_s], "loop_s": [round(s, 3) for s in loop_s],
        },
    }


# ---------------------------------------------------------------------- 4: latency

async def _engines(url: str, a: tuple, b: tuple, room: str, bodies: list[str],
                   workdir: Path) -> list[float]:
    sender = _engine(url, a[0], a[1], workdir / "matrix-latency-a.db")
    receiver = _engine(url, b[0], b[1], workdir / "matrix-latency-b.db")
    return await sync_latencies(sender, receiver, room, bodies, warmup=WARMUP, settle=0.5)


async def _raw(url: str, a_token: str, b_token: str, room: str,
               bodies: list[str]) -> list[float]:
    a = httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {a_token}"},
                          timeout=60)
    b = httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {b_token}"},
                          timeout=60)
    waiting: dict[str, asyncio.Future] = {}
    flt = json.dumps({"room": {"timeline": {"limit": 50}}})
    cursor = (await b.get(f"{API}/sync", params={"filter": flt})).json()["next_batch"]

    async def poll() -> None:
        nonlocal cursor
        while True:
            r = await b.get(f"{API}/sync", params={"since": cursor, "timeout": 25000,
                                                   "filter": flt})
            now = time.perf_counter()
            data = r.json()
            cursor = data["next_batch"]
            for item in (data.get("rooms", {}).get("join") or {}).values():
                for e in item.get("timeline", {}).get("events", []):
                    fut = waiting.get(e.get("content", {}).get("txn", ""))
                    if fut is not None and not fut.done():
                        fut.set_result(now)

    poller = asyncio.create_task(poll())
    loop = asyncio.get_running_loop()
    out = []
    try:
        await asyncio.sleep(0.5)
        for i, body in enumerate(bodies):
            txn = uuid.uuid4().hex
            fut = waiting[txn] = loop.create_future()
            t0 = time.perf_counter()
            r = await a.put(f"{API}/rooms/{room}/send/m.room.message/{txn}",
                            json={"msgtype": "m.text", "body": body, "txn": txn})
            r.raise_for_status()
            t1 = await asyncio.wait_for(fut, 30)
            del waiting[txn]
            if i >= WARMUP:
                out.append(t1 - t0)
        return out
    finally:
        poller.cancel()
        await asyncio.gather(poller, return_exceptions=True)
        await a.aclose()
        await b.aclose()


def run_sync_latency_matrix(ctx) -> dict:
    """Benchmark 4 on Synapse; ``ctx`` is :class:`benchmarks.run.Context`."""
    missing = _unavailable()
    if missing:
        return missing
    n = ctx.size.latency_messages
    bodies = ctx.bodies[:n + WARMUP]
    synapse = _synapse(ctx)
    a, b = _user(synapse, "lata"), _user(synapse, "latb")
    room = httpx.post(f"{synapse.url}{API}/createRoom", timeout=30,
                      headers={"authorization": f"Bearer {a[1]}"},
                      json={"preset": "private_chat", "name": "latency",
                            "invite": [b[0]]}).raise_for_status().json()["room_id"]
    httpx.post(f"{synapse.url}{API}/join/{room}", timeout=30, json={},
               headers={"authorization": f"Bearer {b[1]}"}).raise_for_status()
    raw = asyncio.run(_raw(synapse.url, a[1], b[1], room, bodies))
    eng = asyncio.run(_engines(synapse.url, a, b, room, bodies, ctx.workdir))
    e, s = latency_stats(eng), latency_stats(raw)
    return {
        "title": "Sync latency on Synapse: sender -> other client's cache (both long-polling)",
        "target": "p50 <= 50 ms, p99 <= 200 ms",
        "value": f"p50 {e['p50_ms']} ms, p99 {e['p99_ms']} ms ({n} messages)",
        "baseline": f"p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms (bare httpx PUT + /sync "
                    "long-poll, same Synapse)",
        "ratio": ratio(median(eng), median(raw)),
        "met": bool(e["p50_ms"] <= 50 and e["p99_ms"] <= 200),
        "metrics": {"messages": n, "engine": e, "raw_httpx": s},
    }


def close(ctx) -> None:
    """Stop the Synapse the benchmarks of this module started."""
    synapse = ctx.shared.pop("synapse", None)
    if synapse is not None:
        synapse.close()

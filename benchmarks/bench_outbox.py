"""Benchmark 3: outbox drain vs a plain loop of sequential httpx PUTs (target 3).

Each run: a fresh account cache gets one queued conversation create and ``n`` queued sends
(chitchat bodies), then ``Engine.start()`` and the clock runs until the outbox is empty
(health probe, initial sync, the create and every send included: what a user waits for after
coming back online). The baseline, in the same run and against the same server, PUTs the
same bodies with new ids one after another from one ``httpx.Client`` (keep-alive): the
floor for ordered delivery with one request in flight. Runs alternate drain and loop.
Target: drain throughput >= 0.8 x the loop's. Each round also drains into a fresh cache
encrypted with a new raw key (sync rule D6), before or after the plain drain in turns: the
encryption pair (goal: at most 5% less throughput ratio).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx

from benchmarks.common import (
    add_users,
    encryption_pair,
    login,
    median,
    ratio,
    start_server,
    timed_drain,
)


async def _drain(url: str, token: str, me: str, peer: str, bodies: list[str],
                 cache: Path, key: bytes | None = None) -> tuple[float, str]:
    """One drain into a fresh cache at ``cache`` (encrypted with the raw ``key`` when
    given); returns the seconds and the conversation id."""
    from chat_tui.config import Settings
    from chat_tui.store import Cache
    from chat_tui.sync.engine import Engine

    store = Cache(cache, me, key=key)
    engine = Engine(store, url, token, Settings(retention_days=0))
    return await timed_drain(engine, "drain benchmark", [peer], bodies, timeout=600)


def _loop(url: str, token: str, peer: str, bodies: list[str]) -> tuple[float, str]:
    cid = str(uuid.uuid4())
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        client.put(f"/v1/conversations/{cid}", json={
            "title": "loop baseline", "members": [peer], "assistant": False,
        }).raise_for_status()
        t0 = time.perf_counter()
        for body in bodies:
            client.put(f"/v1/conversations/{cid}/messages/{uuid.uuid4()}",
                       json={"body": body}).raise_for_status()
        return time.perf_counter() - t0, cid


def _check_delivered(url: str, token: str, cid: str, bodies: list[str]) -> bool:
    """All ``bodies`` are on the server, in order, once each (GET messages, newest page)."""
    headers = {"Authorization": f"Bearer {token}"}
    r = httpx.get(f"{url}/v1/conversations/{cid}/messages", params={"limit": 500},
                  headers=headers, timeout=30)
    r.raise_for_status()
    page = r.json()
    tail = [m["body"] for m in page["messages"]]
    return page["total_count"] == len(bodies) and tail == bodies[-len(tail):]


def run(ctx) -> dict:
    """Run the benchmark; ``ctx`` is :class:`benchmarks.run.Context`. Returns the result
    dict (see ``benchmarks/run.py``)."""
    from chat_tui.store.cipher import new_key

    n, runs = ctx.size.drain_messages, ctx.size.runs
    bodies = ctx.bodies[:n]
    db = ctx.fresh_server_db("outbox")
    me, peer = "drain-a", "drain-b"
    add_users(db, [me, peer])
    drain_s, enc_s, loop_s, ok = [], [], [], True
    with start_server(db, ctx.workdir) as server:
        token = login(server.url, me)["access_token"]
        for i in range(runs):
            # Plain and encrypted drains swap places every round.
            for encrypted in ((False, True) if i % 2 == 0 else (True, False)):
                elapsed, cid = asyncio.run(_drain(
                    server.url, token, me, peer, bodies,
                    ctx.workdir / f"drain-{'enc-' if encrypted else ''}{i}.db",
                    new_key() if encrypted else None))
                (enc_s if encrypted else drain_s).append(elapsed)
                ok = ok and _check_delivered(server.url, token, cid, bodies)
            elapsed, cid = _loop(server.url, token, peer, bodies)
            loop_s.append(elapsed)
            ok = ok and _check_delivered(server.url, token, cid, bodies)
    drain_tput = [n / s for s in drain_s]
    enc_tput = [n / s for s in enc_s]
    loop_tput = [n / s for s in loop_s]
    r = ratio(median(drain_tput), median(loop_tput))
    r_enc = ratio(median(enc_tput), median(loop_tput))
    return {
        "encryption": encryption_pair(
            {"value": f"{median(drain_tput):.0f} msg/s", "ratio": r},
            {"value": f"{median(enc_tput):.0f} msg/s", "ratio": r_enc},
            higher_is_better=True,
            note="a fresh cache per drain, encrypted with a new raw key; the plain and "
                 "the encrypted drain (in turns first) and the PUT loop alternate"),
        "title": "Outbox drain of queued messages vs sequential httpx PUTs",
        "target": ">= 0.8 x the loop's throughput",
        "value": f"{median(drain_tput):.0f} msg/s ({n} messages, median of {runs})",
        "baseline": f"{median(loop_tput):.0f} msg/s",
        "ratio": r,
        "met": bool(r is not None and r >= 0.8 and ok),
        "metrics": {
            "messages": n, "runs": runs, "delivered_in_order": ok,
            "drain_s": [round(s, 3) for s in drain_s], "loop_s": [round(s, 3) for s in loop_s],
            "encrypted_drain_s": [round(s, 3) for s in enc_s],
            "encrypted_drain_msgs_per_s": round(median(enc_tput), 1),
            "drain_msgs_per_s": round(median(drain_tput), 1),
            "loop_msgs_per_s": round(median(loop_tput), 1),
        },
    }

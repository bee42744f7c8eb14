"""The client under test for the soak: the real headless engine in its own process.

Run as ``python tests/soak/driver.py --user NAME``. It builds the engine exactly as
``chat-tui sync`` does (:func:`chat_tui.cli.base.engine_of`: the saved account,
``load_settings()`` with ``CHAT_TUI_*`` environment overrides), starts it, then reads one
JSON command per line on stdin and answers one JSON line on stdout, so the harness can act
like a user and can ``kill -9`` the process at any moment. Logs go to the chat-tui log
file, never stdout.

Commands (``{"op": ...}``) and answers:

- ``send {cid, body}`` -> ``{"id": message_id}`` (``Engine.send``: committed before the answer)
- ``edit {mid, body}``, ``delete {mid}``, ``retry {mid}`` -> ``{}``
- ``discard {mid}`` -> ``{"text": str}``
- ``create {title, members}`` -> ``{"id": conversation_id}``
- ``offline`` / ``online`` -> ``{}`` (``Engine.set_work_offline``)
- ``status`` -> ``{"counts": {state: n}, "connectivity": str, "problems": [...]}``
- ``backfill {cid}`` -> ``{"added": n}`` (every gap and older page until nothing is left)
- ``stop`` -> ``{}`` then a graceful ``Engine.stop()`` and exit 0.

A command that raises answers ``{"error": "<Type>: <message>"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys


async def serve(user: str | None) -> int:
    from chat_tui.cli.base import engine_of
    from chat_tui.config.logfile import setup_logging

    setup_logging()
    args = argparse.Namespace(user=user, server=None)
    engine = engine_of(args)
    await engine.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def answer(obj: dict) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    answer({"ready": True})
    try:
        while True:
            line = await reader.readline()
            if not line:
                return 0
            cmd = json.loads(line)
            op = cmd["op"]
            try:
                if op == "stop":
                    answer({})
                    return 0
                answer(await run(engine, op, cmd))
            except Exception as exc:  # answered, the engine keeps running
                answer({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        await engine.stop()


async def run(engine, op: str, cmd: dict) -> dict:
    if op == "send":
        return {"id": engine.send(cmd["cid"], cmd["body"])}
    if op == "edit":
        engine.edit(cmd["mid"], cmd["body"])
        return {}
    if op == "delete":
        engine.delete(cmd["mid"])
        return {}
    if op == "retry":
        engine.retry(cmd["mid"])
        return {}
    if op == "discard":
        return {"text": engine.discard(cmd["mid"])}
    if op == "create":
        return {"id": engine.create_conversation(cmd["title"], cmd.get("members", []))}
    if op in ("offline", "online"):
        engine.set_work_offline(op == "offline")
        return {}
    if op == "status":
        store = engine.store
        return {"counts": store.outbox_counts(), "connectivity": engine.connectivity,
                "problems": [{"message_id": p.message_id, "state": p.state,
                              "reason": p.reason, "kind": p.kind} for p in store.problems()]}
    if op == "backfill":
        added = 0
        while True:
            n = await engine.backfill(cmd["cid"])
            if not n and not engine.store.gaps(cmd["cid"]):
                return {"added": added}
            added += n
            if not n:  # a gap that yields nothing: let the caller see it
                return {"added": added, "gaps": len(engine.store.gaps(cmd["cid"]))}
    raise ValueError(f"unknown op {op!r}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--user")
    ns = parser.parse_args()
    return asyncio.run(serve(ns.user))


if __name__ == "__main__":
    raise SystemExit(main())

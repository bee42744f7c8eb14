#!/usr/bin/env python3
"""Regenerate ``screenshots/*.svg`` from real app states on real chitchat conversations.

Steps (everything real: server process, HTTP, SQLite cache, engine; nothing mocked):

1. ``benchmarks/chitchat_to_jsonl.py --reader demo --limit 8`` turns the first chitchat
   dataset conversations into import lines (install the dataset with
   ``pip install -e '.[bench]'``), ``chat-tui-server add-user demo`` and
   ``chat-tui-server import`` load them into a fresh server database;
2. ``chat-tui-server serve --port 0`` runs it on loopback; ``demo`` logs in (isolated
   ``XDG_*`` dirs in a temporary folder, token in a 0600 file);
3. the app runs headless at 120x36 and each state is saved with ``export_screenshot``:

   - ``online.svg``: a chitchat conversation, demo's reply sent;
   - ``offline.svg``: the server stopped, two replies queued, banner and outbox indicator;
   - ``failed.svg``: a fault proxy (``tests/support/fault_proxy.py``) answers one send
     with a 422, so it fails and the next one is blocked behind it;
   - ``search.svg``: full-text search over the cache;
   - ``assistant.svg``: an assistant conversation whose reply holds a code block: the
     server runs with ``--assistant openai`` against the OpenAI-compatible test model
     server (``tests/support/model_server.py``, a real HTTP process streaming server-sent
     events), told to answer with :data:`ANSWER`; demo creates the conversation with
     ctrl+n and asks :data:`QUESTION`.

Usage, from the repository root: ``python -m tools.make_screenshots [--out screenshots]``.
Takes about 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZE = (120, 36)
USER, PASSWORD = "demo", "demo-password"
QUESTION = "How do I read a file line by line in Python?"
ANSWER = (
    "Open it with a `with` block and loop over the file object: it yields one line at a "
    "time, so even a large file never sits in memory at once.\n\n"
    "```python\nfrom pathlib import Path\n\n"
    "with Path(\"notes.txt\").open(encoding=\"utf-8\") as handle:\n"
    "    for number, line in enumerate(handle, start=1):\n"
    "        print(number, line.rstrip(\"\\n\"))\n```\n\n"
    "`line` keeps its newline; `rstrip` removes it."
)


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


class Server:
    """``chat-tui-server serve`` on a loopback port over ``db``; stop()/start() keep the port."""

    def __init__(self, db: Path, extra: tuple[str, ...] = (), env: dict | None = None):
        self.db, self.port, self.proc, self.url = db, 0, None, ""
        self.extra, self.env = extra, env

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chat_tui.server", "serve", "--host", "127.0.0.1",
             "--port", str(self.port), "--db", str(self.db), "--rate-limit", "0",
             *self.extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env)
        for line in self.proc.stdout:
            match = re.match(r"chat-tui-server listening on (http://\S+):(\d+)", line)
            if match:
                self.url, self.port = f"{match.group(1)}:{match.group(2)}", int(match.group(2))
                return
        raise RuntimeError("the server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


async def wait_for(pilot, predicate: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("state not reached")
        await pilot.pause(0.05)


def shoot(account, out: Path, scenario: Callable[..., Awaitable[None]]) -> None:
    """Run the app for ``account`` until ``scenario(pilot, app)`` returns, save the SVG."""
    from chat_tui.config import Settings
    from chat_tui.launch import configured_factory
    from chat_tui.store import Cache
    from chat_tui.ui.app import ChatApp
    from chat_tui.ui.clock import Clock

    # retention_days=0: the chitchat messages date from 2018, older than the default
    # 90-day retention (sync rule R1) would keep in the cache.
    settings = Settings(backoff_base=0.05, backoff_cap=0.3, poll_timeout=2, probe_timeout=1.0,
                        request_timeout=3.0, retention_days=0)
    store = Cache(account.db_path, account.username, user_id=account.user_id,
                  server_url=account.server_url)
    store.open()
    app = ChatApp(store, configured_factory(account, settings), clock=Clock())
    app.animation_level = "none"

    async def pilot_main(pilot) -> None:
        await wait_for(pilot, lambda: app.engine_ready and app.connectivity == "online"
                       and app.sync_phase[0] == "idle" and app.current_id is not None)
        await scenario(pilot, app)
        await pilot.pause(0.3)
        out.write_text(app.export_screenshot(title="chat-tui"), encoding="utf-8")
        app.exit()

    app.run(headless=True, size=SIZE, auto_pilot=pilot_main)
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="chat-tui-shots-"))
    for name in ("DATA", "CONFIG", "CACHE", "STATE"):
        os.environ[f"XDG_{name}_HOME"] = str(tmp / name.lower())
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"

    db, lines = tmp / "server.db", tmp / "chitchat.jsonl"
    run([sys.executable, str(ROOT / "benchmarks" / "chitchat_to_jsonl.py"), "--reader", USER,
         "--limit", "8", "--out", str(lines)])
    run([sys.executable, "-m", "chat_tui.server", "add-user", USER, "--password-stdin",
         "--db", str(db)], input=PASSWORD + "\n")
    run([sys.executable, "-m", "chat_tui.server", "import", str(lines), "--db", str(db)])

    from chat_tui.api import ApiClient
    from chat_tui.config import Account, save_account, store_token
    from tests.support.fault_proxy import FaultProxy

    server = Server(db)
    server.start()
    try:
        async def login():
            async with ApiClient(server.url) as api:
                return await api.login(USER, PASSWORD, "screenshots")

        result = asyncio.run(login())

        def account_for(url: str) -> Account:
            account = Account(url, result.username, result.user_id, result.device_id)
            store_token(account, result.access_token)
            save_account(account)
            return account

        direct = account_for(server.url)

        async def online(pilot, app):
            await pilot.press(*"Ha, same here. Talk soon!", "enter")
            await wait_for(pilot, lambda: app.query_one("#messages").views[-1].state == "sent")

        shoot(direct, args.out / "online.svg", online)

        async def offline(pilot, app):
            server.stop()
            await wait_for(pilot, lambda: app.connectivity == "offline")
            await pilot.press(*"Sorry, my train just went into a tunnel.", "enter")
            await pilot.press(*"I will send this when we are out.", "enter")
            await wait_for(pilot, lambda: [v.state for v in app.query_one("#messages").views[-2:]]
                           == ["queued", "queued"])

        shoot(direct, args.out / "offline.svg", offline)
        server.start()

        with FaultProxy(server.url) as proxy:
            proxied = account_for(proxy.url)

            async def failed(pilot, app):
                proxy.respond(422, method="PUT", path_contains="/messages/", count=1)
                await pilot.press(*"This one the server refuses.", "enter")
                await wait_for(pilot, lambda: app.query_one("#messages").views[-1].state
                               == "failed")
                await pilot.press(*"And this one waits behind it.", "enter")
                await wait_for(pilot, lambda: app.query_one("#messages").views[-1].state
                               == "blocked")

            shoot(proxied, args.out / "failed.svg", failed)

        async def search(pilot, app):
            await pilot.press("ctrl+f", *"great")
            await wait_for(pilot, lambda: getattr(app.screen, "hits", None))

        shoot(direct, args.out / "search.svg", search)
        server.stop()
        shoot_assistant(db, account_for, args.out / "assistant.svg")
    finally:
        server.stop()
    return 0


def shoot_assistant(db: Path, account_for, out: Path) -> None:
    """``assistant.svg``: the server with an OpenAI-compatible model (the test model
    server, answering :data:`ANSWER`), an assistant conversation created in the app."""
    from tests.support.model_server import ModelServer

    with ModelServer(["demo-model"], delay=0.02) as model:
        model.control(reply=ANSWER)
        env = {**os.environ, "OPENAI_API_KEY": "not-needed"}
        server = Server(db, ("--assistant", "openai", "--assistant-base-url", model.url,
                             "--assistant-model", "demo-model"), env)
        server.start()
        try:
            account = account_for(server.url)

            async def assistant(pilot, app):
                await pilot.press("ctrl+n")
                await wait_for(pilot, lambda: app.screen.__class__.__name__
                               == "NewConversationScreen")
                await pilot.press(*"Reading files in Python", "enter")
                await wait_for(pilot, lambda: app.current_conversation is not None
                               and app.current_conversation.assistant)
                await pilot.press(*QUESTION, "enter")
                await wait_for(pilot, lambda: len(app.query_one("#messages").views) == 2
                               and not app.query_one("#messages").views[-1].streaming
                               and app.query_one("#messages").views[-1].body == ANSWER,
                               timeout=30)
                app.clear_notifications()

            shoot(account, out, assistant)
        finally:
            server.stop()


if __name__ == "__main__":
    raise SystemExit(main())

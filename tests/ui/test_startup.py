"""Startup: the first frame comes from the cache and imports only what it needs (textual and
the store; httpx, FastAPI, uvicorn, openai and the Markdown stack are lazy), and the app's
own options are parsed without building any subcommand's parser. The imports are checked
in a fresh interpreter, since the test process has imported everything."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

LAZY = ("httpx", "fastapi", "uvicorn", "openai", "chat_tui.api", "chat_tui.sync",
        "chat_tui.server", "chat_tui.ui.screens.settings", "chat_tui.ui.screens.model_picker",
        "chat_tui.ui.screens.code_picker", "chat_tui.ui.widgets.offer",
        "chat_tui.ui.code_blocks", "chat_tui.store.export_md", "chat_tui.config.config_edit",
        "chat_tui.config.providers")

PROBE = r"""
import json, sys
from pathlib import Path
from chat_tui.store import Cache
from chat_tui.launch import launch  # noqa: F401 - the entry point's own imports
from chat_tui.ui.app import ChatApp

at_import = sorted(m for m in sys.modules if m.startswith(("rich.markdown", "markdown_it")))
store = Cache(Path(sys.argv[1]), "alice")
store.open()
seen = {}

async def first_frame(pilot):
    seen["modules"] = sorted(sys.modules)
    seen["skeleton"] = pilot.app.query_one("#skeleton").display
    pilot.app.exit()

ChatApp(store, None).run(headless=True, size=(120, 36), auto_pilot=first_frame)
print(json.dumps({"at_import": at_import, **seen}))
"""


def test_first_frame_imports_no_network_stack(tmp_path):
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "cache.db")],
                         capture_output=True, text=True, timeout=60, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["at_import"] == []
    loaded = set(result["modules"])
    assert "textual.app" in loaded and "peewee" in loaded
    assert [m for m in LAZY if m in loaded] == []
    assert result["skeleton"] is True  # empty cache: the skeleton, never a blank screen


# After the first frame: Markdown is enabled, but its stack is imported only by an assistant
# reply on screen; optional imports the app never uses (Peewee's PostgreSQL drivers, httpx's
# command-line client) are never loaded by the app.
AFTER_FIRST_FRAME = r"""
import json, sys
from pathlib import Path
from chat_tui.launch import _skip_unused_optional_imports
_skip_unused_optional_imports()  # what launch() does before importing the store
from chat_tui.store import Cache
from chat_tui.ui.app import ChatApp
from chat_tui.ui.widgets.message_item import markdown_enabled

store = Cache(Path(sys.argv[1]), "alice")
store.open()
seen = {}

async def after_first_frame(pilot):
    for _ in range(50):
        await pilot.pause(0.02)
        if markdown_enabled():
            break
    await pilot.pause()
    seen["markdown_enabled"] = markdown_enabled()
    seen["modules"] = sorted(sys.modules)
    seen["psycopg2"] = repr(sys.modules.get("psycopg2"))
    pilot.app.exit()

ChatApp(store, None).run(headless=True, size=(120, 36), auto_pilot=after_first_frame)
store.close()
import chat_tui.sync.engine  # noqa: F401 - what the engine factory imports (httpx)
seen["with_engine"] = sorted(sys.modules)
print(json.dumps(seen))
"""


def _cache_with(path, author: str):
    """A cache of one conversation whose 3 messages are by ``author``, open last; its path."""
    from datetime import UTC, datetime

    from chat_tui.api.wire import Conversation, Message, SyncConversation, SyncResponse
    from chat_tui.store import Cache

    store = Cache(path, "alice")
    store.open()
    now = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    members = tuple(sorted({"alice", author}))
    conv = Conversation("c-1", "Chat", "alice", members, author == "assistant", now, now,
                        None, 0)
    msgs = tuple(Message(f"m-{i}", "c-1", author, f"**hello** {i}", now, None, i + 1, 1,
                         False, False, False) for i in range(3))
    store.apply_sync(SyncResponse("3", False, (SyncConversation(conv, msgs, False, False),), ()))
    store.set_last_conversation("c-1")
    store.close()
    return path


def _after_first_frame(path) -> dict:
    out = subprocess.run([sys.executable, "-c", AFTER_FIRST_FRAME, str(path)],
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_markdown_stack_only_for_an_assistant_reply_on_screen(tmp_path):
    people = _after_first_frame(_cache_with(tmp_path / "people.db", "bob"))
    assert people["markdown_enabled"] is True
    markdown = [m for m in people["modules"] if m.startswith(("rich.markdown", "markdown_it"))]
    assert markdown == []
    assert [m for m in LAZY if m in people["modules"]] == []
    # The same app with an assistant reply on screen imports it and renders Markdown.
    assistant = _after_first_frame(_cache_with(tmp_path / "assistant.db", "assistant"))
    assert "rich.markdown" in assistant["modules"]


def test_app_process_skips_unused_optional_imports(tmp_path):
    seen = _after_first_frame(_cache_with(tmp_path / "cache.db", "bob"))
    assert "peewee" in seen["modules"]
    # playhouse.migrate (and its postgres_ext) is imported by a migration only.
    assert "playhouse.migrate" not in seen["modules"]
    assert seen["psycopg2"] == "None"  # marked missing, so Peewee skipped it
    assert [m for m in seen["modules"] if m.startswith(("psycopg2.", "psycopg."))] == []
    engine = set(seen["with_engine"])
    assert "httpx" in engine
    assert not engine & {"click", "pygments", "rich.syntax", "rich.progress"}


def test_app_arguments_parsed_without_the_subcommand_parsers():
    """``chat-tui [--user N] [--server U]`` builds no subcommand's parser; the one parser
    reads the app's options exactly, and builds only the parser of a subcommand named."""
    from chat_tui.cli.parser import build_parser, subcommands_built

    app = {(): (None, None), ("--user", "bob"): ("bob", None), ("--user=bob",): ("bob", None),
           ("--server", "http://h:1", "--user", "a"): ("a", "http://h:1"),
           ("--server=http://h:1",): (None, "http://h:1")}
    for argv, (user, server) in app.items():
        parser = build_parser()
        args = parser.parse_args(list(argv))
        assert (args.command, args.user, args.server) == (None, user, server), argv
        assert subcommands_built(parser) == (), argv
    for argv, command in ((["send", "hi"], "send"), (["--user", "a", "status"], "status"),
                          (["cache", "clear", "--yes"], "cache")):
        parser = build_parser()
        args = parser.parse_args(argv)
        assert args.command == command and subcommands_built(parser) == (command,), argv
    args = build_parser().parse_args(["--user", "a", "send", "-c", "Chat", "hi"])
    assert (args.user, args.conversation, args.text) == ("a", "Chat", "hi")
    for argv, status in ((["-h"], 0), (["--user"], 2), (["--user", "--server"], 2),
                         (["bogus"], 2), (["cache"], 2)):
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(argv)
        assert exc.value.code == status, argv


# A cache closed cleanly: the first frame comes from the reader (the stdlib's sqlite3, or
# sqlcipher3 with the raw key), Peewee and the full cache open after it, and the file is
# clean again after the app closes. ``argv[2]``: ``reader`` opens it with
# ``FirstFrameReader.open`` (no key), ``with-key`` with ``first_frame_reader`` (the key
# looked up as the app does).
FROM_READER = r"""
import json, sys
from pathlib import Path
from chat_tui.launch import first_frame_reader, launch  # noqa: F401 - its own imports
from chat_tui.store.first_frame import FirstFrameReader
from chat_tui.ui.app import ChatApp

path = Path(sys.argv[1])
seen = {}

def open_cache():
    from chat_tui.store import Cache

    store = Cache(path, "alice")
    store.open()
    seen["full_check"] = store.full_check
    seen["encrypted"] = store.key is not None
    return store

def probe(app):
    drawn = app._first_frame_drawn

    def first_frame_drawn():
        seen["at_first_frame"] = sorted(sys.modules)
        seen["shown"] = [v.body for v in app.chat.messages.views]
        drawn()

    app._first_frame_drawn = first_frame_drawn
    return app

async def until_ready(pilot):
    for _ in range(200):
        await pilot.pause(0.02)
        if pilot.app.chat.composer is not None:
            break
    seen["store"] = type(pilot.app.store).__name__
    pilot.app.exit()

if sys.argv[2] == "with-key":
    reader = first_frame_reader(path, "alice")
else:
    reader = FirstFrameReader.open(path, "alice")
seen["reader"] = reader is not None
app = probe(ChatApp(reader, None, open_cache=open_cache))
app.run(headless=True, size=(120, 36), auto_pilot=until_ready)
app.store.close()
from chat_tui.store.cleanstamp import is_clean
seen["clean"] = is_clean(path)
seen["after"] = sorted(sys.modules)
print(json.dumps(seen))
"""


def _first_frame_from_reader(path, opener: str) -> dict:
    """What :data:`FROM_READER` saw of the app on the cache ``path`` (``opener``:
    ``reader`` or ``with-key``), after checking the newest messages drawn first, from the
    reader, and the full cache opened after it without a full check."""
    out = subprocess.run([sys.executable, "-c", FROM_READER, str(path), opener],
                         capture_output=True, text=True, timeout=60, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["reader"] is True
    assert seen["shown"] == ["**hello** 0", "**hello** 1", "**hello** 2"]
    first = set(seen["at_first_frame"])
    assert "textual.app" in first and "peewee" not in first
    # nor the dataclasses it does not show (each costs 0.6-1.2 ms to create)
    assert not first & {"chat_tui.store.cache", "chat_tui.store.more_views",
                        "chat_tui.store.results"}
    assert [m for m in LAZY if m in first] == []
    assert seen["store"] == "Cache" and seen["full_check"] is False
    assert seen["clean"] is True
    return seen


def test_first_frame_from_a_clean_cache_imports_no_orm(tmp_path):
    seen = _first_frame_from_reader(_cache_with(tmp_path / "cache.db", "bob"), "reader")
    # a plain cache needs no key: hashlib and OpenSSL's libcrypto wait
    assert "hashlib" not in seen["at_first_frame"]


# ``chat-tui`` alone, without a config file: the app's start builds no argument parser and
# reads no TOML (argparse, the parser and tomllib: ~10 ms of CPU before the first frame).
NO_ARGUMENTS = r"""
import json, sys
import chat_tui.launch

seen = {}

def launch(args):
    from chat_tui.config import account_choice, load_settings

    seen["args"] = [args.user, args.server]
    seen["choice"] = list(account_choice(args.user, args.server))
    seen["max_attempts"] = load_settings().max_attempts
    seen["loaded"] = sorted(m for m in ("argparse", "tomllib", "getpass", "chat_tui.cli.parser",
                                        "chat_tui.config.providers") if m in sys.modules)
    return 0

chat_tui.launch.launch = launch  # the app itself is what the other tests start
from chat_tui.cli import main

sys.argv = ["chat-tui"]
status = main()
print(json.dumps({"status": status, **seen}))
"""


def test_app_start_without_arguments_or_config_builds_no_parser(tmp_path):
    import os

    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_DATA_HOME": str(tmp_path / "data")}
    out = subprocess.run([sys.executable, "-c", NO_ARGUMENTS], capture_output=True, text=True,
                         timeout=60, check=True, env=env)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["status"] == 0 and seen["args"] == [None, None]
    assert seen["choice"] == [None, None] and seen["max_attempts"] == 8
    assert seen["loaded"] == []


def _encrypted_cache_with(path, author: str):
    """:func:`_cache_with` with the cache encrypted, its key in a key file (config)."""
    from tests.support.cache import choose_cache_key

    choose_cache_key("file")
    _cache_with(path, author)
    from chat_tui.store.cipher import is_plain_sqlite

    assert is_plain_sqlite(path) is False
    return path


# An encrypted cache closed cleanly: the first frame is read with its raw key through
# sqlcipher3 (FROM_READER, ``with-key``), still without Peewee; the key is looked up once
# (the key file read directly, no keyring) and the cache's own open after the frame reuses
# it (sync rules D6, D7).
def test_first_frame_of_an_encrypted_cache_imports_no_orm_and_shows_the_newest(tmp_path):
    path = _encrypted_cache_with(tmp_path / "cache.db", "bob")
    seen = _first_frame_from_reader(path, "with-key")
    first = set(seen["at_first_frame"])
    assert "sqlcipher3" in first  # read through SQLCipher with the raw key
    assert "keyring" not in first and "keyring" not in seen["after"]  # a key file
    assert seen["encrypted"] is True


def test_first_frame_reader_of_an_encrypted_cache_without_its_key_is_the_locked_state(
        tmp_path):
    from chat_tui.config import cachekeys
    from chat_tui.launch import first_frame_reader
    from chat_tui.store.errors import CacheLocked

    path = _encrypted_cache_with(tmp_path / "cache.db", "bob")
    cachekeys.key_file(path).unlink()
    cachekeys.forget_remembered(path)  # as a new process
    before = path.read_bytes()
    with pytest.raises(CacheLocked, match="key is missing or wrong"):
        first_frame_reader(path, "alice")
    assert path.read_bytes() == before


def _run_in_a_terminal(answers: dict[bytes, bytes], until: bytes, timeout: float = 90
                       ) -> tuple[bytes, int | None]:
    """Run ``chat-tui`` (the app) in a pseudo-terminal (its own session, so a passphrase
    prompt reads the pseudo-terminal), write ``answers[text]`` once ``text`` was printed,
    and once ``until`` is on screen quit with ctrl+q. Returns everything it printed and its
    exit status (None when it did not exit: then it is killed)."""
    import os
    import pty
    import select
    import time

    from tests.support.cli import FAST_ENV

    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "chat_tui.cli"], stdin=child, stdout=child,
                            stderr=child, env={**os.environ, **FAST_ENV, "TERM": "xterm"},
                            close_fds=True, start_new_session=True)
    os.close(child)
    out, pending, quit_sent = b"", dict(answers), False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if select.select([main], [], [], 0.1)[0]:
                try:
                    out += os.read(main, 65536)
                except OSError:
                    break
            for text in [t for t in pending if t in out]:
                os.write(main, pending.pop(text))
            if not quit_sent and until in out:
                os.write(main, b"\x11")  # ctrl+q
                quit_sent = True
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        return out, proc.poll()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        os.close(main)


def test_passphrase_prompt_comes_before_the_first_frame_of_an_encrypted_cache(tmp_path):
    """A cache whose key comes from a passphrase: the app asks for it on the terminal
    before drawing anything, then draws the newest messages (read with the derived key,
    sync rules D6, D7) and closes the cache cleanly, still encrypted."""
    import uuid

    from chat_tui.config import Account, cachekeys, config_file, save_account, store_token
    from chat_tui.store.cipher import is_plain_sqlite
    from chat_tui.store.cleanstamp import is_clean

    config_file().write_text('[cache]\nkey = "passphrase"\n', encoding="utf-8")
    account = Account("http://127.0.0.1:9", "alice", str(uuid.uuid4()), "test-device")
    save_account(account)
    store_token(account, "offline-token")
    cachekeys.set_passphrase_prompt(lambda question: "correct horse battery")
    try:
        path = _cache_with(account.db_path, "bob")
    finally:
        cachekeys.set_passphrase_prompt(cachekeys._default_prompt)
    assert is_plain_sqlite(path) is False and is_clean(path)
    out, code = _run_in_a_terminal({b"passphrase of the chat-tui cache":
                                    b"correct horse battery\r"}, until=b"hello** 2")
    assert code == 0, out[-3000:]
    prompt = out.index(b"passphrase of the chat-tui cache")
    assert b"hello** 2" in out[prompt:]
    # Nothing of the app was drawn before the prompt (Textual switches to the alternate
    # screen for its first frame).
    assert b"\x1b[?1049h" not in out[:prompt] and b"\x1b[?1049h" in out[prompt:]
    assert is_plain_sqlite(path) is False and is_clean(path)


# ``launch`` with the cyclic garbage collector off until the first frame: off while the
# screen is composed, on again once the frame is drawn (before the composer mounts), and on
# after the app ends, or when ``launch`` returns before any app (an unknown ``--user``).
GC_PROBE = r"""
import gc, json, sys
from argparse import Namespace
from pathlib import Path
import chat_tui.launch
from chat_tui.config import Account, save_account, store_token
from chat_tui.ui.app import ChatApp
from chat_tui.ui.screens.chat import ChatScreen

seen = {"before": gc.isenabled()}
seen["unknown_user"] = chat_tui.launch.launch(Namespace(user="nobody", server=None))
seen["after_unknown_user"] = gc.isenabled()
account = Account("http://127.0.0.1:9", "alice", "u-alice", "dev-1")
save_account(account)
store_token(account, "token-offline")
if sys.argv[1] == "clean":
    from tests.ui.test_startup import _cache_with

    account.db_path.parent.mkdir(parents=True, exist_ok=True)
    _cache_with(account.db_path, "bob")

compose = ChatScreen.compose

def spy_compose(self):
    seen["composing"] = gc.isenabled()
    yield from compose(self)

ChatScreen.compose = spy_compose
drawn = ChatApp._first_frame_drawn

def spy_drawn(self):
    seen["at_first_frame"] = [gc.isenabled(), self.chat.composer is None]
    drawn(self)
    seen["after_first_frame"] = gc.isenabled()

ChatApp._first_frame_drawn = spy_drawn
run = ChatApp.run

async def until_ready(pilot):
    for _ in range(250):
        await pilot.pause(0.02)
        if pilot.app.chat.composer is not None:
            break
    seen["reader"] = type(pilot.app.store).__name__
    pilot.app.exit()

ChatApp.run = lambda self, **kw: run(self, headless=True, size=(100, 30), auto_pilot=until_ready)
seen["status"] = chat_tui.launch.launch(Namespace(user=None, server=None))
seen["after"] = gc.isenabled()
print(json.dumps(seen))
"""


@pytest.mark.parametrize("cache", ["clean", "new"])
def test_garbage_collector_is_off_until_the_first_frame_and_on_after(working_keyring, cache):
    # the probe inherits this test's user dirs (isolated_user_dirs) and working keyring
    out = subprocess.run([sys.executable, "-c", GC_PROBE, cache], capture_output=True,
                         text=True, timeout=90)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["before"] is True
    assert seen["unknown_user"] == 1 and seen["after_unknown_user"] is True
    assert seen["composing"] is False
    # the callback runs first thing at the first frame, before the composer exists
    assert seen["at_first_frame"] == [False, True] and seen["after_first_frame"] is True
    assert seen["status"] == 0 and seen["after"] is True
    assert seen["reader"] == "Cache"

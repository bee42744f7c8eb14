"""Sync rules D7, D8 through ``chat-tui`` subprocesses against the real server: an
encrypted cache (key file, as the tests' keyring refuses everything) in ``status``,
``cache clear``, ``cache reset`` and ``logout --flush``."""

from __future__ import annotations

import json

from chat_tui.config import cachekeys, load_accounts
from chat_tui.store.cipher import is_plain_sqlite
from tests.support.cache import choose_cache_key
from tests.support.cli import cli, login


def _encrypted_login(url: str):
    choose_cache_key("file")
    login(url)
    done = cli("send", "-c", json.loads(cli("status", "--json", "--offline").stdout)
               and _new_conversation(), "a secret queued offline")
    assert done.returncode == 0, done.stderr
    return load_accounts()[-1].db_path


def _new_conversation() -> str:
    done = cli("new", "Cipher", "--member", "bob")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_rule_d7_status_says_the_cache_is_encrypted_and_where_its_key_is(server):
    path = _encrypted_login(server.url)
    assert is_plain_sqlite(path) is False
    data = json.loads(cli("status", "--json", "--offline").stdout)
    keyfile = cachekeys.key_file(path)
    assert data["cache"] == {"path": str(path), "encrypted": True, "key": "file",
                             "key_file": str(keyfile)}
    text = cli("status", "--offline").stdout
    assert "encrypted, key in the key file" in text
    assert keyfile.read_text().strip() not in text + json.dumps(data)


def test_rule_d7_status_says_a_plain_cache_is_not_encrypted(server):
    login(server.url)
    assert cli("sync", "--once").returncode == 0
    data = json.loads(cli("status", "--json", "--offline").stdout)
    assert data["cache"]["encrypted"] is False and data["cache"]["key"] is None
    assert "not encrypted" in cli("status", "--offline").stdout


def test_rule_d8_lost_key_cli_explains_and_reset_keeps_the_file_aside(server):
    path = _encrypted_login(server.url)
    keyfile = cachekeys.key_file(path)
    saved_key = keyfile.read_text()
    keyfile.unlink()
    before = path.read_bytes()
    done = cli("sync", "--once")
    assert done.returncode == 1
    assert "cannot be opened" in done.stderr and "key is missing or wrong" in done.stderr
    assert "cache reset" in done.stderr and "Traceback" not in done.stderr
    assert path.read_bytes() == before
    refused = cli("cache", "reset", stdin="n\n")
    assert refused.returncode == 1 and path.read_bytes() == before
    done = cli("cache", "reset", "--yes")
    assert done.returncode == 0, done.stderr
    [aside] = [p for p in path.parent.iterdir()
               if p.name.startswith(path.name + ".corrupt") and p.suffix != ".json"]
    assert aside.read_bytes() == before and str(aside) in done.stdout
    assert cachekeys.read_marker(aside)["where"] == "file"
    # The fresh cache opens (a new key); the old file opens again once its key is back.
    assert cli("sync", "--once").returncode == 0
    assert cachekeys.key_file(path).read_text() != saved_key
    cachekeys.key_file(aside).write_text(saved_key)
    from chat_tui.store import Cache

    old = Cache(aside, "alice")
    old.open()
    assert [a.payload["body"] for a in old.outbox_rows()
            if a.kind == "send"] == ["a secret queued offline"]
    old.close()


def test_rule_d7_logout_flush_and_cache_clear_remove_the_key(server):
    path = _encrypted_login(server.url)
    assert cli("sync", "--once").returncode == 0
    keyfile = cachekeys.key_file(path)
    assert keyfile.exists()
    done = cli("cache", "clear", "--yes")
    assert done.returncode == 0, done.stderr
    assert not path.exists() and not keyfile.exists()
    assert not cachekeys.marker_path(path).exists()
    assert cli("sync", "--once").returncode == 0  # a fresh encrypted cache
    assert keyfile.exists() and is_plain_sqlite(path) is False
    done = cli("logout", "--flush")
    assert done.returncode == 0, done.stderr
    assert not path.exists() and not keyfile.exists()
    assert not cachekeys.marker_path(path).exists()


def _app_in_a_terminal(answer: str, timeout: float = 90) -> tuple[str, int | None]:
    """Start ``chat-tui`` (the app) in a pseudo-terminal, answer its question, and return
    what it printed before the first frame (and its exit status, None when still running:
    then it is stopped)."""
    import os
    import pty
    import select
    import subprocess
    import sys
    import time

    from tests.support.cli import FAST_ENV

    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "chat_tui.cli"], stdin=child, stdout=child,
                            stderr=child, env={**os.environ, **FAST_ENV, "TERM": "xterm"},
                            close_fds=True)
    os.close(child)
    out = b""
    answered = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([main], [], [], 0.2)
            if ready:
                try:
                    out += os.read(main, 65536)
                except OSError:  # the terminal closed: the app is exiting
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        pass
                    break
            if not answered and b"[y/N]" in out:
                os.write(main, answer.encode() + b"\r")
                answered = True
            if answered and b"moved to" in out:
                time.sleep(1.0)
                break
        return out.decode(errors="replace"), proc.poll()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        os.close(main)


def test_rule_d8_the_app_says_the_cache_cannot_be_opened_and_offers_a_fresh_one(server):
    path = _encrypted_login(server.url)
    cachekeys.key_file(path).unlink()
    before = path.read_bytes()
    text, code = _app_in_a_terminal("n")
    assert code == 1 and "cannot be opened" in text and "key is missing or wrong" in text, text
    assert path.read_bytes() == before
    text, _ = _app_in_a_terminal("y")
    assert "moved to" in text
    [aside] = [p for p in path.parent.iterdir()
               if p.name.startswith(path.name + ".corrupt") and p.suffix != ".json"]
    assert aside.read_bytes() == before

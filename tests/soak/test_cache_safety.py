"""Cache safety (docs/sync.md D4, D5, S6): a corrupt cache file, two ``chat-tui`` processes
on one account, and a server that lost its data. Real ``chat-tui`` subprocesses against the real server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from chat_tui.config import load_accounts
from chat_tui.config.cachekeys import load_cache_key
from chat_tui.store.cipher import database_errors, is_plain_sqlite, open_raw_connection
from tests.support.cli import FAST_ENV, cli
from tests.support.waiting import wait_until


def ok(*args: str) -> str:
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def login(url: str) -> Path:
    done = cli("login", url, "--username", "alice", "--password-stdin", stdin="alice-pw\n")
    assert done.returncode == 0, done.stderr
    return load_accounts()[-1].db_path


def server_bodies(server, cid: str) -> list[str]:
    token = server.login("bob", "bob-pw")["access_token"]
    r = httpx.get(f"{server.url}/v1/conversations/{cid}/messages", params={"limit": 500},
                  headers={"authorization": f"Bearer {token}"}, timeout=10)
    r.raise_for_status()
    return [m["body"] for m in r.json()["messages"] if not m["deleted"]]


def cached_bodies(cid: str) -> list[str]:
    data = json.loads(ok("export", "-c", cid, "--format", "json"))
    return [m["body"] for m in data["conversations"][0]["messages"]]


def moved_aside(db: Path) -> list[Path]:
    return sorted(p for p in db.parent.iterdir()
                  if p.name.startswith(db.name + ".corrupt")
                  and not p.name.endswith(("-wal", "-shm")))


CORRUPTIONS = {
    "garbage": lambda db: db.write_bytes(os.urandom(8192)),
    "truncated": lambda db: db.write_bytes(db.read_bytes()[:1500]),
    "wrong-format": lambda db: db.write_text(json.dumps({"accounts": []})),
}


@pytest.mark.parametrize("how", sorted(CORRUPTIONS))
def test_rule_d4_unreadable_cache_is_moved_aside_reported_and_resynced(server, how):
    db = login(server.url)
    cid = ok("new", "Corrupt", "--member", "bob")
    ok("send", "-c", cid, "delivered before the damage")
    ok("sync", "--once")
    ok("send", "-c", cid, "still in the outbox")  # queued, never sent
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    CORRUPTIONS[how](db)
    damaged = db.read_bytes()

    done = cli("sync", "--once")
    assert done.returncode == 0, done.stderr
    [aside] = moved_aside(db)
    assert aside.read_bytes() == damaged  # moved, not deleted
    assert "cache" in done.stderr and str(aside) in done.stderr
    # What the outbox held is reported: here nothing could be read, and the user is told so.
    assert "outbox" in done.stderr and "could not" in done.stderr
    assert cached_bodies(cid) == ["delivered before the damage"]  # resynced from the server


@pytest.fixture(params=["plain", "encrypted"])
def cache_kind(request) -> str:
    """Each test below runs on a plain cache and on one encrypted with a key file (sync
    rules D6, D7: ``[cache] key = "file"`` in the test's config.toml)."""
    if request.param == "encrypted":
        from chat_tui.config import config_file

        config_file().write_text('[cache]\nkey = "file"\n', encoding="utf-8")
    return request.param


def _connect(db: Path):
    """A connection to the cache ``db`` with the key config keeps (none when plain)."""
    return open_raw_connection(db, load_cache_key(db))


def _damage_message_index(db: Path) -> None:
    """Overwrite the pages of the message table's indexes (not the outbox): every page
    where ``dbstat`` is compiled in (plain SQLite), their root pages otherwise."""
    con = _connect(db)
    page_size = int(con.execute("PRAGMA page_size").fetchone()[0])
    try:
        pages = [r[0] for r in con.execute(
            "SELECT pageno FROM dbstat WHERE name IN "
            "(SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'message')")]
    except database_errors():
        pages = [r[0] for r in con.execute(
            "SELECT rootpage FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'message'")]
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    assert pages
    with db.open("r+b") as f:
        for page in pages:
            f.seek((page - 1) * page_size)
            f.write(b"\xff" * page_size)


def test_rule_d4_damaged_cache_keeps_what_the_outbox_held_and_delivers_it_once(server,
                                                                              cache_kind):
    db = login(server.url)
    cid = ok("new", "Damaged", "--member", "bob")
    ok("send", "-c", cid, "one")
    ok("sync", "--once")
    ok("send", "-c", cid, "two")
    ok("send", "-c", cid, "three")
    assert is_plain_sqlite(db) is (cache_kind == "plain")
    _damage_message_index(db)
    con = _connect(db)
    assert con.execute("PRAGMA quick_check").fetchone()[0] != "ok"
    con.close()

    done = cli("sync", "--once")
    assert done.returncode == 0, done.stderr
    [aside] = moved_aside(db)
    assert str(aside) in done.stderr and "2 unsent" in done.stderr
    assert server_bodies(server, cid) == ["one", "two", "three"]
    assert cached_bodies(cid) == ["one", "two", "three"]
    assert is_plain_sqlite(db) is (cache_kind == "plain")
    con = _connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


def test_rule_d5_a_second_sync_process_says_another_is_running_and_sends_from_others_arrive(
        server, cache_kind):
    db = login(server.url)
    cid = ok("new", "Two processes", "--member", "bob")
    env = {**os.environ, **FAST_ENV}
    first = subprocess.Popen([sys.executable, "-m", "chat_tui.cli", "sync"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: "Two processes" in str(_server_titles(server)), timeout=20)
        second = cli("sync", timeout=30)
        assert second.returncode != 0
        assert "another chat-tui" in second.stderr and str(first.pid) in second.stderr
        second_once = cli("sync", "--once", timeout=30)
        assert second_once.returncode != 0 and "another chat-tui" in second_once.stderr
        # A short command may still queue: the running engine picks it up without a restart.
        for body in ("a", "b", "c"):
            ok("send", "-c", cid, body)
        assert wait_until(lambda: server_bodies(server, cid) == ["a", "b", "c"], timeout=15)
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=15)
    assert first.returncode == 0, first.stderr.read() if first.stderr else ""
    # The lock goes with the process: kill -9 leaves nothing that blocks the next run.
    again = subprocess.Popen([sys.executable, "-m", "chat_tui.cli", "sync"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    again.kill()
    again.wait()
    assert cli("sync", "--once").returncode == 0
    assert server_bodies(server, cid) == ["a", "b", "c"]
    assert is_plain_sqlite(db) is (cache_kind == "plain")


def _server_titles(server) -> list[str]:
    token = server.login("bob", "bob-pw")["access_token"]
    r = httpx.get(f"{server.url}/v1/conversations",
                  headers={"authorization": f"Bearer {token}"}, timeout=10)
    return [c["title"] for c in r.json()["conversations"]]


def _backup(src: Path, dst: Path) -> None:
    a, b = sqlite3.connect(src), sqlite3.connect(dst)
    try:
        a.backup(b)
    finally:
        a.close()
        b.close()


def test_rule_s6_server_restored_from_an_older_backup_resyncs_the_client_and_keeps_its_outbox(server):
    login(server.url)
    cid = ok("new", "Backup", "--member", "bob")
    ok("send", "-c", cid, "kept by the backup")
    ok("sync", "--once")
    backup = Path(str(server.db_path) + ".backup")
    _backup(Path(server.db_path), backup)
    ok("send", "-c", cid, "lost with the server's data")
    ok("sync", "--once")
    server.stop()
    for suffix in ("", "-wal", "-shm"):
        Path(str(server.db_path) + suffix).unlink(missing_ok=True)
    shutil.copy(backup, server.db_path)
    ok("send", "-c", cid, "queued while the server was down")
    server.start()

    done = cli("sync", "--once")
    assert done.returncode == 0, done.stderr
    # The client's cursor is newer than anything the restored server knows: 410, initial
    # sync, the outbox is kept and delivered once.
    assert server_bodies(server, cid) == ["kept by the backup",
                                          "queued while the server was down"]
    assert cached_bodies(cid) == server_bodies(server, cid)
    assert json.loads(ok("status", "--json"))["outbox"]["queued"] == 0

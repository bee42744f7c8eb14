"""Headless ``chat-tui`` commands as real subprocesses against the real server."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time

from chat_tui.config import load_accounts
from chat_tui.store import SCHEMA_VERSION
from tests.support.cli import FAST_ENV, cli, login
from tests.support.fault_proxy import FaultProxy
from tests.support.waiting import wait_until


def status() -> dict:
    done = cli("status", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def db_path():
    return load_accounts()[-1].db_path


def server_bodies(server, cid: str, name: str = "bob") -> list[str]:
    import httpx

    token = server.login(name, f"{name}-pw")["access_token"]
    r = httpx.get(f"{server.url}/v1/conversations/{cid}/messages", params={"limit": 500},
                  headers={"authorization": f"Bearer {token}"}, timeout=10)
    r.raise_for_status()
    return [m["body"] for m in r.json()["messages"]]


def test_login_stores_the_token_in_a_0600_file_without_a_keyring(server):
    login(server.url)
    [account] = load_accounts()
    assert account.username == "alice" and account.server_url == server.url
    from chat_tui.config.secrets import _token_file

    path = _token_file(account)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = status()
    assert data["account"]["token"] == "file" and data["connectivity"] == "online"
    assert data["work_offline"] is False
    assert db_path().parent.name == f"127.0.0.1_{server.port}"
    assert db_path().name == f"{account.user_id}.db"
    bad = cli("login", server.url, "--username", "alice", "--password-stdin", stdin="nope\n")
    assert bad.returncode == 3 and "wrong username or password" in bad.stderr


def test_new_send_sync_status_export_offline_first(server, tmp_path):
    login(server.url)
    server.stop()  # everything below works offline
    cid = cli("new", "Plans", "--member", "bob").stdout.strip()
    sent = cli("send", "--conversation", "Plans", "first")
    assert sent.returncode == 0, sent.stderr
    piped = cli("send", "-", stdin="second\nwith two lines\n")
    assert piped.returncode == 0
    data = status()
    assert data["connectivity"] == "offline"
    assert data["outbox"]["queued"] == 3
    once = cli("sync", "--once")
    assert once.returncode == 2 and "unreachable" in once.stderr
    server.start()
    once = cli("sync", "--once")
    assert once.returncode == 0, once.stderr
    assert server_bodies(server, cid) == ["first", "second\nwith two lines"]
    data = status()
    assert data["outbox"] == dict.fromkeys(data["outbox"], 0) and data["last_synced_at"]
    server.stop()
    from chat_tui.store import Cache

    store = Cache(db_path(), "alice")  # the app's switch (sync rule C3), as ctrl+o keeps it
    store.open()
    store.set_work_offline(True)
    store.close()
    assert status()["work_offline"] is True
    human = cli("status", "--offline")
    assert "work offline is on in the app" in human.stdout
    md = cli("export", "--format", "md")
    assert md.returncode == 0 and "# Plans" in md.stdout and "with two lines" in md.stdout
    js = json.loads(cli("export", "--format", "json", "-c", cid).stdout)
    assert [m["body"] for m in js["conversations"][0]["messages"]] == [
        "first", "second\nwith two lines"]


def test_rule_3f_status_shows_failed_and_blocked_messages_with_reasons(server):
    login(server.url)
    cli("new", "Doomed", "--member", "no-such-user", "--no-check")  # refused by the server
    cli("send", "waits behind the create")
    assert cli("sync", "--once").returncode == 0
    data = status()
    assert data["outbox"]["failed"] == 1 and data["outbox"]["blocked"] == 1
    states = [(p["kind"], p["state"]) for p in data["problems"]]
    assert states == [("create_conversation", "failed"), ("send", "blocked")]
    assert "422" in data["problems"][0]["reason"]
    human = cli("status", "--offline")
    assert "failed" in human.stdout and "blocked behind" in human.stdout


def test_rule_4_kill_9_of_chat_tui_sync_while_sending_loses_and_duplicates_nothing(server):
    with FaultProxy(server.url) as proxy:
        login(proxy.url)
        cid = cli("new", "Crash test", "--member", "bob").stdout.strip()
        assert cli("sync", "--once").returncode == 0
        bodies = [f"message {i}" for i in range(12)]
        for body in bodies:
            assert cli("send", "-c", cid, body).returncode == 0
        # Five sends go through; the answer to the sixth is held back, so the process is
        # surely killed while that action is 'sending' (the server has committed it).
        proxy.hold(0, method="PUT", path_contains="/messages/", count=5)
        proxy.hold(30, method="PUT", path_contains="/messages/", count=1)
        env = {**os.environ, **FAST_ENV}
        proc = subprocess.Popen([sys.executable, "-m", "chat_tui.cli", "sync"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            def in_flight():
                con = sqlite3.connect(db_path())
                try:
                    return con.execute(
                        "SELECT count(*) FROM outbox WHERE state='sending'").fetchone()[0] == 1
                finally:
                    con.close()

            assert wait_until(lambda: len(proxy.requests("PUT", "/messages/")) >= 6
                              and in_flight(), timeout=30)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        time.sleep(0.5)  # the held request reaches the server
        proxy.clear()
        done = cli("sync", "--once")
        assert done.returncode == 0, done.stderr
    assert server_bodies(server, cid) == bodies
    assert status()["outbox"]["queued"] == 0


def test_rule_r2_cache_clear_refuses_with_unsent_messages_unless_forced(server):
    login(server.url)
    server.stop()
    cli("new", "Unsent")
    cli("send", "not yet delivered")
    refused = cli("cache", "clear", "--yes")
    assert refused.returncode == 1 and "unsent" in refused.stderr
    assert db_path().exists()
    forced = cli("cache", "clear", "--yes", "--force")
    assert forced.returncode == 0 and not db_path().exists()


def test_logout_revokes_the_token_and_flush_deletes_the_cache(server):
    login(server.url)
    assert cli("sync", "--once").returncode == 0
    path = db_path()
    assert path.exists()
    from chat_tui.config.secrets import _token_file

    token = _token_file(load_accounts()[-1]).read_text()
    done = cli("logout", "--flush")
    assert done.returncode == 0, done.stderr
    assert load_accounts() == [] and not path.exists()
    import httpx

    r = httpx.get(f"{server.url}/v1/conversations",
                  headers={"authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 401


def test_rule_r2_cache_clear_and_logout_flush_refuse_while_the_engine_runs(server):
    """A running ``chat-tui sync`` (another process holding the engine lock, sync rule D5)
    has the cache open: ``cache clear`` and ``logout --flush`` refuse clearly, delete
    nothing and (logout) keep the account; once it stopped, clearing works."""
    login(server.url)
    assert cli("sync", "--once").returncode == 0
    path = db_path()
    lock = path.with_name(path.name + ".lock")
    env = {**os.environ, **FAST_ENV}
    running = subprocess.Popen([sys.executable, "-m", "chat_tui.cli", "sync"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: lock.exists() and lock.read_text().strip()
                          == str(running.pid), timeout=20)
        cleared = cli("cache", "clear", "--yes", "--force")
        assert cleared.returncode == 1
        assert "another chat-tui is running" in cleared.stderr
        assert str(running.pid) in cleared.stderr
        flushed = cli("logout", "--flush", "--force")
        assert flushed.returncode == 1 and "another chat-tui is running" in flushed.stderr
        assert path.exists() and len(load_accounts()) == 1
        assert running.poll() is None  # the engine kept running, untouched
    finally:
        running.send_signal(signal.SIGTERM)
        running.wait(timeout=20)
    assert cli("cache", "clear", "--yes").returncode == 0
    assert not path.exists()


def test_rule_d2_cli_refuses_a_cache_from_a_newer_version(server):
    login(server.url)
    assert cli("sync", "--once").returncode == 0
    con = sqlite3.connect(db_path())
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    done = cli("send", "-c", "x", "hello")
    assert done.returncode == 1 and "newer chat-tui" in done.stderr


def test_user_and_server_pick_the_account(server):
    login(server.url, "alice")
    login(server.url, "bob")
    cid = cli("--user", "alice", "new", "Alice's").stdout.strip()
    assert cli("--user", "bob", "export", "--format", "json").stdout.count(cid) == 0
    assert cid in cli("--user", "alice", "export", "--format", "json").stdout
    missing = cli("--user", "carol", "status")
    assert missing.returncode == 1 and "no saved account" in missing.stderr


def test_import_of_the_cli_stays_light():
    done = subprocess.run([sys.executable, "-c", "import sys, chat_tui.cli; "
                           "print(sorted({m.split('.')[0] for m in sys.modules} & "
                           "{'textual', 'httpx', 'peewee'}))"],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]"

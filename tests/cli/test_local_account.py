"""Headless parity: every ``chat-tui`` subcommand works for the default local account (no
login; the app's embedded server over ``<data dir>/chat-tui/local/server.db``) as for a
logged-in one, starting the embedded server for the command when it needs the network.

Each command runs as a real subprocess in the test's own XDG dirs (no saved account, so
the local account is meant); the server runs inside that process, as in the app.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.support.cli import cli


def local_dir() -> Path:
    from chat_tui.launch import local_dir as _local_dir

    return _local_dir()


def username() -> str:
    from chat_tui.launch import local_username

    return local_username()


def export() -> list[dict]:
    done = cli("export", "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["conversations"]


def status(*extra: str) -> dict:
    done = cli("status", "--json", *extra)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def server_bodies(cid: str) -> list[str]:
    """What the embedded server's own database holds for conversation ``cid``."""
    db = sqlite3.connect(local_dir() / "server.db")
    try:
        tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
        table = "message" if "message" in tables else "messages"
        cols = [r[1] for r in db.execute(f"pragma table_info({table})")]
        conv = "conversation_id" if "conversation_id" in cols else "conversation"
        order = "seq" if "seq" in cols else "rowid"
        return [r[0] for r in db.execute(
            f"select body from {table} where {conv} = ? order by {order}", (cid,))]
    finally:
        db.close()


def test_new_and_send_queue_for_the_local_account_without_a_login():
    made = cli("new", "Notes", "--assistant")
    assert made.returncode == 0, made.stderr
    cid = made.stdout.strip()
    sent = cli("send", "first note")
    assert sent.returncode == 0, sent.stderr
    piped = cli("send", "--conversation", "Notes", "-", stdin="second\nnote\n")
    assert piped.returncode == 0, piped.stderr
    [conv] = export()
    assert conv["id"] == cid and conv["title"] == "Notes"
    assert [m["body"] for m in conv["messages"]] == ["first note", "second\nnote"]
    assert status("--offline")["outbox"]["queued"] == 3
    assert (local_dir() / "cache.db").exists()


def test_sync_once_starts_the_embedded_server_and_delivers_in_order():
    cid = cli("new", "Notes", "--assistant").stdout.strip()
    assert cli("send", "one").returncode == 0
    assert cli("send", "two").returncode == 0
    done = cli("sync", "--once")
    assert done.returncode == 0, done.stderr
    assert "sent 3" in done.stdout
    mine = ("one", "two")
    assert [b for b in server_bodies(cid) if b in mine] == ["one", "two"]
    again = cli("sync", "--once")  # a second run delivers nothing twice
    assert again.returncode == 0, again.stderr
    assert [b for b in server_bodies(cid) if b in mine] == ["one", "two"]
    cached = [m for m in export()[0]["messages"] if m["author"] == username()]
    assert [m["state"] for m in cached] == ["sent", "sent"]
    assert status("--offline")["last_synced_at"]


def test_status_probes_the_embedded_server_and_names_the_local_account():
    data = status()
    assert data["connectivity"] == "online"
    assert data["account"]["local"] is True
    assert data["account"]["username"] == username()
    assert data["account"]["cache"] == str(local_dir() / "cache.db")
    assert data["login_required"] is False
    text = cli("status")
    assert text.returncode == 0 and "(local account)" not in text.stderr
    assert "local (embedded" in text.stdout
    offline = status("--offline")
    assert offline["connectivity"] == "unknown"


def test_export_md_reads_the_local_cache():
    cli("new", "Notes")
    cli("send", "written offline")
    done = cli("export", "--format", "md")
    assert done.returncode == 0, done.stderr
    assert "# Notes" in done.stdout and "written offline" in done.stdout


def test_cache_clear_deletes_the_local_cache_and_refuses_with_unsent_actions():
    cli("new", "Notes")
    path = local_dir() / "cache.db"
    refused = cli("cache", "clear", "--yes")
    assert refused.returncode == 1 and "create_conversation queued" in refused.stderr
    assert path.exists()
    assert cli("sync", "--once").returncode == 0
    done = cli("cache", "clear", "--yes")
    assert done.returncode == 0, done.stderr
    assert str(path) in done.stdout and not path.exists()


def test_logout_revokes_the_local_token_and_the_next_command_logs_in_again():
    assert cli("sync", "--once").returncode == 0
    token_file = local_dir() / "token"
    old = token_file.read_text()
    done = cli("logout")
    assert done.returncode == 0, done.stderr
    assert str(token_file) in done.stdout and not token_file.exists()
    assert cli("sync", "--once").returncode == 0
    assert token_file.read_text() != old
    flushed = cli("logout", "--flush")
    assert flushed.returncode == 0, flushed.stderr
    assert not (local_dir() / "cache.db").exists()


def test_sync_once_refuses_while_the_app_runs_the_local_engine():
    from chat_tui.sync.lock import EngineLock

    cli("new", "Notes")
    path = local_dir() / "cache.db"
    lock = EngineLock(path.with_name(path.name + ".lock"))
    lock.acquire()
    try:
        done = cli("sync", "--once")
    finally:
        lock.release()
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert status("--offline")["outbox"]["queued"] == 1


def test_outbox_lists_retries_and_discards_for_the_local_account():
    cli("new", "Plans", "--member", "ghost", "--no-check")
    assert cli("sync", "--once").returncode == 0
    done = cli("outbox", "--json")
    assert done.returncode == 0, done.stderr
    [create] = json.loads(done.stdout)["actions"]
    assert create["kind"] == "create_conversation" and create["state"] == "failed"
    assert create["reason"]
    assert cli("outbox", "retry", str(create["id"])).returncode == 0
    discarded = cli("outbox", "discard", str(create["id"]), "--yes")
    assert discarded.returncode == 0, discarded.stderr
    assert json.loads(cli("outbox", "--json").stdout)["actions"] == []


def test_stop_reaches_the_embedded_server_for_the_local_account():
    """``stop`` starts the embedded server like ``sync``: with no reply being written it
    says so and exits 0; an unknown conversation exits 1 with the reason."""
    cli("new", "Notes", "--assistant")
    assert cli("sync", "--once").returncode == 0
    done = cli("stop")
    assert done.returncode == 0, done.stderr
    assert "no reply is being written" in done.stderr
    unknown = cli("stop", "--conversation", "No such title")
    assert unknown.returncode == 1 and "Traceback" not in unknown.stderr
    assert "No such title" in unknown.stderr


def test_models_lists_the_embedded_servers_models_for_the_local_account():
    done = cli("models", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["models"] and data["offline"] is False
    assert sum(m["default"] for m in data["models"]) == 1
    text = cli("models")
    assert text.returncode == 0 and data["models"][0]["id"] in text.stdout


def test_sync_keeps_running_for_the_local_account_until_interrupted():
    """``chat-tui sync`` (no ``--once``): the embedded server runs for the command, the
    outbox is delivered while it runs, SIGINT ends it with exit 0."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.support.cli import FAST_ENV

    cid = cli("new", "Notes", "--assistant").stdout.strip()
    assert cli("send", "while running").returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "chat_tui.cli", "sync"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **FAST_ENV})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "while running" not in server_bodies_safe(cid):
            time.sleep(0.3)
        assert "while running" in server_bodies_safe(cid)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert status("--offline")["outbox"].get("queued", 0) == 0


def server_bodies_safe(cid: str) -> list[str]:
    """:func:`server_bodies`, or [] while the embedded server has not made its file."""
    try:
        return server_bodies(cid)
    except sqlite3.Error:
        return []


def test_cache_encrypt_rekey_and_decrypt_the_local_cache():
    """``cache encrypt|rekey|decrypt`` act on the local account's cache in place; what it
    holds stays readable by the next command."""
    cli("new", "Notes")
    cli("send", "kept through every rewrite")
    for action, encrypted in (("encrypt", True), ("rekey", True), ("decrypt", False)):
        extra = ("--key-in", "file") if action != "decrypt" else ()
        done = cli("cache", action, *extra)
        assert done.returncode == 0, (action, done.stderr)
        assert status("--offline")["cache"]["encrypted"] is encrypted, action
        assert [m["body"] for m in export()[0]["messages"]] == ["kept through every rewrite"]

"""Database opening and versioned migrations, through the real CLI on real SQLite files."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

SCHEMA_VERSION = 5  # chat_tui.server.db.SCHEMA_VERSION; asserted below through the file


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chat_tui.server", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_fresh_database_is_wal_at_latest_version(tmp_path):
    db = tmp_path / "fresh.db"
    assert (
        cli("add-user", "alice", "--password-stdin", "--db", str(db), stdin="pw\n").returncode == 0
    )
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    hashed = con.execute("SELECT password_hash FROM user WHERE username='alice'").fetchone()[0]
    assert hashed.startswith("$argon2id$") and "pw" not in hashed.split("$")[-1:]
    con.close()


def test_default_db_lives_in_user_data_dir(isolated_user_dirs):
    assert cli("add-user", "alice", "--password-stdin", stdin="pw\n").returncode == 0
    expected = Path(isolated_user_dirs["XDG_DATA_HOME"]) / "chat-tui-server" / "server.db"
    assert expected.is_file()


def test_v1_database_is_upgraded_without_losing_data(tmp_path):
    db = tmp_path / "old.db"
    assert (
        cli("add-user", "alice", "--password-stdin", "--db", str(db), stdin="pw\n").returncode == 0
    )
    # Turn the file into a schema v1 database: no message.reply_to, no v2 indexes.
    con = sqlite3.connect(db)
    for (name,) in con.execute(
        "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='message' "
        "AND (sql LIKE '%reply_to%' OR sql LIKE '%streaming%')"
    ).fetchall():
        con.execute(f'DROP INDEX "{name}"')
    con.execute("ALTER TABLE message DROP COLUMN reply_to")
    con.execute("DROP TABLE login_failure")  # schema v3
    for table, column in (("conversation", "model"), ("conversation", "system_prompt"),
                          ("message", "model"), ("message", "stopped"),
                          ("message", "ask_model"), ("message", "ask_system_prompt")):
        con.execute(f"ALTER TABLE {table} DROP COLUMN {column}")  # schema v4
    con.execute("DROP TABLE departure")  # schema v4
    con.execute("DROP TABLE assistant_lease")  # schema v5
    con.execute("UPDATE schema_version SET version = 1")
    con.commit()
    con.close()
    done = cli("add-user", "bob", "--password-stdin", "--db", str(db), stdin="pw\n")
    assert done.returncode == 0, done.stderr
    con = sqlite3.connect(db)
    assert con.execute("SELECT version FROM schema_version").fetchone() == (SCHEMA_VERSION,)
    columns = {row[1] for row in con.execute("PRAGMA table_info(message)")}
    assert {"reply_to", "model", "stopped", "ask_model", "ask_system_prompt"} <= columns
    columns = {row[1] for row in con.execute("PRAGMA table_info(conversation)")}
    assert {"model", "system_prompt"} <= columns
    users = {u for (u,) in con.execute("SELECT username FROM user")}
    assert {"alice", "bob", "assistant"} <= users
    # The upgraded schema equals a fresh one.
    fresh = tmp_path / "fresh.db"
    cli("add-user", "alice", "--password-stdin", "--db", str(fresh), stdin="pw\n")
    con_fresh = sqlite3.connect(fresh)
    query = "SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
    assert set(con.execute(query)) == set(con_fresh.execute(query))
    for table in ("message", "member", "conversation", "user", "device", "login_failure",
                  "assistant_lease"):
        info = f"PRAGMA table_info({table})"
        assert [r[1:] for r in con.execute(info)] == [r[1:] for r in con_fresh.execute(info)]
    con_fresh.close()
    con.close()


def test_newer_database_is_refused_untouched(tmp_path):
    db = tmp_path / "future.db"
    assert (
        cli("add-user", "alice", "--password-stdin", "--db", str(db), stdin="pw\n").returncode == 0
    )
    con = sqlite3.connect(db)
    con.execute("UPDATE schema_version SET version = 99")
    con.commit()
    con.close()
    for args in (("serve", "--port", "0"), ("add-user", "bob", "--password-stdin")):
        done = cli(*args, "--db", str(db), stdin="pw\n")
        assert done.returncode == 1
        assert "schema version 99" in done.stderr
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM user WHERE username='bob'").fetchone() == (0,)
    con.close()


def test_add_user_rejects_bad_names_and_empty_password(tmp_path):
    db = str(tmp_path / "x.db")
    bad = cli("add-user", "Not Valid!", "--password-stdin", "--db", db, stdin="pw\n")
    assert bad.returncode == 1 and "invalid username" in bad.stderr
    reserved = cli("add-user", "assistant", "--password-stdin", "--db", db, stdin="pw\n")
    assert reserved.returncode == 1 and "reserved" in reserved.stderr
    empty = cli("add-user", "carol", "--password-stdin", "--db", db, stdin="\n")
    assert empty.returncode == 1 and "empty" in empty.stderr


def test_serve_refuses_a_taken_port(server):
    done = cli("serve", "--port", str(server.port), "--db", str(server.db_path))
    assert done.returncode == 1
    assert "cannot listen" in done.stderr

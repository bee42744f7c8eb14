"""Sync rule D4: the full quick_check is skipped only for a file a clean close left as is."""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path

from chat_tui.store import Cache


def _fill(store: Cache) -> str:
    cid = str(uuid.uuid4())
    store.enqueue_create_conversation(cid, "stamp", ["bob"])
    store.enqueue_send(cid, "queued before the restart")
    return cid


def test_rule_d4_clean_close_skips_the_full_check_until_the_file_changes(tmp_path: Path):
    path = tmp_path / "alice.db"
    store = Cache(path, "alice")
    store.open()
    assert store.full_check is False  # a new file: nothing to check
    _fill(store)
    store.close()
    assert Path(str(path) + ".clean").exists()

    again = Cache(path, "alice")
    again.open()
    assert again.full_check is False  # exactly as the clean close left it
    assert again.outbox_counts()["queued"] == 2
    again.close()

    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # changed behind our back
    touched = Cache(path, "alice")
    touched.open()
    assert touched.full_check is True
    touched.close()


def test_rule_d4_a_crash_leaves_a_wal_and_gets_the_full_check(tmp_path: Path):
    path = tmp_path / "alice.db"
    store = Cache(path, "alice")
    store.open()
    store.close()
    crashed = Cache(path, "alice")
    crashed.open()
    _fill(crashed)  # never closed: the WAL stays, as after kill -9
    assert Path(str(path) + "-wal").exists()
    after = Cache(path, "alice")
    after.open()
    assert after.full_check is True
    assert after.outbox_counts()["queued"] == 2
    after.close()
    crashed.close()


def test_rule_d4_damage_after_a_clean_close_is_still_found(tmp_path: Path):
    path = tmp_path / "alice.db"
    store = Cache(path, "alice")
    store.open()
    _fill(store)
    store.close()
    con = sqlite3.connect(path)
    page_size = con.execute("PRAGMA page_size").fetchone()[0]
    pages = [r[0] for r in con.execute(
        "SELECT pageno FROM dbstat WHERE name IN (SELECT name FROM sqlite_schema "
        "WHERE type = 'index' AND tbl_name = 'message')")]
    con.close()
    with path.open("r+b") as f:
        for page in pages:
            f.seek((page - 1) * page_size)
            f.write(b"\xff" * page_size)
    damaged = Cache(path, "alice")
    damaged.open()
    assert damaged.full_check is True
    assert damaged.recovery is not None and damaged.recovery.recovered == 1
    damaged.close()

"""Sync rules D6-D8: the cache encrypted at rest with SQLCipher, where its key lives, and a
missing or wrong key. Real SQLCipher files on disk; the keyring of the tests refuses
everything (``tests/support/fixtures.py``), so the keyring place is covered by its refusal
and the key file and passphrase places by real files."""

from __future__ import annotations

import os
import sqlite3
import stat
import uuid

import pytest

from chat_tui.config import cachekeys
from chat_tui.store import Cache
from chat_tui.store.cipher import SQLITE_HEADER, is_plain_sqlite, new_key, open_raw_connection
from chat_tui.store.errors import CacheLocked
from tests.support.cache import choose_cache_key, file_bytes, fill_with_secret, secret_cache
from tests.support.payloads import sync_response, wire_conversation, wire_message

SECRET = "the plaintext that must never reach the disk 8f3a"


def test_rule_d6_an_encrypted_cache_holds_no_plaintext_of_a_known_message(tmp_path):
    path = tmp_path / "alice.db"
    store = Cache(path, "alice", key=new_key())
    store.open()
    cid = fill_with_secret(store, SECRET)
    assert store.search("plaintext")  # FTS5 works encrypted
    # Checked while open (WAL present) and after the clean close (checkpointed).
    for phase in ("open", "closed"):
        data = file_bytes(path)
        assert len(data) > 4096
        assert SECRET.encode() not in data, phase
        assert b"8f3a" not in data and b"SQLite format 3" not in data, phase
        assert b"alice" not in data and cid.encode() not in data, phase
        if phase == "open":
            store.close()
    assert is_plain_sqlite(path) is False
    # A plain cache written the same way does hold it (the check above can fail).
    secret_cache(tmp_path / "plain.db", SECRET, key=None)
    assert SECRET.encode() in file_bytes(tmp_path / "plain.db")
    assert (tmp_path / "plain.db").read_bytes()[:16] == SQLITE_HEADER


def test_rule_d6_raw_key_wal_synchronous_and_fts5_hold_encrypted(tmp_path):
    key = new_key()
    store = Cache(tmp_path / "alice.db", "alice", key=key)
    store.open()
    db = store.db
    assert db.execute_sql("PRAGMA cipher_version").fetchone()[0].startswith("4.")
    assert db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute_sql("PRAGMA synchronous").fetchone()[0] == 2
    # SQLite's default page cache and temporary storage, as a plain cache has them (the
    # sqlcipher3 wheel's build defaults to 8 MiB and memory).
    plain = sqlite3.connect(":memory:")
    for name in ("cache_size", "temp_store"):
        want = plain.execute(f"PRAGMA {name}").fetchone()[0] or 1  # 0: the build's, FILE
        assert int(db.execute_sql(f"PRAGMA {name}").fetchone()[0]) == want, name
    plain.close()
    fill_with_secret(store, SECRET)
    store.close()
    # Another connection with the raw key reads it; a plain one, or another key, does not.
    con = open_raw_connection(tmp_path / "alice.db", key, readonly=True)
    assert con.execute("SELECT count(*) FROM outbox").fetchone()[0] == 1
    con.close()
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(tmp_path / "alice.db").execute("SELECT * FROM outbox").fetchall()
    with pytest.raises(CacheLocked):
        open_raw_connection(tmp_path / "alice.db", new_key())


def test_rule_d6_a_damaged_encrypted_cache_is_recovered_with_its_outbox(tmp_path):
    key = new_key()
    path = tmp_path / "alice.db"
    store = Cache(path, "alice", key=key)
    store.open()
    cid = str(uuid.uuid4())
    store.apply_sync(sync_response("1", [(wire_conversation(cid), [
        wire_message(cid, n, "bob", f"history {n} " + "x" * 400) for n in range(1, 200)],
        False)]))
    mid = store.enqueue_send(cid, "still queued")
    store.close()
    # Damage the pages of the message table's indexes (read through the key).
    con = open_raw_connection(path, key)
    page_size = int(con.execute("PRAGMA page_size").fetchone()[0])
    pages = [r[0] for r in con.execute(
        "SELECT rootpage FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'message'")]
    con.close()
    assert pages and 1 not in pages
    with path.open("r+b") as f:
        for page in pages:
            f.seek((page - 1) * page_size)
            f.write(os.urandom(page_size))
    again = Cache(path, "alice", key=key)
    again.open()
    assert again.recovery is not None and again.recovery.recovered == 1
    assert again.recovery.moved_to.exists()
    assert [a.message_id for a in again.outbox_rows()] == [mid]
    assert again.key == key
    again.close()
    assert is_plain_sqlite(path) is False


def test_rule_d7_two_connections_on_one_encrypted_cache_write_at_once(tmp_path):
    key = new_key()
    one = Cache(tmp_path / "alice.db", "alice", key=key)
    one.open()
    two = Cache(tmp_path / "alice.db", "alice", key=key)
    two.open()
    cid = str(uuid.uuid4())
    one.apply_sync(sync_response("1", [(wire_conversation(cid), [], False)]))
    for n in range(20):
        (one if n % 2 else two).enqueue_send(cid, f"m{n}")
    assert len(one.outbox_rows()) == len(two.outbox_rows()) == 20
    one.close()
    two.close()


def test_rule_d7_a_new_cache_uses_the_key_file_when_config_says_so(tmp_path):
    choose_cache_key("file")
    path = tmp_path / "alice.db"
    secret_cache(path, SECRET)
    keyfile = cachekeys.key_file(path)
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    assert stat.S_IMODE(keyfile.parent.stat().st_mode) == 0o700
    assert cachekeys.key_location(path) == {"encrypted": True, "key": "file",
                                            "key_file": str(keyfile)}
    assert SECRET.encode() not in file_bytes(path)
    assert keyfile.read_text() not in (cachekeys.marker_path(path).read_text())
    again = Cache(path, "alice")  # the key is found again from the marker
    again.open()
    assert again.key == bytes.fromhex(keyfile.read_text())
    assert again.has_unsent()
    again.close()


def test_rule_d7_auto_without_a_working_keyring_leaves_a_new_cache_plain(tmp_path):
    assert cachekeys.load_key_choice() == "auto" and not cachekeys.keyring_works()
    store = Cache(tmp_path / "alice.db", "alice")
    store.open()
    store.close()
    assert store.key is None and is_plain_sqlite(tmp_path / "alice.db")
    assert cachekeys.key_location(tmp_path / "alice.db")["encrypted"] is False


def test_rule_d7_keyring_choice_with_a_refusing_keyring_stays_plain(tmp_path):
    choose_cache_key("keyring")
    store = Cache(tmp_path / "alice.db", "alice")
    store.open()
    store.close()
    assert store.key is None and is_plain_sqlite(tmp_path / "alice.db")


def test_rule_d7_a_bad_cache_choice_is_a_clear_error(tmp_path):
    choose_cache_key("fort-knox")
    with pytest.raises(ValueError, match=r"\[cache\] key: want one of"):
        cachekeys.load_key_choice()


def test_rule_d7_passphrase_key_is_derived_with_scrypt_and_a_wrong_one_locks(tmp_path):
    choose_cache_key("passphrase")
    answers = iter(["correct horse", "correct horse", "correct horse", "wrong horse"])
    cachekeys.set_passphrase_prompt(lambda question: next(answers))
    try:
        path = tmp_path / "alice.db"
        secret_cache(path, SECRET)
        marker = cachekeys.read_marker(path)
        assert marker["where"] == "passphrase" and len(bytes.fromhex(marker["salt"])) == 16
        assert SECRET.encode() not in file_bytes(path)
        cachekeys._derived.clear()  # as a new process: asked again
        again = Cache(path, "alice")
        again.open()
        assert again.has_unsent()
        again.close()
        before = path.read_bytes()
        cachekeys._derived.clear()
        with pytest.raises(CacheLocked, match="key is missing or wrong"):
            Cache(path, "alice").open()
        assert path.read_bytes() == before
    finally:
        cachekeys.set_passphrase_prompt(cachekeys._default_prompt)


def test_rule_d8_a_lost_key_file_is_a_clear_state_and_the_file_is_untouched(tmp_path):
    choose_cache_key("file")
    path = tmp_path / "alice.db"
    secret_cache(path, SECRET)
    cachekeys.key_file(path).unlink()
    cachekeys._derived.clear()  # as a new process
    before = path.read_bytes()
    with pytest.raises(CacheLocked) as caught:
        Cache(path, "alice").open()
    assert "key file" in str(caught.value) and "cache reset" in str(caught.value)
    assert path.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if ".corrupt" in p.name]


def test_rule_d8_a_wrong_key_never_moves_the_file_aside(tmp_path):
    path = tmp_path / "alice.db"
    secret_cache(path, SECRET, key=new_key())
    before = path.read_bytes()
    with pytest.raises(CacheLocked):
        Cache(path, "alice", key=new_key()).open()
    with pytest.raises(CacheLocked):  # no marker, no key: not a plain file either
        Cache(path, "alice", key=new_key()).open()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alice.db", "alice.db.clean"]


OPEN_PROBE = r"""
import json, sys, time
from pathlib import Path
t = time.perf_counter()
from chat_tui.store import Cache
store = Cache(Path(sys.argv[1]), "alice")
store.open()
store.list_conversations()
took = time.perf_counter() - t
print(json.dumps({"sqlcipher3": "sqlcipher3" in sys.modules, "keyring": "keyring" in sys.modules,
                  "encrypted": store.key is not None, "ms": took * 1000}))
"""


def _probe(path) -> dict:
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", OPEN_PROBE, str(path)], capture_output=True,
                         text=True, timeout=60, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_rule_d6_opening_a_plain_cache_loads_no_cipher_and_no_keyring(tmp_path):
    secret_cache(tmp_path / "plain.db", SECRET, key=None)
    seen = _probe(tmp_path / "plain.db")
    assert seen["encrypted"] is False
    assert seen["sqlcipher3"] is False and seen["keyring"] is False


def test_rule_d6_opening_a_key_file_cache_loads_the_cipher_but_no_keyring(tmp_path):
    choose_cache_key("file")
    secret_cache(tmp_path / "alice.db", SECRET)
    seen = _probe(tmp_path / "alice.db")
    assert seen["encrypted"] is True
    assert seen["sqlcipher3"] is True and seen["keyring"] is False


def test_rule_d7_the_first_frame_reader_opens_an_encrypted_cache_read_only(tmp_path):
    from chat_tui.store.cipher import open_cache_readonly

    choose_cache_key("file")
    path = tmp_path / "alice.db"
    secret_cache(path, SECRET)
    con = open_cache_readonly(path)
    assert con.execute("SELECT count(*) FROM outbox").fetchone()[0] == 1
    with pytest.raises(Exception, match="readonly"):
        con.execute("DELETE FROM outbox")
    con.close()
    cachekeys.key_file(path).unlink()
    cachekeys._derived.clear()  # as a new process
    with pytest.raises(CacheLocked):
        open_cache_readonly(path)


async def test_rule_d6_the_engine_worker_commits_normal_and_user_actions_full_encrypted(
        engines, login_account):
    """Sync rule D1a on an encrypted cache: the worker's connection is SQLCipher with
    ``synchronous=NORMAL``, the user actions' connection ``FULL``; a send is delivered."""
    from chat_tui.store.cipher import is_plain_sqlite
    from tests.support.waiting import wait_for

    choose_cache_key("file")
    engine = engines.make(login_account("alice"))
    await engine.start()
    store = engine.store

    def pragma(name: str):
        return store.db.execute_sql(f"PRAGMA {name}").fetchone()[0]

    assert store.key is not None and is_plain_sqlite(store.path) is False
    assert await engine._db(lambda: pragma("synchronous")) == 1
    assert (await engine._db(lambda: pragma("cipher_version"))).startswith("4.")
    assert await engine._db(lambda: pragma("journal_mode")) == "wal"
    assert pragma("synchronous") == 2
    cid = engine.create_conversation("durability", ["bob"])
    mid = engine.send(cid, SECRET)
    await wait_for(lambda: (m := store.get_message(mid)) and m.state == "sent")
    assert SECRET.encode() not in file_bytes(store.path)


def test_rule_d7_the_local_account_cache_is_encrypted_and_logout_flush_removes_its_key():
    """The local account (no login, the embedded server) with ``[cache] key = "file"``: its
    cache is encrypted, ``cache clear`` and ``logout --flush`` remove the key with it."""
    from chat_tui.launch import local_dir
    from tests.support.cli import cli

    choose_cache_key("file")
    assert cli("new", "Notes").returncode == 0
    assert cli("send", SECRET).returncode == 0
    path = local_dir() / "cache.db"
    keyfile = cachekeys.key_file(path)
    assert is_plain_sqlite(path) is False and keyfile.exists()
    assert SECRET.encode() not in file_bytes(path)
    assert cli("sync", "--once").returncode == 0
    done = cli("cache", "clear", "--yes")
    assert done.returncode == 0, done.stderr
    assert not path.exists() and not keyfile.exists()
    assert not cachekeys.marker_path(path).exists()
    assert cli("sync", "--once").returncode == 0  # a fresh cache, a fresh key
    assert keyfile.exists() and is_plain_sqlite(path) is False
    done = cli("logout", "--flush")
    assert done.returncode == 0, done.stderr
    assert not path.exists() and not keyfile.exists()
    assert not cachekeys.marker_path(path).exists()

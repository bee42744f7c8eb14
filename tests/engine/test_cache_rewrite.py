"""Sync rule D9: ``cache encrypt``, ``cache decrypt`` and ``cache rekey`` switch a cache in
place, crash-safe: real files, and real ``chat-tui`` processes killed with SIGKILL while
they work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from chat_tui.config import cachekeys, load_accounts
from chat_tui.store import Cache
from chat_tui.store.cipher import is_plain_sqlite
from chat_tui.store.rewrite import decrypt_cache, encrypt_cache, rekey_cache
from tests.support.cache import choose_cache_key
from tests.support.cli import FAST_ENV, login
from tests.support.payloads import sync_response, wire_conversation, wire_message

QUEUED = ["first unsent", "second unsent", "third unsent"]


def _fill(path: Path, messages: int) -> str:
    store = Cache(path, "alice")
    store.open()
    cid = str(uuid.uuid4())
    store.apply_sync(sync_response("1", [(wire_conversation(cid), [
        wire_message(cid, n, "bob", f"history {n} " + "lorem ipsum " * 20)
        for n in range(1, messages + 1)], False)]))
    for body in QUEUED:
        store.enqueue_send(cid, body)
    store.save_draft(cid, "half a thought")
    store.close()
    return cid


def _intact(path: Path, cid: str, messages: int) -> None:
    """The cache opens with the key config keeps, whole: outbox, draft, history, search."""
    store = Cache(path, "alice")
    store.open()
    try:
        assert store.recovery is None
        assert [a.payload["body"] for a in store.outbox_rows()] == QUEUED
        assert store.get_draft(cid).text == "half a thought"
        assert store.db.execute_sql("SELECT count(*) FROM message").fetchone()[0] == (
            messages + len(QUEUED))
        assert store.search("unsent")
        assert store.db.execute_sql("PRAGMA quick_check").fetchone()[0] == "ok"
    finally:
        store.close()


def test_rule_d9_encrypt_rekey_decrypt_round_trip_keeps_everything(tmp_path):
    path = tmp_path / "alice.db"
    cid = _fill(path, 300)
    encrypt_cache(path, "file")
    assert is_plain_sqlite(path) is False
    first = cachekeys.key_file(path).read_text()
    _intact(path, cid, 300)
    rekey_cache(path, "file")
    second = cachekeys.key_file(path).read_text()
    assert second != first and cachekeys.read_marker(path) == {"where": "file"}
    assert not list(cachekeys.key_file(path).parent.glob("*.next"))
    _intact(path, cid, 300)
    decrypt_cache(path)
    assert is_plain_sqlite(path) is True
    assert not cachekeys.marker_path(path).exists() and not cachekeys.key_file(path).exists()
    _intact(path, cid, 300)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alice.db", "alice.db.clean"]


def test_rule_d9_a_refused_switch_changes_nothing(tmp_path):
    path = tmp_path / "alice.db"
    _fill(path, 10)
    before = path.read_bytes()
    with pytest.raises(Exception, match="not encrypted"):
        decrypt_cache(path)
    with pytest.raises(Exception, match="not encrypted"):
        rekey_cache(path, "file")
    assert path.read_bytes() == before
    encrypt_cache(path, "file")
    with pytest.raises(Exception, match="already encrypted"):
        encrypt_cache(path, "file")


def test_rule_d9_kill_9_at_any_point_leaves_the_old_or_the_new_cache_whole(server):
    """``chat-tui cache encrypt|rekey|decrypt`` killed at spread delays across its run:
    after every kill the cache opens with the key config keeps, outbox and drafts intact."""
    choose_cache_key("none")
    login(server.url)
    path = load_accounts()[-1].db_path
    messages = 6000
    cid = _fill(path, messages)
    env = {**os.environ, **FAST_ENV}

    def run(command: str, delay: float | None) -> int | None:
        proc = subprocess.Popen([sys.executable, "-m", "chat_tui.cli", "cache", command,
                                 *(["--key-in", "file"] if command != "decrypt" else [])],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if delay is None:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            return 0
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        return proc.returncode

    started = time.monotonic()
    run("encrypt", None)
    full = time.monotonic() - started
    run("decrypt", None)
    _intact(path, cid, messages)
    kills = states = 0
    killed_from: set[bool] = set()  # plain (True) and encrypted (False) caches killed mid-way
    # Twelve kills spread over the run (the last ones land after the swap, also when a run
    # is slower than the first). When the machine's load makes runs end before their kill,
    # or never lets one finish, more follow (at most 30 runs) until six have landed mid-way
    # and some from each state: a whole run first switches to the state not killed from.
    for n in range(30):
        if n >= 12 and kills >= 6 and killed_from == {True, False}:
            break
        plain = is_plain_sqlite(path)
        if n >= 12 and len(killed_from) == 1 and plain in killed_from:
            run("encrypt" if plain else "decrypt", None)
            _intact(path, cid, messages)
            continue
        fraction = 0.15 + 1.2 * n / 11 if n < 12 else 0.1 + 0.5 * ((n - 12) % 6) / 5
        command = "encrypt" if plain else ("rekey", "decrypt")[n % 2]
        if run(command, full * fraction) == -signal.SIGKILL:
            kills += 1
            killed_from.add(plain)
        _intact(path, cid, messages)
        states += 1
    assert kills >= 6, f"only {kills} of {states} runs were killed mid-way (full run {full:.2f} s)"
    assert killed_from == {True, False}
    assert states >= 12

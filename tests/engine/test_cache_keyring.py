"""Sync rule D7 with a keyring that works (``working_keyring``: keyrings.alt's file keyring,
chosen through keyring's own ``PYTHON_KEYRING_BACKEND``): a new cache is encrypted by
default, its key is kept in the keyring and found there by a new process, the first frame
reads it without Peewee, ``status`` names the keyring, and ``cache clear``, ``cache reset``,
``cache rekey|decrypt`` and ``logout --flush`` move or remove the entry."""

from __future__ import annotations

import json
import subprocess
import sys

import keyring

from chat_tui.config import cachekeys, load_accounts
from chat_tui.store import Cache
from chat_tui.store.cipher import is_plain_sqlite
from chat_tui.store.rewrite import decrypt_cache, rekey_cache
from tests.support.cache import choose_cache_key, secret_cache
from tests.support.cli import cli, login

SECRET = "kept under a key the keyring holds 51c2"
#: The marker of a cache whose key the tests' keyring keeps: the place and the backend.
KEYRING_MARKER = {"where": "keyring", "backend": "keyrings.alt.file.PlaintextKeyring"}


def _entry(path, pending: bool = False) -> str | None:
    return keyring.get_password(cachekeys.SERVICE,
                                str(path.absolute()) + ("#next" if pending else ""))


OPEN_PROBE = r"""
import json, sys
from pathlib import Path
from chat_tui.store import Cache
store = Cache(Path(sys.argv[1]), "alice")
store.open()
import keyring
print(json.dumps({"encrypted": store.key is not None, "key": store.key.hex(),
                  "unsent": store.has_unsent(), "backend": type(keyring.get_keyring()).__name__}))
store.close()
"""


def test_rule_d7_auto_with_a_working_keyring_encrypts_a_new_cache_keyed_there(
        tmp_path, working_keyring):
    assert cachekeys.load_key_choice() == "auto" and cachekeys.keyring_works()
    path = tmp_path / "alice.db"
    _, key = secret_cache(path, SECRET)
    assert key is not None and is_plain_sqlite(path) is False
    assert _entry(path) == key.hex()
    assert cachekeys.read_marker(path) == KEYRING_MARKER
    assert cachekeys.key_location(path) == {"encrypted": True, "key": "keyring",
                                            "key_file": None}
    assert not cachekeys.key_file(path).exists()
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert SECRET.encode() not in data and key.hex().encode() not in data
    # A new process finds the key in the keyring (the variable names the backend).
    out = subprocess.run([sys.executable, "-c", OPEN_PROBE, str(path)], capture_output=True,
                         text=True, timeout=60, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen == {"encrypted": True, "key": key.hex(), "unsent": True,
                    "backend": "PlaintextKeyring"}


def test_rule_d7_an_explicit_none_keeps_a_new_cache_plain_beside_a_working_keyring(
        tmp_path, working_keyring):
    choose_cache_key("none")
    store = Cache(tmp_path / "alice.db", "alice")
    store.open()
    store.close()
    assert store.key is None and is_plain_sqlite(tmp_path / "alice.db")
    assert _entry(tmp_path / "alice.db") is None


def test_rule_d8_a_key_gone_from_the_keyring_is_the_locked_state(tmp_path, working_keyring):
    import pytest

    from chat_tui.store.errors import CacheLocked

    path = tmp_path / "alice.db"
    secret_cache(path, SECRET)
    keyring.delete_password(cachekeys.SERVICE, str(path.absolute()))
    cachekeys.forget_remembered(path)  # as a new process
    before = path.read_bytes()
    with pytest.raises(CacheLocked, match="the OS keyring has no key for it"):
        Cache(path, "alice").open()
    assert path.read_bytes() == before


def test_rule_d9_rekey_and_decrypt_with_the_key_in_the_keyring(tmp_path, working_keyring):
    path = tmp_path / "alice.db"
    cid, old = secret_cache(path, SECRET)
    rekey_cache(path, "keyring")
    new = _entry(path)
    assert new is not None and new != old.hex()
    assert _entry(path, pending=True) is None  # promoted: the only key
    assert cachekeys.read_marker(path) == KEYRING_MARKER
    cachekeys.forget_remembered(path)
    again = Cache(path, "alice")
    again.open()
    assert again.key.hex() == new and again.get_draft(cid).text == SECRET + " (draft)"
    again.close()
    decrypt_cache(path)
    assert is_plain_sqlite(path) is True and _entry(path) is None
    assert cachekeys.read_marker(path) is None


# The first frame of a cache whose key is in the keyring: keyring is asked once, before the
# frame; Peewee still loads after it (sync rule D6).
FIRST_FRAME = r"""
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from chat_tui.launch import first_frame_reader
reader = first_frame_reader(Path(sys.argv[1]), "alice")
took = time.perf_counter() - t0
views = reader.messages_before(reader.get_ui_state().last_conversation_id)
print(json.dumps({"bodies": [v.body for v in views], "modules": sorted(sys.modules),
                  "ms": round(took * 1000, 1)}))
reader.close()
"""


def test_rule_d6_first_frame_reads_a_keyring_cache_without_the_orm(tmp_path, working_keyring):
    import os

    path = tmp_path / "alice.db"
    secret_cache(path, SECRET)
    out = subprocess.run([sys.executable, "-c", FIRST_FRAME, str(path)], capture_output=True,
                         text=True, timeout=60, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["bodies"] == [SECRET, SECRET + " (queued)"]
    modules = set(seen["modules"])
    assert "keyring" in modules and "sqlcipher3" in modules
    assert "peewee" not in modules and "chat_tui.store.cache" not in modules
    # With no backend named in keyring's configuration, the one the marker names is asked
    # directly: keyring's detection (every installed backend imported, the chainer built)
    # does not run before the first frame.
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHON_KEYRING_BACKEND", "DBUS_SESSION_BUS_ADDRESS")}
    out = subprocess.run([sys.executable, "-c", FIRST_FRAME, str(path)], capture_output=True,
                         text=True, timeout=60, check=True, env=env)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["bodies"] == [SECRET, SECRET + " (queued)"]
    modules = set(seen["modules"])
    assert "keyrings.alt.file" in modules and "peewee" not in modules
    assert "keyring.backends.chainer" not in modules
    assert "keyring.backends.SecretService" not in modules


def test_rule_d7_cli_status_names_the_keyring_and_logout_flush_removes_the_key(
        server, working_keyring):
    login(server.url)
    path = load_accounts()[-1].db_path
    cid = cli("new", "Keyring", "--member", "bob").stdout.strip()
    assert cli("send", "-c", cid, SECRET).returncode == 0
    assert is_plain_sqlite(path) is False  # encrypted by default: the keyring works
    key = _entry(path)
    assert key is not None and len(bytes.fromhex(key)) == 32
    data = json.loads(cli("status", "--json", "--offline").stdout)
    assert data["cache"] == {"path": str(path), "encrypted": True, "key": "keyring",
                             "key_file": None}
    text = cli("status", "--offline").stdout
    assert "encrypted, key in the OS keyring" in text and key not in text
    assert cli("sync", "--once").returncode == 0
    # cache clear removes the entry with the file; the next command makes a fresh key.
    done = cli("cache", "clear", "--yes")
    assert done.returncode == 0, done.stderr
    assert not path.exists() and _entry(path) is None
    assert cli("sync", "--once").returncode == 0
    fresh = _entry(path)
    assert fresh is not None and fresh != key and is_plain_sqlite(path) is False
    done = cli("logout", "--flush")
    assert done.returncode == 0, done.stderr
    assert not path.exists() and _entry(path) is None
    assert not cachekeys.marker_path(path).exists()


def test_rule_d8_cache_reset_moves_the_keyring_entry_with_the_file(server, working_keyring):
    login(server.url)
    path = load_accounts()[-1].db_path
    cid = cli("new", "Reset", "--member", "bob").stdout.strip()
    assert cli("send", "-c", cid, SECRET).returncode == 0
    key = _entry(path)
    # The entry is replaced by a wrong key: the cache is locked, reset sets it aside and
    # its keyring entry follows it to the new name.
    wrong = "00" * 32
    keyring.set_password(cachekeys.SERVICE, str(path.absolute()), wrong)
    done = cli("sync", "--once")
    assert done.returncode == 1 and "cannot be opened" in done.stderr
    done = cli("cache", "reset", "--yes")
    assert done.returncode == 0, done.stderr
    [aside] = [p for p in path.parent.iterdir()
               if p.name.startswith(path.name + ".corrupt") and p.suffix != ".json"
               and not p.name.endswith(("-wal", "-shm"))]
    assert cachekeys.read_marker(aside) == KEYRING_MARKER
    assert _entry(aside) == wrong and _entry(path) is None
    assert cli("sync", "--once").returncode == 0  # a fresh cache, with a fresh key
    assert _entry(path) not in (None, key, wrong)
    # Its key comes back under the new name: the old file opens, its unsent message in it.
    keyring.set_password(cachekeys.SERVICE, str(aside.absolute()), key)
    old = Cache(aside, "alice")
    old.open()
    assert [a.payload["body"] for a in old.outbox_rows() if a.kind == "send"] == [SECRET]
    old.close()


DETECTED = r"""
import json, sys
from pathlib import Path
import keyring, keyring.core
from chat_tui.config import cachekeys
from chat_tui.store import Cache
store = Cache(Path(sys.argv[1]), "alice")
store.open()
store.close()
backend = keyring.get_keyring()
print(json.dumps({"backend": type(backend).__name__, "priority": backend.priority,
                  "chosen": cachekeys.keyring_chosen(), "works": cachekeys.keyring_works(),
                  "encrypted": store.key is not None}))
"""


def test_rule_d7_a_detected_plaintext_keyring_does_not_count_as_a_working_keyring(
        tmp_path, monkeypatch):
    """Without a backend named in keyring's configuration, keyring detects one; the
    plaintext file keyring of keyrings.alt (installed with the tests) keeps a key no safer
    than the key file, so ``auto`` leaves the new cache plain. No D-Bus session: nothing
    outside the test's own directories can be reached."""
    import os

    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHON_KEYRING_BACKEND", "DBUS_SESSION_BUS_ADDRESS")}
    out = subprocess.run([sys.executable, "-c", DETECTED, str(tmp_path / "alice.db")],
                         capture_output=True, text=True, timeout=60, check=True, env=env)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["backend"] == "PlaintextKeyring" and seen["priority"] < 1
    assert seen["chosen"] is False and seen["works"] is False
    assert seen["encrypted"] is False and is_plain_sqlite(tmp_path / "alice.db")
    # Named in keyringrc.cfg (keyring's own configuration file), the same backend counts.
    from keyring.util import platform_

    monkeypatch.delenv("PYTHON_KEYRING_BACKEND")
    rc = platform_.config_root() / "keyringrc.cfg"
    rc.parent.mkdir(parents=True, exist_ok=True)
    rc.write_text("[backend]\ndefault-keyring=keyrings.alt.file.PlaintextKeyring\n")
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    out = subprocess.run([sys.executable, "-c", DETECTED, str(tmp_path / "bob.db")],
                         capture_output=True, text=True, timeout=60, check=True, env=env)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["backend"] == "PlaintextKeyring"
    assert seen["chosen"] is True and seen["works"] is True and seen["encrypted"] is True
    assert is_plain_sqlite(tmp_path / "bob.db") is False

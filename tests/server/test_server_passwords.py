"""Passwords (docs/api.md, POST /v1/login, Passwords): argon2id hashes, legacy scrypt hashes
upgraded at the next successful login, and a reset through ``chat-tui-server add-user``
that revokes the user's tokens unless ``--keep-tokens``."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from contextlib import closing

import httpx


def stored_hash(server, name: str) -> str:
    with closing(sqlite3.connect(server.db_path)) as con:
        return con.execute("SELECT password_hash FROM user WHERE username = ?", (name,)).fetchone()[0]


def legacy_scrypt(password: str) -> str:
    """The hash format of earlier versions: scrypt N=2^14, r=8, p=1."""
    salt = bytes(range(16))
    key = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt${2**14}$8$1${salt.hex()}${key.hex()}"


def login_status(server, name: str, password: str) -> int:
    r = httpx.post(f"{server.url}/v1/login", json={"username": name, "password": password})
    return r.status_code


def reset(server, name: str, password: str, *extra: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chat_tui.server", "add-user", name, "--password-stdin",
         "--db", str(server.db_path), *extra],
        input=password + "\n", capture_output=True, text=True, timeout=60,
        env=server._environment(),
    )
    assert done.returncode == 0, done.stderr


def test_rule_passwords_are_argon2id(server_factory):
    server = server_factory.start(users={"alice": "alice-pw"})
    encoded = stored_hash(server, "alice")
    assert encoded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert "alice-pw" not in encoded
    assert login_status(server, "alice", "alice-pw") == 200
    assert login_status(server, "alice", "wrong") == 401


def test_rule_passwords_legacy_scrypt_upgraded_at_login(server_factory):
    server = server_factory.start(users={"alice": "alice-pw"})
    with closing(sqlite3.connect(server.db_path)) as con, con:
        con.execute("UPDATE user SET password_hash = ? WHERE username = 'alice'",
                    (legacy_scrypt("old-pw"),))
    assert login_status(server, "alice", "wrong") == 401
    assert stored_hash(server, "alice").startswith("scrypt$")  # a failure changes nothing
    assert login_status(server, "alice", "old-pw") == 200
    upgraded = stored_hash(server, "alice")
    assert upgraded.startswith("$argon2id$")
    assert login_status(server, "alice", "old-pw") == 200
    assert login_status(server, "alice", "wrong") == 401
    assert stored_hash(server, "alice") == upgraded  # no rehash of a current hash


def test_rule_passwords_reset_revokes_tokens(server_factory):
    server = server_factory.start(users={"alice": "alice-pw", "bob": "bob-pw"})
    before = [server.login("alice", "alice-pw")["access_token"] for _ in range(2)]
    bobs = server.login("bob", "bob-pw")["access_token"]
    reset(server, "alice", "new-pw")
    for token in before:
        r = httpx.get(f"{server.url}/v1/conversations",
                      headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, r.text
    r = httpx.get(f"{server.url}/v1/conversations", headers={"Authorization": f"Bearer {bobs}"})
    assert r.status_code == 200  # other users keep theirs
    assert login_status(server, "alice", "alice-pw") == 401
    after = server.login("alice", "new-pw")["access_token"]
    r = httpx.get(f"{server.url}/v1/conversations", headers={"Authorization": f"Bearer {after}"})
    assert r.status_code == 200


def test_rule_passwords_reset_keep_tokens(server_factory):
    server = server_factory.start(users={"alice": "alice-pw"})
    token = server.login("alice", "alice-pw")["access_token"]
    reset(server, "alice", "new-pw", "--keep-tokens")
    r = httpx.get(f"{server.url}/v1/conversations", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert login_status(server, "alice", "new-pw") == 200
    assert login_status(server, "alice", "alice-pw") == 401


def test_rule_passwords_reset_revokes_tokens_the_running_server_already_trusts(
        server_factory):
    """docs/api.md rule P2 on SQLite: a token the running server has verified (and keeps in
    its token cache) is refused within a second of a reset made by another process
    (``chat-tui-server add-user``), not only when the cache entry expires."""
    import time

    server = server_factory.start(users={"alice": "alice-pw"})
    token = server.login("alice", "alice-pw")["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{server.url}/v1/conversations", headers=headers).status_code == 200
    reset(server, "alice", "new-pw")
    deadline = time.monotonic() + 3
    status = 200
    while time.monotonic() < deadline and status == 200:
        status = httpx.get(f"{server.url}/v1/conversations", headers=headers).status_code
        time.sleep(0.1)
    assert status == 401

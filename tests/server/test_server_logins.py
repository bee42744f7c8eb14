"""Login throttling (docs/api.md, ``POST /v1/login``, Throttling): failed logins counted
per username and per client address in the database (shared by every process on it),
429 with ``Retry-After`` past a limit, and one log line per failed login that names the
user and the address but never the password."""

from __future__ import annotations

import re

import httpx
import pytest

LIMITS = ["--login-failures-per-account", "3", "--login-failures-per-address", "8",
          "--login-window", "60"]


def post_login(server, name: str, password: str) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/login", json={"username": name, "password": password},
                      timeout=30)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[
    pytest.mark.postgres, pytest.mark.xdist_group("postgres")])])
def start(request, server_factory):
    """``start() -> ServerProcess`` with the throttle limits above; every call on one test
    starts another process on the same database (SQLite file or PostgreSQL)."""
    first = []

    def make():
        if not first:
            db = request.getfixturevalue("pg_url") if request.param == "postgres" else None
            server = server_factory.start(extra_args=LIMITS, db=db,
                                          users={"alice": "alice-pw", "bob": "bob-pw"})
            first.append(server)
            return server
        return server_factory.start(extra_args=LIMITS, db=str(first[0].db_path))

    return make


def assert_throttled(r: httpx.Response, window: int = 60) -> None:
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= window


def test_rule_login_throttle_per_account(start):
    server = start()
    for _ in range(3):
        assert post_login(server, "alice", "wrong").status_code == 401
    assert_throttled(post_login(server, "alice", "alice-pw"))  # even the right password
    assert_throttled(post_login(server, "ALICE", "wrong"))  # names are case-folded
    assert post_login(server, "bob", "bob-pw").status_code == 200  # other accounts are not
    # an unknown name is throttled exactly like a known one
    for _ in range(3):
        assert post_login(server, "nosuchuser", "wrong").status_code == 401
    unknown = post_login(server, "nosuchuser", "x")
    assert_throttled(unknown)
    assert unknown.json() == post_login(server, "alice", "x").json()


def test_rule_login_throttle_success_forgets_the_account_failures(start):
    server = start()
    for _ in range(2):
        assert post_login(server, "alice", "wrong").status_code == 401
    assert post_login(server, "alice", "alice-pw").status_code == 200
    for _ in range(2):
        assert post_login(server, "alice", "wrong").status_code == 401
    assert post_login(server, "alice", "alice-pw").status_code == 200


def test_rule_login_throttle_per_address(start):
    server = start()
    for i in range(8):  # 8 names, 1 failure each: no account is at its limit
        assert post_login(server, f"guess{i}", "wrong").status_code == 401
    assert_throttled(post_login(server, "bob", "bob-pw"))


def test_rule_login_throttle_counted_across_processes(start):
    one = start()
    two = start()  # a second process on the same database
    assert post_login(one, "alice", "wrong").status_code == 401
    assert post_login(two, "alice", "wrong").status_code == 401
    assert post_login(one, "alice", "wrong").status_code == 401
    assert_throttled(post_login(two, "alice", "alice-pw"))


def test_rule_login_failures_are_logged_without_password(server_factory):
    server = server_factory.start(users={"alice": "alice-pw"})
    assert post_login(server, "alice", "secret-guess-1").status_code == 401
    assert post_login(server, "nobody", "secret-guess-2").status_code == 401
    match = re.search(r"log file: (\S+)", server.stderr_text())
    assert match, server.stderr_text()
    with open(match.group(1), encoding="utf-8") as f:
        text = f.read()
    assert re.search(r"login failed user='alice' address=127\.0\.0\.1", text), text
    assert re.search(r"login failed user='nobody' address=127\.0\.0\.1", text), text
    assert "secret-guess" not in text

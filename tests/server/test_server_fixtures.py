"""The shared fixtures of tests/support/fixtures.py work: real process, restart on the same
port, a fresh database for every test on the shared server."""

from __future__ import annotations

import os

import httpx
import pytest


def test_user_dirs_are_isolated(isolated_user_dirs, tmp_path_factory):
    base = str(tmp_path_factory.getbasetemp())
    for key in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        assert os.environ[key].startswith(base)
    assert os.environ["PYTHON_KEYRING_BACKEND"] == "keyring.backends.fail.Keyring"


def test_server_restarts_on_same_port_and_db(server):
    login = server.login("alice", "alice-pw")
    port = server.port
    server.stop()
    assert not server.running
    try:
        httpx.get(f"{server.url}/v1/health", timeout=2)
        raise AssertionError("server still answers after stop()")
    except httpx.TransportError:
        pass
    server.start()
    assert server.port == port
    # Same database: the token issued before the restart still works.
    r = httpx.get(
        f"{server.url}/v1/conversations",
        headers={"Authorization": f"Bearer {login['access_token']}"},
    )
    assert r.status_code == 200
    server.kill()
    server.start()
    assert httpx.get(f"{server.url}/v1/health").json()["status"] == "ok"


@pytest.mark.own_server
def test_server_log_goes_to_isolated_log_dir(server, isolated_user_dirs):
    token = server.login("alice", "alice-pw")["access_token"]
    server.stop()
    log = os.path.join(isolated_user_dirs["XDG_STATE_HOME"], "chat-tui-server", "log", "server.log")
    text = open(log, encoding="utf-8").read()
    assert "login user=alice" in text
    assert "alice-pw" not in text
    assert token not in text

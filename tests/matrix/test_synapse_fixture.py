"""The ``synapse`` fixture runs a real homeserver on loopback, with shared-secret
registration and raised rate limits."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.support.synapse import Synapse


def test_synapse_answers_versions_on_loopback_only(synapse: Synapse) -> None:
    answer = httpx.get(f"{synapse.url}/_matrix/client/versions", timeout=5)
    assert answer.status_code == 200
    assert "v1.1" in answer.json()["versions"]
    # Every listening socket on its port is bound to 127.0.0.1 (the kernel's own table).
    assert _listening_addresses(synapse.port) == {"127.0.0.1"}


def _listening_addresses(port: int) -> set[str]:
    """The local IPv4/IPv6 addresses with a listening TCP socket on ``port`` (Linux)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if state != "0A" or int(hex_port, 16) != port:
                    continue
                if len(address) == 8:
                    found.add(socket.inet_ntop(socket.AF_INET,
                                               bytes.fromhex(address)[::-1]))
                else:
                    found.add(f"ipv6:{address}")
    return found


def test_synapse_registers_users_with_the_shared_secret(synapse: Synapse) -> None:
    user_id = synapse.register("fixture-user", "fixture-pw")
    assert user_id == "@fixture-user:localhost"
    login = httpx.post(f"{synapse.url}/_matrix/client/v3/login", timeout=10, json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "fixture-user"},
        "password": "fixture-pw"})
    assert login.status_code == 200, login.text
    assert login.json()["user_id"] == user_id
    with pytest.raises(httpx.HTTPStatusError):
        synapse.register("fixture-user", "again")


def test_synapse_rate_limits_are_raised(synapse: Synapse) -> None:
    synapse.register("fixture-burst", "burst-pw")
    token = httpx.post(f"{synapse.url}/_matrix/client/v3/login", timeout=10, json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "fixture-burst"},
        "password": "burst-pw"}).json()["access_token"]
    headers = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=synapse.url, headers=headers, timeout=10) as http:
        room = http.post("/_matrix/client/v3/createRoom", json={}).json()["room_id"]
        # Synapse's default rc_message is 0.2/s with a burst of 10: 40 at once would 429.
        for n in range(40):
            answer = http.put(f"/_matrix/client/v3/rooms/{room}/send/m.room.message/t{n}",
                              json={"msgtype": "m.text", "body": str(n)})
            assert answer.status_code == 200, answer.text

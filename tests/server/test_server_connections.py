"""Slow and idle clients over real sockets (docs/api.md, Limits, Connections): a request
head must arrive within the header timeout, a body within the body timeout (else 408),
idle connections close after the keep-alive time, and connections over the cap are closed
at once."""

from __future__ import annotations

import socket
import time

import httpx

TIMEOUTS = ["--header-timeout", "1", "--body-timeout", "1", "--keep-alive", "1"]


def connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Read until the server closes ``sock`` (True) or ``seconds`` pass (False); returns
    what the server sent."""
    sock.settimeout(0.2)
    got = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True, got
        if not chunk:
            return True, got
        got += chunk
    return False, got


def test_rule_connections_partial_head_and_idle_are_closed(server_factory):
    server = server_factory.start(extra_args=TIMEOUTS)
    partial = [connect(server) for _ in range(20)]
    for sock in partial:
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    idle = [connect(server) for _ in range(5)]
    # after one answer, half of a second request head
    reused = connect(server)
    reused.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.3)
    reused.sendall(b"GET /v1/health HTTP/1.1\r\n")
    started = time.monotonic()
    for sock in partial + idle:
        closed, got = closed_within(sock, 5)
        assert closed and got == b""
    closed, got = closed_within(reused, 5)
    assert closed and got.startswith(b"HTTP/1.1 200") and got.count(b"HTTP/1.1") == 1
    assert time.monotonic() - started < 5
    # a server with slow clients hanging on still answers everybody else
    assert httpx.get(f"{server.url}/v1/health").status_code == 200


def test_rule_connections_half_a_body_answers_408(server_factory):
    server = server_factory.start(extra_args=TIMEOUTS, users={"alice": "alice-pw"})
    sock = connect(server)
    sock.sendall(b"POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100\r\n\r\n{\"username\": \"al")
    closed, got = closed_within(sock, 5)
    assert closed
    assert got.startswith(b"HTTP/1.1 408"), got
    assert b'"request_timeout"' in got


def test_rule_connections_timeouts_leave_long_polls_alone(server_factory):
    server = server_factory.start(extra_args=TIMEOUTS, users={"alice": "alice-pw"})
    token = server.login("alice", "alice-pw")["access_token"]
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"},
                      timeout=10) as client:
        cursor = client.get("/v1/sync").json()["cursor"]
        started = time.monotonic()
        r = client.get("/v1/sync", params={"since": cursor, "timeout": 2.5})
        assert r.status_code == 200 and time.monotonic() - started >= 2.4
        assert client.get("/v1/sync", params={"since": cursor}).status_code == 200  # reused


def test_rule_connections_cap(server_factory):
    server = server_factory.start(extra_args=["--max-connections", "10"])
    held = [connect(server) for _ in range(10)]
    time.sleep(0.3)
    extra = connect(server)
    closed, got = closed_within(extra, 2)
    assert closed and got == b""
    for sock in held:
        sock.close()
    time.sleep(0.3)
    assert httpx.get(f"{server.url}/v1/health").status_code == 200

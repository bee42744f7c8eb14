"""The load generator's HTTP client (``benchmarks/lean_http.py``) against the real
chat-tui-server and against a raw HTTP/1.1 peer on loopback that answers the ways the
benchmark's other server (Synapse, Twisted) may: chunked bodies, ``Connection: close``, a
body that ends with the connection, and the failures that must count as transport errors
(an answer cut short, no answer in time, garbage)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from benchmarks.lean_http import Connection, StatusError, TransportError
from tests.support.accounts import PASSWORDS


async def test_one_keep_alive_connection_carries_a_users_sends_and_long_polls(server) -> None:
    token = server.login("alice", PASSWORDS["alice"], device="lean")["access_token"]
    async with Connection(server.url, {"Authorization": f"Bearer {token}"}) as c:
        first = await c.get("/v1/sync")
        assert first.status_code == 200
        cursor = first.json()["cursor"]
        cid, mid = str(uuid.uuid4()), str(uuid.uuid4())
        made = await c.put(f"/v1/conversations/{cid}",
                           json={"title": "lean ✓", "members": ["bob"], "assistant": False})
        assert made.status_code == 201
        sent = await c.put(f"/v1/conversations/{cid}/messages/{mid}", json={"body": "hé ✓"})
        assert sent.status_code == 201 and sent.json()["body"] == "hé ✓"
        again = await c.put(f"/v1/conversations/{cid}/messages/{mid}", json={"body": "hé ✓"})
        assert again.status_code == 200  # the repeat: the stored message
        changes = await c.get("/v1/sync", params={"since": cursor, "timeout": 0})
        [entry] = changes.json()["conversations"]
        assert [m["id"] for m in entry["messages"]] == [mid]
        writer = c._writer
        nothing = await c.get("/v1/sync", params={"since": changes.json()["cursor"],
                                                  "timeout": 0.2})
        assert nothing.json()["conversations"] == []
        assert c._writer is writer  # every request went over the one connection
        refused = await c.get("/v1/conversations/not-a-uuid/messages")
        assert refused.status_code == 422
        with pytest.raises(StatusError):
            refused.raise_for_status()
    async with Connection(server.url) as anonymous:
        assert (await anonymous.get("/v1/sync")).status_code == 401


class Peer:
    """A raw HTTP/1.1 peer on loopback: ``url``; ``connections`` accepted so far. Each
    request head is read, then ``handler(path, writer)`` answers; it returns False to
    close the connection after its answer."""

    def __init__(self, handler) -> None:
        self.handler = handler
        self.connections = 0
        self.url = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> Peer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                keep = await self.handler(head.split(b" ", 2)[1].decode(), writer)
                await writer.drain()
                if keep is False:
                    return
        finally:
            writer.close()

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


@pytest.fixture
async def peer() -> AsyncIterator[Callable]:
    """``await peer(handler) -> Peer`` (see :class:`Peer`), stopped after the test."""
    started: list[Peer] = []

    async def start(handler) -> Peer:
        started.append(await Peer(handler).start())
        return started[-1]

    yield start
    for one in started:
        await one.stop()


async def test_chunked_close_and_unsized_bodies_are_read_whole(peer) -> None:
    async def handler(path: str, writer: asyncio.StreamWriter):
        if path == "/chunked":
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                         b"Content-Type: application/json\r\n\r\n"
                         b"5\r\n{\"a\":\r\n4;ext=1\r\n [1,\r\n3\r\n2]}\r\n0\r\nX-T: 1\r\n\r\n")
        elif path == "/close":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
            return False
        elif path == "/unsized":
            writer.write(b"HTTP/1.1 200 OK\r\n\r\n[1, 2, 3]")
            return False
        else:
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        return True

    server = await peer(handler)
    async with Connection(server.url) as c:
        assert (await c.get("/chunked")).json() == {"a": [1, 2]}
        empty = await c.get("/empty")
        assert (empty.status_code, empty.content) == (204, b"")
        assert (await c.get("/chunked")).json() == {"a": [1, 2]}
        assert server.connections == 1  # kept alive
        assert (await c.get("/close")).json() == {}  # the peer closes after it
        assert (await c.get("/unsized")).json() == [1, 2, 3]  # ends with the connection
        assert (await c.get("/chunked")).json() == {"a": [1, 2]}
    assert server.connections == 3


async def test_an_answer_cut_short_late_or_garbled_is_a_transport_error(peer) -> None:
    async def handler(path: str, writer: asyncio.StreamWriter):
        if path == "/cut":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{\"a\"")
            return False
        if path == "/late":
            await asyncio.sleep(1.0)
        if path == "/garbage":
            writer.write(b"SSH-2.0-nope\r\n\r\n")
            return False
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]")
        return True

    server = await peer(handler)
    async with Connection(server.url, timeout=0.5) as c:
        for path in ("/cut", "/late", "/garbage"):
            with pytest.raises(TransportError):
                await c.get(path)
            assert (await c.get("/ok")).json() == []  # the next request reconnects
    with pytest.raises(TransportError):
        async with Connection("http://127.0.0.1:9") as nobody:  # nothing listens there
            await nobody.get("/")
    with pytest.raises(ValueError):
        Connection("https://example.org")

"""The server's listening socket (chat_tui/server/net.py)."""

from __future__ import annotations

import asyncio
import socket

from chat_tui.server.net import listen_socket


async def test_accepted_connections_have_tcp_nodelay():
    """asyncio (what uvicorn serves with) sets TCP_NODELAY on an accepted connection only
    when the listening socket says IPPROTO_TCP; without it an answer written as headers
    then body waits ~40 ms for the client's delayed ACK (benchmarks/NOTES.md)."""
    sock = listen_socket("127.0.0.1", 0, 8)
    seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Recorder(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted = transport.get_extra_info("socket")
            seen.set_result(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Recorder, sock=sock)
    try:
        port = sock.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(seen, 10) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


def test_listen_socket_is_inheritable_only_when_asked():
    for inheritable in (False, True):
        sock = listen_socket("127.0.0.1", 0, 8, inheritable=inheritable)
        try:
            assert sock.get_inheritable() is inheritable
        finally:
            sock.close()

"""The server's listening socket (``chat-tui-server serve`` and the embedded server)."""

from __future__ import annotations

import socket


def listen_socket(host: str, port: int, backlog: int, *, inheritable: bool = False,
                  ) -> socket.socket:
    """A bound, listening TCP socket on ``host``:``port`` (0: any free port), inheritable by
    child processes when ``inheritable``.

    It is created with ``IPPROTO_TCP`` rather than the default protocol 0: asyncio turns
    ``TCP_NODELAY`` on only for sockets whose ``proto`` says TCP, and without it every answer
    uvicorn writes in two parts (headers, then body) would wait for the client's delayed
    ACK, about 40 ms per request on Linux (benchmarks/NOTES.md).

    Raises:
        OSError: the address cannot be bound (in use, not local); the socket is closed.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(inheritable)
    return sock

"""The HTTP client of benchmark 5's load generator: :class:`Connection`.

One HTTP/1.1 keep-alive connection over asyncio streams, one request at a time, as every
client of the load (one connection per user) needs and no more: the request is written in
one piece (request line, headers, body), the answer is read by its status line and headers
(``Content-Length``, ``Transfer-Encoding: chunked``, ``Connection: close``) and its body is
decoded by pydantic-core's JSON parser (pydantic is a dependency of the project; its Rust
parser is the fastest one installed). It exists because the load generator shares the 2
cores with the servers it measures: ``httpx.AsyncClient`` measured ~0.6 ms of the
generator's CPU per request, and every send is 21 requests (the send, and for each of its
10 deliveries the answered long-poll and the next one).

The same client runs against every server of the benchmark (chat-tui-server on SQLite and
on PostgreSQL, Synapse), so the comparison stays fair. It speaks only what those servers
answer: no redirects, no compression, no TLS, no proxies, no cookies.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from pydantic_core import from_json, to_json

#: Largest header block read (bytes); a longer one is a protocol error.
MAX_HEAD = 64 * 1024


class TransportError(Exception):
    """The request got no complete answer: the connection failed or closed, the answer was
    not HTTP/1.1 this client reads, or it took longer than the connection's timeout. The
    connection is closed; the next request opens a new one."""


class StatusError(Exception):
    """:meth:`Answer.raise_for_status` of an answer whose status is not 2xx."""


@dataclass(slots=True)
class Answer:
    """One answer: ``status_code`` (int) and the body bytes ``content``."""

    status_code: int
    content: bytes

    def json(self) -> Any:
        """The body decoded as JSON (raises ValueError when it is not JSON)."""
        return from_json(self.content)

    def raise_for_status(self) -> None:
        """Raise :class:`StatusError` when the status is not 2xx."""
        if not 200 <= self.status_code < 300:
            raise StatusError(f"HTTP {self.status_code}: {self.content[:200]!r}")


class Connection:
    """One keep-alive connection to ``base_url`` (``http://host:port``) sending
    ``headers`` with every request; each request and its answer must end within
    ``timeout`` seconds. Opened on the first request; an ``async with`` block closes it.
    Not for concurrent requests (one user's connection: each waits for its answer).
    """

    def __init__(self, base_url: str, headers: dict[str, str] | None = None,
                 timeout: float = 60.0) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or url.hostname is None:
            raise ValueError(f"not an http:// url: {base_url!r}")
        self.host = url.hostname
        self.port = url.port or 80
        self.timeout = timeout
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self._fixed = f" HTTP/1.1\r\nHost: {url.netloc}\r\n{extra}"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection (a later request opens a new one)."""
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except (OSError, asyncio.CancelledError):
                pass

    def _drop(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Answer:
        """``GET path?params``."""
        return await self.request("GET", path, params=params)

    async def put(self, path: str, json: Any = None) -> Answer:
        """``PUT path`` with the JSON body ``json``."""
        return await self.request("PUT", path, json=json)

    async def post(self, path: str, json: Any = None) -> Answer:
        """``POST path`` with the JSON body ``json``."""
        return await self.request("POST", path, json=json)

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                      json: Any = None) -> Answer:
        """Send one request and read its whole answer.

        Raises:
            TransportError: no complete answer (see the class).
        """
        target = f"{path}?{urlencode(params)}" if params else path
        head = method + " " + target + self._fixed
        if json is not None:
            body = to_json(json)
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            data = head.encode() + body
        else:
            data = (head + "\r\n").encode()
        try:
            async with asyncio.timeout(self.timeout):
                if self._reader is None or self._reader.at_eof():
                    self._drop()
                    self._reader, self._writer = await asyncio.open_connection(
                        self.host, self.port, limit=MAX_HEAD)
                self._writer.write(data)
                return await self._answer(self._reader)
        except (OSError, EOFError, TimeoutError, ValueError, asyncio.LimitOverrunError,
                asyncio.IncompleteReadError) as exc:
            self._drop()
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        except BaseException:  # cancelled mid-answer: the connection's state is unknown
            self._drop()
            raise

    async def _answer(self, reader: asyncio.StreamReader) -> Answer:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status_line = lines[0]
        if not status_line.startswith(b"HTTP/1."):
            raise ValueError(f"not an HTTP/1.x answer: {status_line[:80]!r}")
        status = int(status_line[9:12])
        length = None
        chunked = close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = b"close" in value.lower()
        if status_line.startswith(b"HTTP/1.0") and not close:
            close = True  # no keep-alive without the header, which no server here sends
        if chunked:
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                        pass
                    break
                parts.append((await reader.readexactly(size + 2))[:-2])
            content = b"".join(parts)
        elif length is not None:
            content = await reader.readexactly(length) if length else b""
        elif status in (204, 304) or 100 <= status < 200:
            content = b""
        else:  # the body ends with the connection
            content = await reader.read()
            close = True
        if close:
            self._drop()
        return Answer(status, content)

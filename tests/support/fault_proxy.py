"""A loopback HTTP fault-injection proxy for tests (no mocks: real sockets, real server).

:class:`FaultProxy` listens on ``127.0.0.1:<port>`` and forwards each HTTP/1.1 request to an
upstream (the real ``chat-tui-server``), one request per client connection (it answers with
``Connection: close``). Rules decide, per request, what happens instead of a plain forward:

- ``drop_response(...)``: forward the request, read the server's full answer (so the
  server has committed), then close the client connection without sending a byte: the
  "response lost after the server committed" failure (bug class 1).
- ``respond(status, ...)``: answer with a canned status (a 5xx, or 429 with
  ``Retry-After``) without forwarding.
- ``hold(seconds, ...)``: forward, then hold the answer back for ``seconds``.
- ``refuse()`` / ``accept()``: close / reopen the listening socket on the same port, so
  clients get "connection refused" (the network is down) and then get through again.

Each rule matches on ``method`` (exact, or None for any) and ``path_contains`` (a substring
of the request target), and applies to the next ``count`` matching requests (None: until
:meth:`FaultProxy.clear`). A request takes the first matching rule in the list: rules are
appended, and ``respond(..., first=True)`` puts its rule before every other one (a refusal
that must win over a rule which forwards, such as ``hold`` or ``drop_response``). Every request is recorded in :attr:`FaultProxy.log` as
``(method, target, outcome)`` with outcome ``forwarded``, ``dropped``, ``held``, or the canned
status as a string.

Use as a context manager or call :meth:`start` / :meth:`stop`; it runs on its own threads,
so it serves both in-process asyncio clients and subprocesses (``chat-tui sync``).

Example::

    with FaultProxy(server.url) as proxy:
        proxy.drop_response(method="PUT", path_contains="/messages/", count=1)
        ...  # point the client at proxy.url
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Rule:
    """One fault rule (see module doc)."""

    action: str  # "drop", "respond", "hold"
    method: str | None = None
    path_contains: str = ""
    count: int | None = 1
    status: int = 503
    retry_after: float | None = None
    seconds: float = 0.0
    body: bytes | None = None

    def matches(self, method: str, target: str) -> bool:
        return ((self.method is None or self.method == method)
                and self.path_contains in target
                and (self.count is None or self.count > 0))


_REASONS = {200: "OK", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout", 408: "Request Timeout"}


def _read_request(conn: socket.socket) -> bytes | None:
    """Read one HTTP/1.1 request (headers + Content-Length body); None on EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return head + b"\r\n\r\n" + body


def _force_close(head: bytes) -> bytes:
    lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"connection:")]
    return b"\r\n".join([*lines, b"Connection: close"])


class FaultProxy:
    """The proxy (see module doc). ``upstream`` is ``http://host:port`` of the real server;
    ``port`` 0 picks a free port, kept across :meth:`refuse` / :meth:`accept`."""

    def __init__(self, upstream: str, port: int = 0):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.port = port
        self.log: list[tuple[str, str, str]] = []
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._stopped = threading.Event()

    # -- lifecycle ----------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        """Start listening (same port as before when restarted); returns self."""
        self._stopped.clear()
        self.accept()
        return self

    def accept(self) -> None:
        """(Re)open the listening socket: connections get through again."""
        if self._listener is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self.port = sock.getsockname()[1]
        self._listener = sock
        self._accept_thread = threading.Thread(target=self._accept_loop, args=(sock,),
                                               daemon=True, name="fault-proxy-accept")
        self._accept_thread.start()

    def refuse(self) -> None:
        """Close the listening socket and every open connection: new connections are
        refused (ECONNREFUSED) until :meth:`accept`."""
        sock, self._listener = self._listener, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            except OSError:
                pass
            sock.close()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=5)
            self._accept_thread = None
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            self._close(conn)

    def stop(self) -> None:
        """Stop the proxy (closes everything)."""
        self._stopped.set()
        self.refuse()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- rules --------------------------------------------------------------------

    def drop_response(self, *, method: str | None = None, path_contains: str = "",
                      count: int | None = 1) -> Rule:
        """Forward matching requests but drop the server's answer (see module doc)."""
        return self._add(Rule("drop", method, path_contains, count))

    def respond(self, status: int, *, retry_after: float | None = None,
                method: str | None = None, path_contains: str = "",
                count: int | None = 1, body: bytes | None = None,
                delay: float = 0.0, first: bool = False) -> Rule:
        """Answer matching requests with ``status`` (and ``Retry-After``) without
        forwarding, after ``delay`` seconds; the body is the API's error shape unless
        ``body`` (raw bytes, for malformed answers) is given. ``first``: the rule goes
        before every rule already there, so no earlier rule forwards a request it
        matches."""
        return self._add(Rule("respond", method, path_contains, count, status, retry_after,
                              seconds=delay, body=body), first=first)

    def hold(self, seconds: float, *, method: str | None = None, path_contains: str = "",
             count: int | None = 1) -> Rule:
        """Forward matching requests, then wait ``seconds`` before relaying the answer."""
        return self._add(Rule("hold", method, path_contains, count, seconds=seconds))

    def clear(self) -> None:
        """Remove every rule: plain forwarding again."""
        with self._lock:
            self._rules.clear()

    def _add(self, rule: Rule, first: bool = False) -> Rule:
        with self._lock:
            if first:
                self._rules.insert(0, rule)
            else:
                self._rules.append(rule)
        return rule

    def _take_rule(self, method: str, target: str) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, target):
                    if rule.count is not None:
                        rule.count -= 1
                    return rule
        return None

    def requests(self, method: str | None = None, path_contains: str = "") -> list[tuple]:
        """Logged requests filtered like a rule."""
        with self._lock:
            return [e for e in self.log if (method is None or e[0] == method)
                    and path_contains in e[1]]

    # -- serving ------------------------------------------------------------------

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True,
                             name="fault-proxy-conn").start()

    def _close(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.discard(conn)
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        conn.close()

    def _record(self, method: str, target: str, outcome: str) -> None:
        with self._lock:
            self.log.append((method, target, outcome))

    def _serve(self, conn: socket.socket) -> None:
        try:
            request = _read_request(conn)
            if request is None:
                return
            head, _, body = request.partition(b"\r\n\r\n")
            method, target = head.split(b" ", 2)[:2]
            method_s, target_s = method.decode(), target.decode()
            rule = self._take_rule(method_s, target_s)
            if rule is not None and rule.action == "respond":
                if rule.seconds:
                    time.sleep(rule.seconds)
                self._record(method_s, target_s, str(rule.status))
                payload = rule.body if rule.body is not None else (
                    b'{"error": {"code": "injected", "message": "injected by the test proxy"}}')
                extra = (f"Retry-After: {rule.retry_after:g}\r\n"
                         if rule.retry_after is not None else "")
                conn.sendall(
                    f"HTTP/1.1 {rule.status} {_REASONS.get(rule.status, 'Error')}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                    f"{extra}Connection: close\r\n\r\n".encode() + payload)
                return
            response = self._forward(_force_close(head) + b"\r\n\r\n" + body)
            if b"\r\n\r\n" in response:  # tell the client this connection is done
                rhead, _, rbody = response.partition(b"\r\n\r\n")
                response = _force_close(rhead) + b"\r\n\r\n" + rbody
            if rule is not None and rule.action == "drop":
                self._record(method_s, target_s, "dropped")
                return  # the server committed; the client never hears about it
            if rule is not None and rule.action == "hold":
                self._record(method_s, target_s, "held")
                if self._stopped.wait(rule.seconds):
                    return
            else:
                self._record(method_s, target_s, "forwarded")
            conn.sendall(response)
        except OSError:
            pass
        finally:
            self._close(conn)

    def _forward(self, request: bytes) -> bytes:
        with socket.create_connection(self.upstream, timeout=60) as up:
            up.sendall(request)
            chunks = []
            while True:
                chunk = up.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks)


"""Which kind of server a URL is: chat-tui API v1 or a Matrix homeserver
(``chat-tui login URL``, docs/sync.md "Matrix").

:func:`detect` asks, in order, ``GET /v1/health`` (chat-tui), ``GET
/_matrix/client/versions`` (Matrix) and ``GET /.well-known/matrix/client`` (Matrix server
discovery: a server name whose homeserver lives elsewhere, named by ``m.homeserver.base_url``
and checked by its own ``/versions``).
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit

import httpx

from chat_tui.api.errors import PermanentError, TransientError

CHAT_TUI = "chat-tui"
MATRIX = "matrix"


class Detected(NamedTuple):
    """``kind`` is :data:`CHAT_TUI` or :data:`MATRIX`; ``base_url`` the URL to talk to
    (``http(s)://host[:port]``, no trailing slash; the discovered homeserver for Matrix)."""

    kind: str
    base_url: str


def _base(url: str) -> str:
    """``url`` as ``scheme://host[:port]``; a bare server name (``example.org``) is https."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = f"https://{url}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PermanentError(f"not a server URL or name: {url!r}", 0, "bad_url")
    return url


async def _json(http: httpx.AsyncClient, url: str) -> object | None:
    """The JSON body of a 200 answer to ``GET url``; None for any other status or a
    body that is not JSON. Connection failures propagate as httpx errors."""
    response = await http.get(url)
    if response.status_code != 200:
        return None
    try:
        return response.json()
    except ValueError:
        return None


async def _is_matrix(http: httpx.AsyncClient, base: str) -> bool:
    body = await _json(http, f"{base}/_matrix/client/versions")
    return isinstance(body, dict) and isinstance(body.get("versions"), list) \
        and bool(body["versions"])


async def detect(url: str, *, timeout: float = 5.0) -> Detected:
    """The kind of server at ``url`` (``http(s)://host[:port]`` or a bare server name,
    taken as https), each probe with ``timeout`` seconds.

    Raises:
        TransientError: nothing answered (``reached_server`` False when the connection
            was refused), a probe timed out, or ``/v1/health`` answered 429 or 5xx (a
            server that is there but busy or failing: try again, not "unknown").
        PermanentError: the server answers but is neither chat-tui nor Matrix, or
            ``url`` is not a URL (``code`` ``bad_url``).
    """
    base = _base(url)
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=True,
                                     headers={"user-agent": "chat-tui/0.1"}) as http:
            probe = await http.get(f"{base}/v1/health")
            if probe.status_code == 429 or probe.status_code >= 500:
                raise TransientError(f"{base}: HTTP {probe.status_code}", probe.status_code)
            try:
                health = probe.json() if probe.status_code == 200 else None
            except ValueError:
                health = None
            if isinstance(health, dict) and health.get("status") == "ok":
                return Detected(CHAT_TUI, base)
            if await _is_matrix(http, base):
                return Detected(MATRIX, base)
            known = await _json(http, f"{base}/.well-known/matrix/client")
            homeserver = known.get("m.homeserver") if isinstance(known, dict) else None
            found = homeserver.get("base_url") if isinstance(homeserver, dict) else None
            if isinstance(found, str) and found.strip():
                found = _base(found)
                if await _is_matrix(http, found):
                    return Detected(MATRIX, found)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise TransientError(f"cannot connect to {base}: {type(exc).__name__}",
                             reached_server=False) from exc
    except httpx.TransportError as exc:
        raise TransientError(f"{base}: {type(exc).__name__}") from exc
    raise PermanentError(f"{base} is neither a chat-tui server nor a Matrix homeserver",
                         404, "unknown_server")


__all__ = ["CHAT_TUI", "MATRIX", "Detected", "detect"]

"""``HttpBackend``: the plumbing every backend shares (docs/sync.md, outbox rule 3b).

One ``httpx.AsyncClient`` per account on ``base_url``; the bearer token; closing and the
``async with`` form; one request helper that turns a transport failure into a
:class:`~chat_tui.api.errors.TransientError` and an HTTP error answer into the error its
subclass classifies (:meth:`HttpBackend._error`). :class:`chat_tui.api.client.ApiClient`
(chat-tui API v1) and :class:`chat_tui.api.matrix.MatrixClient` (Matrix client-server
API v3) build on it. Never logs tokens or passwords.
"""

from __future__ import annotations

from typing import Any, Self

import httpx

from chat_tui.api.errors import ApiError, TransientError


def retry_after(response: httpx.Response) -> float | None:
    """The answer's ``Retry-After`` header in seconds (a number of seconds or an HTTP
    date; never negative), or None when it is absent or unreadable."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from datetime import UTC, datetime
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return None


class HttpBackend:
    """What both backends repeat: the connection pool, the token and the request helper.

    Args:
        base_url: the server URL (``http(s)://host[:port]``; a trailing slash is dropped).
        token: the bearer token, or None (no ``Authorization`` header).
        timeout: seconds for every request but the sync long-poll.
        probe_timeout: seconds for the health probe (sync rule C1).
        sync_read_timeout: seconds for a sync answer to arrive on top of its long-poll
            time (at least ``timeout``).
    """

    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 15.0,
                 probe_timeout: float = 3.0, sync_read_timeout: float = 120.0):
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._probe_timeout = probe_timeout
        self._sync_read_timeout = max(timeout, sync_read_timeout)
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout,
                                       headers={"user-agent": "chat-tui/0.1"})

    def set_token(self, token: str | None) -> None:
        """Use ``token`` (str, or None: no ``Authorization`` header) for later requests."""
        self._token = token

    async def aclose(self) -> None:
        """Close the connection pool (idempotent); the client is unusable afterwards."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _sync_timeout(self, long_poll: float) -> httpx.Timeout:
        """Timeouts of a sync request: connecting and sending as any request, the answer
        ``long_poll`` seconds plus ``sync_read_timeout`` (a huge initial sync is built and
        transferred for a while; sync rule S2)."""
        return httpx.Timeout(self._timeout, read=self._sync_read_timeout + long_poll)

    def _error(self, response: httpx.Response) -> ApiError:
        """The classified error of an HTTP error answer (status >= 400); each backend reads
        its own error body."""
        raise NotImplementedError

    async def _send(self, method: str, path: str, *, json: Any = None,
                    params: dict | None = None, timeout: float | httpx.Timeout | None = None,
                    auth: bool = True) -> httpx.Response:
        """``method path`` with the token (when ``auth``); the answer when its status is
        below 400.

        Raises:
            TransientError: no answer: ``reached_server`` False when the connection could
                not be made, True for a timeout or a connection lost after sending.
            ApiError: the error :meth:`_error` classifies for a status of 400 or more.
        """
        headers = {}
        if auth and self._token:
            headers["authorization"] = f"Bearer {self._token}"
        try:
            response = await self._http.request(method, path, json=json, params=params,
                                                headers=headers,
                                                timeout=timeout or self._timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise TransientError(f"cannot connect to {self.base_url}: {type(exc).__name__}",
                                 reached_server=False) from exc
        except httpx.TimeoutException as exc:
            raise TransientError(f"{method} {path}: timed out") from exc
        except httpx.TransportError as exc:  # dropped, reset, protocol errors
            raise TransientError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise self._error(response)
        return response


__all__ = ["HttpBackend", "retry_after"]

"""Classified errors of the API client (docs/api.md, "Errors"; outbox rule 3).

- :class:`TransientError`: try again later with the same idempotency key: connection errors,
  timeouts, 408, 425, 429 (``retry_after`` seconds), 5xx except 501.
  ``reached_server`` is False when the request surely never reached the server (connection
  refused, connect timeout): such attempts do not count (outbox rule 5) and flip
  connectivity to offline.
- :class:`MalformedResponse` (a TransientError): an unparseable or wrong-shaped body.
- :class:`PermanentError`: other 4xx; ``reason`` is the server's readable message.
- :class:`Unauthorized`: 401, the token is missing, unknown or revoked.
- :class:`CursorExpired`: 410, the sync cursor is unknown: do an initial sync.
"""

from __future__ import annotations


class ApiError(Exception):
    """Base class. ``status`` is the HTTP status (0 without a response); ``code`` the
    server's machine code when known; ``reason`` a readable text (never a token)."""

    def __init__(self, reason: str, status: int = 0, code: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.code = code


class TransientError(ApiError):
    """Retry later, same key. ``retry_after`` (seconds) comes from a ``Retry-After`` header."""

    def __init__(self, reason: str, status: int = 0, code: str = "",
                 retry_after: float | None = None, reached_server: bool = True):
        super().__init__(reason, status, code)
        self.retry_after = retry_after
        self.reached_server = reached_server

    @property
    def connection_level(self) -> bool:
        """True when there was no HTTP response at all (connect error, timeout, dropped)."""
        return self.status == 0


class MalformedResponse(TransientError):
    """The server answered with JSON that does not parse or has the wrong shape."""


class PermanentError(ApiError):
    """The server refused the request for good (400, 403, 404, 409, 413, 422, 501 ...)."""


class Unauthorized(ApiError):
    """401: log in again; every queue pauses until then."""


class CursorExpired(ApiError):
    """410 ``cursor_expired``: the client does an initial sync and keeps its outbox."""


TRANSIENT_STATUSES = frozenset({408, 425, 429})


def classify(status: int, code: str, reason: str, retry_after: float | None) -> ApiError:
    """The error for an HTTP error status (docs/api.md "Errors")."""
    if status == 401:
        return Unauthorized(reason or "unauthorized", status, code)
    if status == 410:
        return CursorExpired(reason or "cursor expired", status, code)
    if status in TRANSIENT_STATUSES or (status >= 500 and status != 501):
        return TransientError(reason or f"HTTP {status}", status, code, retry_after)
    return PermanentError(reason or f"HTTP {status}", status, code)

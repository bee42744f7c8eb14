"""The one error type of the server and its wire shape (docs/api.md, "Errors").

The data layer raises these through the named constructors below (:func:`not_found`,
:func:`conflict` ...), so the HTTP status of each refusal is chosen here, once.
"""

from __future__ import annotations

from chat_tui.wire.errors import STATUS_CODES

__all__ = [
    "STATUS_CODES", "ApiError", "conflict", "cursor_expired", "forbidden", "not_found",
    "too_large", "unauthorized", "validation",
]


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}`` with ``status``.

    ``status`` is the HTTP status (int), ``code`` the machine code from docs/api.md's error
    table, ``message`` a readable sentence, ``headers`` extra response headers (for example
    ``Retry-After`` on 429).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict:
        """The JSON body: ``{"error": {"code": str, "message": str}}``."""
        return {"error": {"code": self.code, "message": self.message}}


def not_found(what: str = "not found") -> ApiError:
    """A 404 ``not_found``; used alike for unknown ids and other users' data (never reveals)."""
    return ApiError(404, "not_found", what)


def validation(message: str) -> ApiError:
    """A 422 ``validation`` error whose message says which field is wrong."""
    return ApiError(422, "validation", message)


def conflict(message: str) -> ApiError:
    """A 409 ``conflict``."""
    return ApiError(409, "conflict", message)


def forbidden(message: str) -> ApiError:
    """A 403 ``forbidden``: a member acts on another member's message."""
    return ApiError(403, "forbidden", message)


def unauthorized(message: str) -> ApiError:
    """A 401 ``unauthorized``: a missing, unknown or revoked token, or a bad login."""
    return ApiError(401, "unauthorized", message)


def cursor_expired() -> ApiError:
    """A 410 ``cursor_expired``: a sync ``since`` the server does not know."""
    return ApiError(410, "cursor_expired", "the sync cursor is unknown to this server")


def too_large(message: str) -> ApiError:
    """A 413 ``too_large``: a message body or request over its limit."""
    return ApiError(413, "too_large", message)

"""The one error type of the server and its wire shape (docs/api.md, "Errors")."""

from __future__ import annotations

#: HTTP status -> machine code, for errors raised by the framework itself (docs/api.md, Errors).
STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "cursor_expired",
    413: "too_large",
    422: "validation",
    429: "rate_limited",
    500: "internal",
}


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

"""Error codes of the wire API v1 (docs/api.md, Errors): the machine code of each status.

Every error answer has the body ``{"error": {"code": <code>, "message": <readable>}}``
(:class:`chat_tui.wire.models.ErrorBody`).
"""

from __future__ import annotations

#: HTTP status -> machine code (docs/api.md, Errors). 405 is the framework's own answer
#: to a wrong method; 5xx other than 500 map to ``internal`` as well.
STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    410: "cursor_expired",
    413: "too_large",
    422: "validation",
    429: "rate_limited",
    500: "internal",
}

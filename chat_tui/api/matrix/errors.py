"""Matrix error answers classified like the chat-tui client's (outbox rule 3b).

A Matrix error body is ``{"errcode": "M_...", "error": "...", "retry_after_ms": n}``.
:func:`classify_matrix` maps it onto :mod:`chat_tui.api.errors`:

- ``M_LIMIT_EXCEEDED`` (429): :class:`TransientError` with ``retry_after`` in seconds from
  ``retry_after_ms`` (or the ``Retry-After`` header);
- ``M_UNKNOWN_TOKEN``, ``M_MISSING_TOKEN`` and any 401: :class:`Unauthorized`; so is a
  403 ``M_FORBIDDEN`` answer to a login (wrong password), chosen by the caller;
- ``M_UNKNOWN_POS`` (an unknown ``since`` token): :class:`CursorExpired` (rule S6);
- everything else by its HTTP status, exactly as API v1 (:func:`chat_tui.api.errors.classify`).
"""

from __future__ import annotations

from chat_tui.api.errors import (
    ApiError,
    CursorExpired,
    TransientError,
    Unauthorized,
    classify,
)

AUTH_CODES = frozenset({"M_UNKNOWN_TOKEN", "M_MISSING_TOKEN"})


def classify_matrix(status: int, body: object, retry_after_header: float | None) -> ApiError:
    """The classified error for an HTTP error ``status`` with the decoded JSON ``body``
    (anything; a non-dict body counts as no errcode). ``retry_after_header`` is the
    ``Retry-After`` header in seconds, used when the body has no ``retry_after_ms``."""
    errcode, reason, retry_after = "", "", retry_after_header
    if isinstance(body, dict):
        errcode = str(body.get("errcode", ""))
        reason = str(body.get("error", ""))[:500]
        ms = body.get("retry_after_ms")
        if isinstance(ms, int | float) and not isinstance(ms, bool) and ms >= 0:
            retry_after = ms / 1000.0
    text = f"{errcode}: {reason}" if errcode else (reason or f"HTTP {status}")
    if errcode == "M_LIMIT_EXCEEDED":
        return TransientError(text, status or 429, errcode, retry_after)
    if errcode in AUTH_CODES or status == 401:
        return Unauthorized(text, status, errcode)
    if errcode == "M_UNKNOWN_POS":
        return CursorExpired(text, status, errcode)
    return classify(status, errcode, text, retry_after)

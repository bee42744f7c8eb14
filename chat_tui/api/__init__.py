"""HTTP client of the wire API v1 (docs/api.md): answers are the ``chat_tui.wire``
models. Imports config, store and wire only; never sync or ui. ``import chat_tui.api``
imports httpx; the models (and pydantic) load on the first answer or the first use of a
model name here (``chat_tui.api.Message``)."""

from typing import Any

from chat_tui.api.client import ApiClient
from chat_tui.api.errors import (
    ApiError,
    CursorExpired,
    MalformedResponse,
    PermanentError,
    TransientError,
    Unauthorized,
    classify,
)

_MODELS = frozenset({
    "Conversation", "Login", "Message", "MessagesPage", "ReadMarker", "SyncConversation",
    "SyncResponse",
})


def __getattr__(name: str) -> Any:
    """Load the wire model ``name`` on first use (:mod:`chat_tui.wire.models`).

    Raises:
        AttributeError: ``name`` is not a name of this package.
    """
    if name in _MODELS:
        from chat_tui.wire import models

        return getattr(models, name)
    raise AttributeError(f"module 'chat_tui.api' has no attribute {name!r}")

__all__ = [
    "ApiClient",
    "ApiError",
    "Conversation",
    "CursorExpired",
    "Login",
    "MalformedResponse",
    "Message",
    "MessagesPage",
    "PermanentError",
    "ReadMarker",
    "SyncConversation",
    "SyncResponse",
    "TransientError",
    "Unauthorized",
    "classify",
]

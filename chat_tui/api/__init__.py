"""HTTP client of the wire API v1 (docs/api.md): answers are the ``chat_tui.wire``
models. Imports config, store and wire only; never sync or ui. ``import chat_tui.api``
imports httpx; the models (and pydantic) load on the first answer or the first use of a
model name here (``chat_tui.api.Message``)."""

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
from chat_tui.wire.lazy import models_getattr

_MODELS = frozenset({
    "Conversation", "Login", "Message", "MessagesPage", "ReadMarker", "SyncConversation",
    "SyncResponse",
})


__getattr__ = models_getattr(__name__, _MODELS)

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

"""HTTP client of the wire API v1 (docs/api.md): answers are the ``chat_tui.wire``
models. Imports config, store and wire only; never sync or ui. ``import chat_tui.api``
imports httpx and pydantic."""

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
from chat_tui.api.wire import (
    Conversation,
    Login,
    Message,
    MessagesPage,
    ReadMarker,
    SyncConversation,
    SyncResponse,
)

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

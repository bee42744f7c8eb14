"""The wire API v1 (docs/api.md), defined once for the client and the server.

- :mod:`chat_tui.wire.limits`: limits and fixed names as plain constants (no pydantic);
- :mod:`chat_tui.wire.errors`: the machine code of each error status;
- :mod:`chat_tui.wire.models`: the objects and request bodies as pydantic v2 models.

Imports nothing else of chat_tui. ``import chat_tui.wire`` loads only the constants; a
model name (``chat_tui.wire.Message``) loads pydantic on first use, so the client's cache,
which is on the app's first-frame path, can read the limits without it.
"""

from __future__ import annotations

from chat_tui.wire.errors import STATUS_CODES
from chat_tui.wire.lazy import models_getattr
from chat_tui.wire.limits import (
    ASSISTANT_USERNAME,
    MAX_BODY_BYTES,
    MAX_PAGE_LIMIT,
    MAX_REQUEST_BYTES,
    MAX_SYNC_TIMEOUT,
    MAX_TITLE_CHARS,
    SYNC_PAGE,
    USERNAME_RE,
)

_MODELS = frozenset({
    "Conversation", "ConversationList", "ConversationPut", "ErrorBody", "ErrorDetail",
    "Health", "Login", "LoginRequest", "Message", "MessagePatch", "MessagePut",
    "MessagesPage", "ModelInfo", "ModelList", "ProviderProblem", "ReadMarker",
    "ReadRequest", "SyncConversation", "SyncResponse", "UserInfo",
})


__getattr__ = models_getattr(__name__, _MODELS)


__all__ = [
    "ASSISTANT_USERNAME", "MAX_BODY_BYTES", "MAX_PAGE_LIMIT", "MAX_REQUEST_BYTES",
    "MAX_SYNC_TIMEOUT", "MAX_TITLE_CHARS", "STATUS_CODES", "SYNC_PAGE", "USERNAME_RE",
    *sorted(_MODELS),
]

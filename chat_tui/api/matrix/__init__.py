"""The Matrix client-server API v3 transport (docs/sync.md, Matrix rules M1..M5):
:class:`MatrixClient`, a :class:`chat_tui.api.backend.Backend` whose answers are the
``chat_tui.wire`` models; the event mapping in :mod:`chat_tui.api.matrix.events`; error
classification in :mod:`chat_tui.api.matrix.errors`."""

from chat_tui.api.matrix.client import Invite, MatrixClient
from chat_tui.api.matrix.errors import classify_matrix
from chat_tui.api.matrix.events import CREATE_KEY, ENCRYPTED_BODY, MESSAGE_KEY

__all__ = ["CREATE_KEY", "ENCRYPTED_BODY", "MESSAGE_KEY", "Invite", "MatrixClient",
           "classify_matrix"]

"""``MatrixClient``: the Matrix client-server API v3 transport, a
:class:`chat_tui.api.backend.Backend` (docs/sync.md, Matrix rules M1..M5).

Plain httpx and JSON, no Matrix SDK: the SDKs on PyPI (matrix-nio, mautrix) bring their
own HTTP stack, sync loop and store, which would sit beside the engine's instead of
under it; the event shapes chat-tui reads (:mod:`chat_tui.api.matrix.events`) are few.

The client is built from one part per job, each a module: the shared plumbing, ids and
account calls (:mod:`~chat_tui.api.matrix.core`), rooms (:mod:`~chat_tui.api.matrix.rooms`),
messages (:mod:`~chat_tui.api.matrix.messages`), and sync and backfill
(:mod:`~chat_tui.api.matrix.timeline`).

:meth:`MatrixClient.decrypt` is the one place events pass through before they are
mapped: today it leaves them as they are (encrypted events show as "encrypted message",
rule M3).
"""

from __future__ import annotations

from chat_tui.api.matrix.events import Invite
from chat_tui.api.matrix.timeline import MatrixTimeline


class MatrixClient(MatrixTimeline):
    """Client of a Matrix homeserver's client-server API v3 on ``base_url``
    (``https://host[:port]``, without ``/_matrix``).

    Args:
        base_url: the homeserver URL.
        token: the access token, or None before login.
        user_id: the logged-in user id (``@name:server``); set by :meth:`login`.
        timeout: seconds for every request but the sync long-poll.
        probe_timeout: seconds for :meth:`health` (rule C1).
        sync_read_timeout: seconds on top of the long-poll for a sync answer to arrive.
        ids: where the id maps are kept across restarts (rule M4), or None.

    Every method raises :class:`~chat_tui.api.errors.TransientError` (connection errors,
    timeouts, 5xx, ``M_LIMIT_EXCEEDED`` with ``retry_after``),
    :class:`~chat_tui.api.errors.PermanentError`, :class:`~chat_tui.api.errors.Unauthorized`,
    :class:`~chat_tui.api.errors.CursorExpired` or
    :class:`~chat_tui.api.errors.MalformedResponse` (:mod:`chat_tui.api.matrix.errors`);
    never a raw httpx exception. Never logs tokens or passwords.
    """


__all__ = ["Invite", "MatrixClient"]

"""The backend interface: what the engine (``chat_tui.sync``) needs from a chat server.

Two implementations: :class:`chat_tui.api.client.ApiClient` (chat-tui wire API v1,
docs/api.md) and :class:`chat_tui.api.matrix.MatrixClient` (Matrix client-server API v3,
docs/sync.md "Matrix"). Answers are the ``chat_tui.wire`` models; failures are the
classified errors of :mod:`chat_tui.api.errors` (outbox rule 3b): every method raises
:class:`~chat_tui.api.errors.TransientError` (``retry_after`` seconds, ``reached_server``),
:class:`~chat_tui.api.errors.PermanentError`, :class:`~chat_tui.api.errors.Unauthorized`,
:class:`~chat_tui.api.errors.CursorExpired` or
:class:`~chat_tui.api.errors.MalformedResponse`, never a raw httpx exception.

Ids are strings the engine chooses where the protocol lets it: a conversation created by
the client is created under its client-chosen id ``cid`` (or found by it, Matrix rule M2);
a message is sent under its outbox id ``mid``, the idempotency key of every retry (outbox
rule 4; Matrix: the transaction id, rule M1), and the server's copy of it comes back with
``id == mid``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from chat_tui.wire.models import (
        Conversation,
        Login,
        Message,
        MessagesPage,
        ReadMarker,
        SyncResponse,
    )


@runtime_checkable
class Backend(Protocol):
    """One account's connection to one server (one per account, used from the engine's
    event loop; not thread-safe)."""

    def set_token(self, token: str | None) -> None:
        """Use ``token`` (or no token) for later requests."""

    async def aclose(self) -> None:
        """Close the connections (idempotent)."""

    async def __aenter__(self) -> Backend:
        """The backend itself (``async with``)."""

    async def __aexit__(self, *exc: object) -> None:
        """:meth:`aclose`."""

    async def health(self) -> bool:
        """True when the server answers its cheap unauthenticated probe (rule C1)."""

    async def login(self, username: str, password: str, device_name: str) -> Login:
        """Log in with a password; ``device_name`` labels the new token. The answer's
        ``access_token`` is then passed to :meth:`set_token` by the caller.

        Raises:
            Unauthorized: wrong username or password.
        """

    async def put_conversation(self, cid: str, title: str, members: list[str],
                               assistant: bool) -> Conversation:
        """Create the conversation ``cid`` (client-chosen) titled ``title`` (1..200
        characters) with ``members`` (usernames; Matrix: user ids, invited), or return
        the one already created under ``cid`` by this user. ``assistant`` is refused
        with PermanentError by a backend without one."""

    async def put_message(self, cid: str, mid: str, body: str, *,
                          attempted: bool = False) -> Message:
        """Send ``body`` (plain text, 1..65,536 UTF-8 bytes) into ``cid`` under the
        idempotency key ``mid``; a repeat with the same ``mid`` makes no second message
        and answers the one stored. The answer's ``id`` is ``mid``. ``attempted``: an
        earlier attempt may have reached the server (outbox rule 4; Matrix rule M1 then
        looks for it before sending again)."""

    async def patch_message(self, mid: str, body: str, base_version: int | None, *,
                            conversation_id: str | None = None) -> Message:
        """Edit my message ``mid`` to ``body``; returns it with a higher ``version``.
        ``conversation_id`` is the conversation of ``mid`` (API v1 ignores it: its ids
        are global; Matrix needs the room)."""

    async def delete_message(self, mid: str, *,
                             conversation_id: str | None = None) -> Message:
        """Delete my message ``mid``; returns its tombstone (``deleted`` true, body "")."""

    async def mark_read(self, cid: str, mid: str) -> ReadMarker:
        """Move my read marker in ``cid`` forward to message ``mid``."""

    async def patch_conversation(self, cid: str, changes: dict[str, str | None]
                                 ) -> Conversation:
        """Change the settings named in ``changes`` (``title``; ``model``,
        ``system_prompt`` only where there is an assistant, else PermanentError); the
        same values again change nothing (sync rule 9). Returns the conversation now."""

    async def leave_conversation(self, cid: str) -> None:
        """Leave ``cid`` (Matrix: leave and forget the room); harmless to repeat, or
        PermanentError 404 when I am not in it, which is what the leave is for (sync
        rule 11)."""

    async def add_member(self, cid: str, username: str) -> Conversation:
        """Add ``username`` to ``cid`` (Matrix: invite; a user id or a localpart); a
        member already changes nothing (sync rule 11). Returns the conversation now."""

    async def remove_member(self, cid: str, username: str) -> Conversation:
        """Remove ``username`` from ``cid`` (Matrix: kick); not a member changes nothing
        (sync rule 11). Returns the conversation now."""

    async def user_exists(self, username: str) -> bool:
        """Whether the server knows the user ``username`` (Matrix: a user id), asked
        before a conversation is created (sync rule 3o)."""

    async def logout(self) -> None:
        """Revoke this client's token (``chat-tui logout``)."""

    async def sync(self, since: str | None, timeout: int = 0) -> SyncResponse:
        """The changes after the opaque cursor ``since`` (None: initial sync), waiting up
        to ``timeout`` seconds for one. A conversation whose new messages are more than
        the answer holds comes with ``limited`` true (rule S4): its older messages are
        fetched with :meth:`messages`.

        Raises:
            CursorExpired: ``since`` is no longer known (rule S6).
        """

    async def messages(self, cid: str, before: str | None = None,
                       limit: int = 50) -> MessagesPage:
        """Up to ``limit`` messages of ``cid`` older than message ``before`` (the newest
        when None), ascending, with ``has_more`` (rule S5)."""


__all__ = ["Backend"]

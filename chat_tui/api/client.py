"""``ApiClient``: one ``httpx.AsyncClient`` per account, turning responses into the wire
models (:mod:`chat_tui.wire`, through :func:`chat_tui.api.wire.parse_answer`) and failures
into classified errors
(:mod:`chat_tui.api.errors`). Never logs tokens or passwords.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import httpx

from chat_tui.api.errors import (
    ApiError,
    MalformedResponse,
    PermanentError,
    TransientError,
    classify,
)
from chat_tui.api.transport import HttpBackend, retry_after

if TYPE_CHECKING:
    from chat_tui.wire.models import (
        Conversation,
        Login,
        Message,
        MessagesPage,
        ModelList,
        ReadMarker,
        SyncResponse,
    )

log = logging.getLogger(__name__)


def _parse(model: str, response: httpx.Response) -> Any:
    """The answer ``response`` validated into the ``chat_tui.wire`` model named ``model``.

    The models (and pydantic) load on the first answer, not at import: an engine that
    starts offline never needs them.

    Raises:
        MalformedResponse: the body is not JSON or not that shape.
    """
    from chat_tui.api.wire import parse_answer
    from chat_tui.wire import models

    return parse_answer(getattr(models, model), response.content, response.status_code)


class ApiClient(HttpBackend):
    """Client of the wire API v1 (docs/api.md) on ``base_url`` (``http://host:port``); a
    :class:`chat_tui.api.backend.Backend`.

    Args:
        base_url: the server URL, without ``/v1``.
        token: the bearer token, or None before login.
        timeout: seconds for every request except the long-poll (which adds its own
            ``timeout`` to this).
        probe_timeout: seconds for ``GET /v1/health`` (3 s by default, sync rule C1).
        sync_read_timeout: seconds to wait for a ``/v1/sync`` answer to arrive, on top of
            its long-poll ``timeout`` (120 s by default: an initial sync of a reader in
            thousands of conversations is tens of megabytes that the server builds for a
            while; with the send ``timeout`` it would time out and retry forever).

    Every method raises :class:`TransientError` (also for connection errors and timeouts),
    :class:`PermanentError`, :class:`Unauthorized`, :class:`CursorExpired` or
    :class:`MalformedResponse`; never a raw httpx exception.
    """

    def _error(self, response: httpx.Response) -> ApiError:
        """API v1's error body ``{"error": {"code", "message"}}`` classified (rule 3b)."""
        code, reason = "", ""
        try:
            err = response.json().get("error", {})
            code, reason = str(err.get("code", "")), str(err.get("message", ""))
        except (ValueError, AttributeError):
            reason = response.text[:200]
        return classify(response.status_code, code, reason, retry_after(response))

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise MalformedResponse(f"HTTP {response.status_code}: body is not JSON",
                                    response.status_code) from exc

    async def health(self) -> bool:
        """``GET /v1/health`` (no auth) with the probe timeout (``probe_timeout`` seconds,
        sync rule C1). Returns True when the server answers 200 ``{"status": "ok"}``.

        Raises:
            TransientError: no answer (``reached_server`` False for connection errors), a
            timeout, or a 5xx/429; PermanentError: another 4xx; MalformedResponse: not JSON.
        """
        response = await self._send("GET", "/v1/health", timeout=self._probe_timeout,
                                       auth=False)
        body = self._json(response)
        return isinstance(body, dict) and body.get("status") == "ok"

    async def login(self, username: str, password: str, device_name: str) -> Login:
        """``POST /v1/login``; ``device_name`` labels the device's token. Returns the token
        and ids (:class:`Login`, whose ``repr`` hides the token).

        Raises:
            Unauthorized: wrong or malformed username or password (401).
            TransientError, PermanentError, MalformedResponse: see the class.
        """
        response = await self._send(
            "POST", "/v1/login", auth=False,
            json={"username": username, "password": password, "device_name": device_name})
        return _parse("Login", response)

    async def user_exists(self, username: str) -> bool:
        """``GET /v1/users/{username}``: True when the server has a user of that name
        (the assistant included), False on its ``404 not_found``.

        Raises:
            PermanentError: another refusal, or a server without this route (a 404 that
            is not the API's own ``not_found`` error: nothing can be checked there).
            TransientError, Unauthorized, MalformedResponse: see the class.
        """
        from urllib.parse import quote

        from chat_tui.api.errors import PermanentError

        try:
            response = await self._send("GET", f"/v1/users/{quote(username, safe='')}")
        except PermanentError as exc:
            if exc.status == 404 and exc.code == "not_found":
                return False
            raise
        _parse("UserInfo", response)
        return True

    async def logout(self) -> None:
        """``POST /v1/logout``: revoke this client's token (later requests get 401).

        Raises:
            Unauthorized: the token was already revoked or is unknown.
            TransientError, PermanentError: see the class.
        """
        await self._send("POST", "/v1/logout")

    async def put_conversation(self, cid: str, title: str, members: list[str],
                               assistant: bool, *, model: str | None = None,
                               system_prompt: str | None = None) -> Conversation:
        """``PUT /v1/conversations/{cid}``: create with a client-chosen UUID ``cid``
        (idempotent for its creator: a repeat returns the existing one). ``members`` are
        usernames; ``title`` 1..200 characters; ``model`` and ``system_prompt`` the
        assistant's (sent only when given; None: the server's own).

        Raises:
            PermanentError: 422 (bad title, unknown member), 404/409 (another user's id).
            TransientError, Unauthorized, MalformedResponse: see the class.
        """
        body: dict = {"title": title, "members": members, "assistant": assistant}
        if model is not None:
            body["model"] = model
        if system_prompt is not None:
            body["system_prompt"] = system_prompt
        response = await self._send("PUT", f"/v1/conversations/{cid}", json=body)
        return _parse("Conversation", response)

    async def patch_conversation(self, cid: str, changes: dict[str, str | None]
                                 ) -> Conversation:
        """``PATCH /v1/conversations/{cid}``: change the settings named in ``changes``
        (``title``, ``model``, ``system_prompt``; None for the server's own model or
        prompt); idempotent (the same values again change nothing). Returns the
        conversation as it is now.

        Raises:
            PermanentError: 422 (a value out of its limits), 404 (not a member).
            TransientError (429 included), Unauthorized, MalformedResponse: see the class.
        """
        response = await self._send("PATCH", f"/v1/conversations/{cid}", json=changes)
        return _parse("Conversation", response)

    async def leave_conversation(self, cid: str) -> None:
        """``DELETE /v1/conversations/{cid}``: leave it (with no person left it is gone
        for everyone); harmless to repeat.

        Raises:
            PermanentError: 404 (never a member).
            TransientError (429 included), Unauthorized: see the class.
        """
        await self._send("DELETE", f"/v1/conversations/{cid}")

    async def add_member(self, cid: str, username: str) -> Conversation:
        """``PUT /v1/conversations/{cid}/members/{username}`` (creator only): the
        conversation with its new members; a member already: unchanged.

        Raises:
            PermanentError: 403 (not the creator), 404 (not a member, unknown user), 422.
            TransientError (429 included), Unauthorized, MalformedResponse: see the class.
        """
        from urllib.parse import quote

        response = await self._send(
            "PUT", f"/v1/conversations/{cid}/members/{quote(username, safe='')}")
        return _parse("Conversation", response)

    async def remove_member(self, cid: str, username: str) -> Conversation:
        """``DELETE /v1/conversations/{cid}/members/{username}`` (creator only): the
        conversation without that member; not a member: unchanged.

        Raises:
            PermanentError: 403 (not the creator), 404, 409 (the creator itself), 422.
            TransientError (429 included), Unauthorized, MalformedResponse: see the class.
        """
        from urllib.parse import quote

        response = await self._send(
            "DELETE", f"/v1/conversations/{cid}/members/{quote(username, safe='')}")
        return _parse("Conversation", response)

    async def list_conversations(self) -> list[Conversation]:
        """``GET /v1/conversations``: the caller's conversations, most recently updated
        first.

        Raises:
            TransientError, PermanentError, Unauthorized, MalformedResponse: see the class.
        """
        response = await self._send("GET", "/v1/conversations")
        answer = _parse("ConversationList", response)
        return list(answer.conversations)

    async def list_models(self) -> ModelList:
        """``GET /v1/models``: the models the server's assistant offers (docs/api.md).

        Raises:
            TransientError, PermanentError, Unauthorized, MalformedResponse: see the class.
        """
        response = await self._send("GET", "/v1/models")
        return _parse("ModelList", response)

    async def messages(self, cid: str, before: str | None = None,
                       limit: int = 50) -> MessagesPage:
        """``GET /v1/conversations/{cid}/messages?before=&limit=``: up to ``limit``
        (1..500) messages older than message ``before`` (the newest page when None),
        ascending by ``seq``, with ``has_more``.

        Raises:
            PermanentError: 404 (not a member, or ``before`` unknown), 422 (bad limit).
            TransientError, Unauthorized, MalformedResponse: see the class.
        """
        params: dict[str, Any] = {"limit": limit}
        if before:
            params["before"] = before
        response = await self._send("GET", f"/v1/conversations/{cid}/messages",
                                       params=params)
        return _parse("MessagesPage", response)

    async def stop_reply(self, mid: str) -> Message:
        """``POST /v1/messages/{mid}/stop``: stop the assistant reply ``mid`` while it
        streams; returns it as it ended (unchanged when it was not streaming).

        Raises:
            PermanentError: 404 (not a member, unknown), 409 (not an assistant reply).
            TransientError, Unauthorized, MalformedResponse: see the class.
        """
        response = await self._send("POST", f"/v1/messages/{mid}/stop")
        return _parse("Message", response)

    async def regenerate(self, mid: str, reply_id: str) -> Message:
        """``POST /v1/messages/{mid}/regenerate``: a new reply ``reply_id`` (client-chosen,
        the idempotency key) to the question the assistant reply ``mid`` answers; returns
        it (empty and streaming at first; it grows through ``/v1/sync``).

        Raises:
            PermanentError: 404 (unknown, not a member), 409 (not a reply, still being
                written, replaced already, the question deleted, the id used elsewhere).
            TransientError (429 included), Unauthorized, MalformedResponse: see the class.
        """
        response = await self._send("POST", f"/v1/messages/{mid}/regenerate",
                                    json={"reply_id": reply_id})
        return _parse("Message", response)

    async def put_message(self, cid: str, mid: str, body: str, *,
                          attempted: bool = False) -> Message:
        """``PUT /v1/conversations/{cid}/messages/{mid}``: send ``body`` (1..65,536 UTF-8
        bytes); ``mid`` is the idempotency key, so a repeat returns the stored message
        (200), possibly with an older body (the caller then follows up with a PATCH).
        ``attempted`` changes nothing here: the server keeps idempotency keys for good.

        Raises:
            PermanentError: 413 (too long), 422 (empty), 404 (not a member), 409 (``mid``
            taken by another user). TransientError: 429 (with ``retry_after`` seconds),
            5xx, timeout, connection errors. Unauthorized, MalformedResponse: see the class.
        """
        response = await self._send("PUT", f"/v1/conversations/{cid}/messages/{mid}",
                                    json={"body": body})
        return _parse("Message", response)

    async def patch_message(self, mid: str, body: str, base_version: int | None, *,
                            conversation_id: str | None = None) -> Message:
        """``PATCH /v1/messages/{mid}``: edit my message to ``body`` (1..65,536 UTF-8
        bytes); ``base_version`` is informational; ``conversation_id`` is not used (message
        ids are global in API v1; the backend interface passes it for Matrix). Returns the message with its new
        ``version``; idempotent.

        Raises:
            PermanentError: 403 (another member's message), 404 (unknown, or not a
            member), 409 (a tombstone), 413, 422. TransientError,
            Unauthorized, MalformedResponse: see the class.
        """
        response = await self._send("PATCH", f"/v1/messages/{mid}",
                                       json={"body": body, "base_version": base_version})
        return _parse("Message", response)

    async def delete_message(self, mid: str, *,
                             conversation_id: str | None = None) -> Message:
        """``DELETE /v1/messages/{mid}``: leave a tombstone (``deleted: true``, body gone);
        returns it; idempotent. ``conversation_id`` is not used (see :meth:`patch_message`).

        Raises:
            PermanentError: 403 (another member's message), 404 (unknown, or not a
            member). TransientError, Unauthorized,
            MalformedResponse: see the class.
        """
        response = await self._send("DELETE", f"/v1/messages/{mid}")
        return _parse("Message", response)

    async def mark_read(self, cid: str, mid: str) -> ReadMarker:
        """``POST /v1/conversations/{cid}/read``: move my read marker to ``mid`` (forward
        only); returns the marker in force (which may be newer than ``mid``).

        Raises:
            PermanentError: 404 (not a member or unknown message), 422. TransientError,
            Unauthorized, MalformedResponse: see the class.
        """
        response = await self._send("POST", f"/v1/conversations/{cid}/read",
                                       json={"message_id": mid})
        return _parse("ReadMarker", response)

    async def sync(self, since: str | None, timeout: int = 0) -> SyncResponse:
        """``GET /v1/sync?since=&timeout=``: the delta sync long-poll (``timeout`` seconds,
        0..30; ``since`` None for the initial sync). The answer may take ``timeout`` plus
        ``sync_read_timeout`` seconds to arrive (sends use ``timeout`` alone).

        Raises:
            CursorExpired: 410, the cursor is too old (initial sync next).
            TransientError, PermanentError, Unauthorized, MalformedResponse: see the class.
        """
        params: dict[str, Any] = {"timeout": timeout}
        if since is not None:
            params["since"] = since
        response = await self._send("GET", "/v1/sync", params=params,
                                       timeout=self._sync_timeout(timeout))
        return _parse("SyncResponse", response)


__all__ = ["ApiClient", "ApiError", "PermanentError", "TransientError"]

"""The user actions of the engine (docs/engine.md): each is one short transaction of the
cache on the calling thread, then publishes what changed and wakes the drain; none waits
for the network (outbox rules 1-8, sync rules 3n-3p)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from chat_tui.store import ApplyResult

if TYPE_CHECKING:
    from chat_tui.api.backend import Backend
    from chat_tui.config import Settings
    from chat_tui.store import Cache
    from chat_tui.sync.bus import EventBus
    from chat_tui.sync.drain import Drain
    from chat_tui.sync.gate import Gate


class UserActions:
    """The user actions of :class:`~chat_tui.sync.engine.Engine` (a mixin of it): send,
    edit, delete, read markers, conversation creates and the answers to waiting actions
    (retry, send anyway, discard). Uses the engine's ``store``, ``settings``, ``base_url``,
    ``_token``, ``_api``, ``_bus``, ``_gate`` and ``_drain``."""

    store: Cache
    settings: Settings
    base_url: str
    _token: str | None
    _api: Backend | None
    _bus: EventBus
    _gate: Gate
    _drain: Drain

    def _after_action(self, res: ApplyResult | None = None) -> None:
        if res is not None:
            self._bus.emit_result(res)
        self._bus.emit_outbox()
        self._drain.poke()

    def _touching(self, message_id: str, action: Callable[[], Any]) -> Any:
        """Run ``action()`` (one store transaction about ``message_id``), then publish the
        message's change and wake the drain; returns what ``action`` returns."""
        self.store.ensure_open()
        msg = self.store.get_message(message_id)
        out = action()
        res = ApplyResult()
        if msg is not None:
            res.touch(msg.conversation_id, message_id)
        self._after_action(res)
        return out

    def send(self, conversation_id: str, body: str) -> str:
        """Queue a message (outbox rule 1): one local transaction inserts the local echo,
        its outbox row keyed by a fresh UUID and clears the draft. Returns the message id.

        Raises:
            StoreError: unknown conversation, empty body, body over 65,536 bytes, an
            encrypted Matrix room (rule M3).
        """
        self.store.ensure_open()
        self._refuse_encrypted(conversation_id)  # type: ignore[attr-defined]
        mid = self.store.enqueue_send(conversation_id, body)
        res = ApplyResult()
        res.touch(conversation_id, mid)
        self._after_action(res)
        return mid

    def edit(self, message_id: str, body: str) -> None:
        """Edit my message (outbox rule 7). Raises StoreError (not mine, deleted, empty)."""
        self._touching(message_id, lambda: self.store.enqueue_edit(message_id, body))

    def delete(self, message_id: str) -> None:
        """Delete my message (outbox rule 7). Raises StoreError when it is not mine."""
        self._touching(message_id, lambda: self.store.enqueue_delete(message_id))

    def retry(self, message_id: str) -> None:
        """A failed action of the message goes back to ``queued`` (outbox rule 3).
        Raises StoreError when nothing failed."""
        self._touching(message_id, lambda: self.store.retry(message_id))

    def retry_action(self, outbox_id: int) -> None:
        """Sync rule 3n: the failed or expired action ``outbox_id``, whatever its kind (a
        conversation create, a send, an edit, ...), goes back to ``queued``
        (``Cache.retry_action``) and the drain wakes.

        Raises:
            StoreError: no such action, or it is neither failed nor expired.
        """
        self.store.ensure_open()
        row = self.store.outbox_row(outbox_id)
        self.store.retry_action(outbox_id)
        res = ApplyResult()
        if row is not None:
            res.touch(row["conversation_id"], *([row["message_id"]] if row["message_id"]
                                                and row["kind"] != "read" else []))
        self._after_action(res)

    def outbox_list(self) -> list:
        """Every outbox action with its id, kind, state and reason, in outbox order
        (``Cache.outbox_list``: list of ``OutboxProblem``; sync rule 3n)."""
        self.store.ensure_open()
        return self.store.outbox_list()

    def discard_plan(self, outbox_id: int) -> list[str]:
        """What :meth:`discard_action` of ``outbox_id`` would remove, one readable line each
        (``Cache.discard_plan``), to show before asking. Raises StoreError as it does."""
        self.store.ensure_open()
        return self.store.discard_plan(outbox_id)

    def discard_action(self, outbox_id: int) -> str:
        """Sync rule 3n: discard the action ``outbox_id`` whatever its kind
        (``Cache.discard_action``: a discarded conversation create removes the local
        conversation and what is queued behind it). Returns the text that goes back to the
        user: a message's text (also back in its draft), or for a create the text of its
        unsent messages and its draft, which the caller shows; "" for a read marker.

        Raises:
            StoreError: no such action, or it is being sent right now.
        """
        self.store.ensure_open()
        row = self.store.outbox_row(outbox_id)
        text = self.store.discard_action(outbox_id)
        res = ApplyResult()
        if row is not None:
            res.touch(row["conversation_id"], *([row["message_id"]] if row["message_id"]
                                                and row["kind"] != "read" else []))
        self._after_action(res)
        return text

    def discard(self, message_id: str) -> str:
        """Remove a failed, expired or queued action of the message; its text goes back into
        the draft and is returned (outbox rule 3). Raises StoreError when in flight."""
        return self._touching(message_id, lambda: self.store.discard(message_id))

    def update_create_conversation(self, outbox_id: int, title: str,
                                   members: Sequence[str] = (), assistant: bool = False) -> None:
        """Change a waiting conversation create (title, members, assistant) and queue it
        again (``Cache.update_create_conversation``). Raises StoreError when it is not a
        waiting create or the title is invalid."""
        self.store.ensure_open()
        self.store.update_create_conversation(outbox_id, title, members, assistant)
        row = self.store.outbox_row(outbox_id)
        res = ApplyResult()
        if row is not None:
            res.touch(row["conversation_id"])
        self._after_action(res)

    def send_anyway(self, message_id: str) -> None:
        """An expired message goes back to ``queued`` (outbox rule 6)."""
        self._touching(message_id, lambda: self.store.send_anyway(message_id))

    def create_conversation(self, title: str, members: Sequence[str] = (),
                            assistant: bool = False, model: str | None = None,
                            system_prompt: str | None = None) -> str:
        """Create a conversation locally (works offline) and queue its create on the server
        (outbox rule 2), with the assistant's ``model`` and ``system_prompt`` (None: the
        server's own). Returns its new id. Raises StoreError on a bad title, a model or
        prompt out of its limits, or one given without the assistant."""
        self.store.ensure_open()
        cid = self.store.enqueue_create_conversation(str(uuid.uuid4()), title, members,
                                                     assistant, model, system_prompt)
        res = ApplyResult()
        res.touch(cid)
        self._after_action(res)
        return cid

    async def unknown_members(self, names: Sequence[str]) -> list[str]:
        """Which of the member usernames ``names`` the server does not know (sync rule
        3o), asked before a conversation is created (``chat-tui new``, the app's new
        conversation dialog): one ``GET /v1/users/{username}`` per distinct name,
        case-folded, in the order given; blank names are skipped.

        Raises:
            chat_tui.api.ApiError: the server could not be asked (offline, a 401, a
            server without the route): the caller creates the conversation anyway (it is
            queued, and a refusal shows as a failed create, rule 3n) or says it could not
            check.
        """
        wanted = list(dict.fromkeys(n.strip().lower() for n in names if n.strip()))
        if not wanted:
            return []
        if self._gate.work_offline:
            from chat_tui.api import TransientError

            raise TransientError("working offline: member names are not checked",
                                 reached_server=False)
        api = self._api
        own = api is None
        if own:
            api = self._backend()  # type: ignore[attr-defined]
        try:
            return [n for n in wanted if not await api.user_exists(n)]
        finally:
            if own:
                await api.aclose()

    def mark_read(self, conversation_id: str, message_id: str) -> None:
        """Move my read marker forward (locally at once; queued for the server)."""
        self.store.ensure_open()
        if self.store.enqueue_read(conversation_id, message_id):
            res = ApplyResult()
            res.touch(conversation_id)
            self._after_action(res)


__all__ = ["UserActions"]

"""Changes of a conversation's settings through the outbox (docs/sync.md, rule 9): its
title, the assistant's model and system prompt. A change shows at once (the local
conversation row), is queued as an ``update_conversation`` action in order with the
conversation's messages, stays shown on top of what sync brings until the server has it,
and when discarded gives the conversation back the values it had."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from chat_tui.store.cachefile import CacheFile
from chat_tui.store.errors import StoreError
from chat_tui.store.results import ApplyResult
from chat_tui.wire.limits import MAX_MODEL_CHARS, MAX_SYSTEM_PROMPT_CHARS, MAX_TITLE_CHARS

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.store.records import ConversationRecord

#: The settings of a conversation a user may change (``PATCH /v1/conversations/{cid}``).
SETTINGS = ("title", "model", "system_prompt")


def check_settings(changes: Mapping[str, str | None]) -> dict[str, str | None]:
    """``changes`` checked and normalised as the server does (docs/api.md, ``PATCH
    /v1/conversations/{cid}``): ``title`` trimmed, 1..200 characters; ``model`` trimmed,
    1..200 characters, or None (or "") for the server's default; ``system_prompt`` at most
    16,000 characters, or None (or only whitespace) for the server's own.

    Raises:
        StoreError: an unknown setting or a value out of its limits (nothing is saved).
    """
    out: dict[str, str | None] = {}
    for name, value in changes.items():
        if name not in SETTINGS:
            raise StoreError(f"unknown conversation setting {name!r}")
        if name == "title":
            title = (value or "").strip()
            if not 1 <= len(title) <= MAX_TITLE_CHARS:
                raise StoreError(f"a title has 1 to {MAX_TITLE_CHARS} characters")
            out[name] = title
        elif name == "model":
            model = (value or "").strip() or None
            if model is not None and len(model) > MAX_MODEL_CHARS:
                raise StoreError(f"a model id has at most {MAX_MODEL_CHARS} characters")
            out[name] = model
        else:
            prompt = value if value and value.strip() else None
            if prompt is not None and len(prompt) > MAX_SYSTEM_PROMPT_CHARS:
                raise StoreError(
                    f"a system prompt has at most {MAX_SYSTEM_PROMPT_CHARS:,} characters")
            out[name] = prompt
    return out


class ConversationChanges(CacheFile):
    """Conversation setting changes (part of :class:`~chat_tui.store.Cache`). Uses
    ``_append`` of :class:`~chat_tui.store.outbox.OutboxChanges` and ``_finish`` and
    ``_upsert_conversation`` of the drain's parts."""

    def enqueue_update_conversation(self, conversation_id: str,
                                    changes: Mapping[str, str | None]) -> int | None:
        """Sync rule 9: change the settings ``changes`` (``{"title" | "model" |
        "system_prompt": value}``, checked by :func:`check_settings`) of the conversation
        at once and queue an ``update_conversation`` action after the conversation's
        earlier actions; its payload keeps the values it replaces (``previous``), which a
        discard gives back. Returns the action's id, or None when nothing changes.

        Raises:
            StoreError: unknown or removed conversation, a model or system prompt for a
                conversation without the assistant, or a value out of its limits.
        """
        wanted = check_settings(changes)
        C = self.m.Conversation
        with self._write():
            conv = C.get_or_none(C.id == conversation_id)
            if conv is None or conv.removed:
                raise StoreError(f"unknown conversation {conversation_id}")
            if not conv.assistant and ("model" in wanted or "system_prompt" in wanted):
                raise StoreError("only a conversation with the assistant has a model and a "
                                 "system prompt")
            changed = {k: v for k, v in wanted.items() if getattr(conv, k) != v}
            if not changed:
                return None
            previous = {k: getattr(conv, k) for k in changed}
            oid = self._append("update_conversation", conversation_id, None,
                               {**changed, "previous": previous})
            C.update(**changed).where(C.id == conversation_id).execute()
            return oid

    def _pending_settings(self, conversation_id: str) -> dict[str, Any]:
        """The settings my queued ``update_conversation`` actions set, the latest per
        field: shown on top of the server's copy until acknowledged (as an edit is, sync
        rule S3). In the caller's transaction."""
        Ob = self.m.Outbox
        out: dict[str, Any] = {}
        rows = (Ob.select(Ob.payload).where((Ob.conversation_id == conversation_id)
                                           & (Ob.kind == "update_conversation"))
                .order_by(Ob.id).tuples())
        for (payload,) in rows:
            data = json.loads(payload or "{}")
            out.update({k: data[k] for k in SETTINGS if k in data})
        return out

    def _undo_update_conversation(self, row: Any) -> None:
        """A discarded ``update_conversation`` action ``row``: the settings it changed go
        back to the values it replaced, with my later changes made again on top (their
        own ``previous`` values are set to what they now replace, so a later discard
        gives back the right ones). In the caller's transaction, after the row is
        deleted."""
        C, Ob = self.m.Conversation, self.m.Outbox
        state = {k: v for k, v in json.loads(row.payload or "{}").get("previous", {}).items()
                 if k in SETTINGS}
        later = (Ob.select(Ob.id, Ob.payload).where(
            (Ob.conversation_id == row.conversation_id) & (Ob.id > row.id)
            & (Ob.kind == "update_conversation")).order_by(Ob.id).tuples())
        for oid, payload in list(later):
            change = json.loads(payload or "{}")
            previous = change.setdefault("previous", {})
            for name in SETTINGS:
                if name in change and name in state:
                    previous[name] = state[name]
                    state[name] = change[name]
            Ob.update(payload=json.dumps(change)).where(Ob.id == oid).execute()
        if state:
            C.update(**state).where(C.id == row.conversation_id).execute()

    def ack_conversation_update(self, outbox_id: int,
                                conversation: ConversationRecord) -> ApplyResult:
        """The server changed the conversation's settings (``PATCH`` answered): remove the
        action, then store the server's copy (with my later changes still on top), in one
        transaction."""
        res = ApplyResult()
        with self._write():
            self._finish(outbox_id, None)
            self._upsert_conversation(conversation, res)
        return res


__all__ = ["SETTINGS", "ConversationChanges", "check_settings"]

"""Changes of a conversation through the outbox: its settings (docs/sync.md, rule 9: the
title, the assistant's model and system prompt) and who is in it (rule 11: leave, add and
remove members). A change shows at once (the local conversation row; a leave hides the
conversation), is queued in order with the conversation's messages, stays shown on top of
what sync brings until the server has it, and when discarded gives the conversation back
what it had."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from chat_tui.store.cachefile import CacheFile
from chat_tui.store.errors import StoreError
from chat_tui.store.results import ApplyResult
from chat_tui.wire.limits import (
    ASSISTANT_USERNAME,
    MAX_MODEL_CHARS,
    MAX_SYSTEM_PROMPT_CHARS,
    MAX_TITLE_CHARS,
    USERNAME_RE,
)

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


#: A Matrix user id (``@localpart:server``), a member's name in a Matrix account's cache
#: (whose own name, ``_me``, is one too).
MATRIX_USER_ID_RE = re.compile(r"^@[a-z0-9._=/+-]{1,255}:[a-z0-9.\[\]:-]{1,255}$")


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

    def _pending_settings(self, conversation_id: str,
                          members: str | None = None) -> dict[str, Any]:
        """The settings my queued ``update_conversation`` actions set, the latest per
        field, and, given the server's ``members`` (JSON list), the members my queued
        ``add_member`` / ``remove_member`` actions make of them (key ``members``, JSON):
        shown on top of the server's copy until acknowledged (as an edit is, sync rule
        S3). In the caller's transaction."""
        Ob = self.m.Outbox
        out: dict[str, Any] = {}
        names = set(json.loads(members)) if members is not None else None
        rows = (Ob.select(Ob.kind, Ob.payload).where(
            (Ob.conversation_id == conversation_id)
            & Ob.kind.in_(("update_conversation", "add_member", "remove_member")))
                .order_by(Ob.id).tuples())
        for kind, payload in rows:
            data = json.loads(payload or "{}")
            if kind == "update_conversation":
                out.update({k: data[k] for k in SETTINGS if k in data})
            elif names is not None:
                (names.add if kind == "add_member" else names.discard)(data["username"])
                out["members"] = json.dumps(sorted(names))
        return out

    def _undo_update_conversation(self, row: Any) -> None:
        """A discarded ``update_conversation``, ``add_member`` or ``remove_member`` action
        ``row``: what it changed goes back to what it replaced, with my later changes made
        again on top (their own ``previous`` values are set to what they now replace, so a
        later discard gives back the right ones). In the caller's transaction, after the
        row is deleted."""
        C, Ob = self.m.Conversation, self.m.Outbox
        data = json.loads(row.payload or "{}")
        state: dict[str, Any] = {k: v for k, v in data.get("previous", {}).items()
                                 if k in SETTINGS}
        members = set(data["previous_members"]) if "previous_members" in data else None
        later = (Ob.select(Ob.id, Ob.kind, Ob.payload).where(
            (Ob.conversation_id == row.conversation_id) & (Ob.id > row.id)
            & Ob.kind.in_(("update_conversation", "add_member", "remove_member")))
                 .order_by(Ob.id).tuples())
        for oid, kind, payload in list(later):
            change = json.loads(payload or "{}")
            if kind == "update_conversation":
                previous = change.setdefault("previous", {})
                for name in SETTINGS:
                    if name in change and name in state:
                        previous[name] = state[name]
                        state[name] = change[name]
            elif members is not None:
                change["previous_members"] = sorted(members)
                (members.add if kind == "add_member" else members.discard)(change["username"])
            Ob.update(payload=json.dumps(change)).where(Ob.id == oid).execute()
        if members is not None:
            state["members"] = json.dumps(sorted(members))
        if state:
            C.update(**state).where(C.id == row.conversation_id).execute()

    def creator_of(self, conversation_id: str) -> str:
        """The username of the conversation's creator ("" when it is not cached)."""
        C = self.m.Conversation
        row = C.select(C.creator).where(C.id == conversation_id).first()
        return row.creator if row is not None else ""

    def enqueue_leave(self, conversation_id: str) -> int:
        """Sync rule 11: leave the conversation (``DELETE /v1/conversations/{id}``; with no
        person left it is gone for everyone): queued after its earlier actions, and the
        conversation leaves the list at once (it shows again if the leave fails). A leave
        already waiting is not queued twice. Returns the action's id.

        Raises:
            StoreError: unknown conversation, or left already.
        """
        C, Ob = self.m.Conversation, self.m.Outbox
        with self._write():
            conv = C.get_or_none(C.id == conversation_id)
            if conv is None or conv.removed:
                raise StoreError(f"unknown conversation {conversation_id}")
            waiting = (Ob.select(Ob.id).where((Ob.conversation_id == conversation_id)
                                              & (Ob.kind == "leave_conversation")).first())
            if waiting is not None:
                return waiting.id
            return self._append("leave_conversation", conversation_id, None, {})

    def enqueue_member_change(self, conversation_id: str, username: str, add: bool) -> int | None:
        """Sync rule 11: add (``add``) or remove a member of a conversation I created:
        the members change at once and an ``add_member`` / ``remove_member`` action is
        queued after the earlier ones (its payload keeps the members it replaces, which a
        discard gives back). Returns the action's id, or None when nothing changes.

        Raises:
            StoreError: unknown conversation, not its creator, a malformed username (a
                Matrix user id is one in a Matrix account's cache), the assistant, or
                removing myself (leave instead).
        """
        name = username.strip().lower()
        if not (USERNAME_RE.match(name) or (self._me.startswith("@")
                                            and MATRIX_USER_ID_RE.match(name))):
            raise StoreError(f"invalid username {username!r}")
        if name == ASSISTANT_USERNAME:
            raise StoreError("the assistant is chosen when the conversation is created")
        if name == self._me and not add:
            raise StoreError("to leave a conversation, delete it from your list")
        C = self.m.Conversation
        with self._write():
            conv = C.get_or_none(C.id == conversation_id)
            if conv is None or conv.removed:
                raise StoreError(f"unknown conversation {conversation_id}")
            if conv.creator != self._me:
                raise StoreError("only the creator of a conversation adds and removes members")
            members = json.loads(conv.members or "[]")
            if (name in members) == add:
                return None
            changed = sorted({*members, name} if add else set(members) - {name})
            oid = self._append("add_member" if add else "remove_member", conversation_id,
                               None, {"username": name, "previous_members": members})
            C.update(members=json.dumps(changed)).where(C.id == conversation_id).execute()
            return oid

    def ack_leave(self, outbox_id: int, answer: object = None) -> ApplyResult:
        """The server has me out of the conversation (a leave answered, or ``404``: I was
        not in it any more): remove the action, the cached messages no other action of
        mine refers to, and keep the conversation as a tombstone (``removed``), in one
        transaction. Drafts stay (nothing typed is lost)."""
        C, M, Ob = self.m.Conversation, self.m.Message, self.m.Outbox
        res = ApplyResult()
        with self._write():
            row = Ob.get_or_none(Ob.id == outbox_id)
            if row is None:
                return res
            cid = row.conversation_id
            self._finish(outbox_id, None)
            referenced = Ob.select(Ob.message_id).where(Ob.message_id.is_null(False))
            M.delete().where((M.conv == self._ckey(cid)) & M.id.not_in(referenced)).execute()
            self.m.Gap.delete().where(self.m.Gap.conversation == cid).execute()
            C.update(removed=True).where(C.id == cid).execute()
            if self._get_meta("last_conversation") == cid:
                self._set_meta("last_conversation", None)
            res.touch(cid)
        return res

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

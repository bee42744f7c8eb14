"""The outbox seen as one FIFO queue per conversation (docs/sync.md, outbox rules 2, 3
and 6): which head actions are due, which actions wait behind a failed or expired one
(blocked), how many actions are in each state, which ones wait for the user, and the
expiry of old sends."""

from __future__ import annotations

import json

from peewee import fn

from chat_tui.store.cachefile import CacheFile
from chat_tui.store.convert import now as _now
from chat_tui.store.convert import preview
from chat_tui.store.more_views import OutboxProblem
from chat_tui.store.outbox_state import (
    COUNTS_BY_STATE_SQL,
    MY_COUNTS_BY_STATE_SQL,
    WAITS_FOR_USER,
    OutboxState,
)
from chat_tui.store.results import OutboxAction
from chat_tui.store.views import OUTBOX_STATES


def action_text(kind: str, payload: dict) -> str:
    """What an outbox action of ``kind`` with ``payload`` carries, in words for the user: a
    message's text, a conversation's title, or for a settings change (sync rule 9) each
    setting it makes (``title: …; model: …; system prompt: …``, ``default`` for a
    setting given back to the server)."""
    if kind == "regenerate":
        return "a new reply"
    if kind == "leave_conversation":
        return "leave the conversation"
    if kind in ("add_member", "remove_member"):
        return f"{kind.split('_')[0]} {payload.get('username', '')}"
    if kind == "update_conversation":
        names = {"title": "title", "model": "model", "system_prompt": "system prompt"}
        return "; ".join(f"{label}: {payload[key] or 'default'}"
                         for key, label in names.items() if key in payload)
    return payload.get("body") or payload.get("title") or ""


class OutboxQueue(CacheFile):
    """The outbox's queues (part of :class:`~chat_tui.store.Cache`): read by the UI
    (counts, problems), the CLI (rows) and the drain (next actions, expiry)."""

    def outbox_counts(self, *, reads: bool = True) -> dict[str, int]:
        """Outbox actions by state: keys ``queued``, ``sending``, ``failed``, ``blocked``,
        ``expired`` (a queued action behind a failed or expired one counts as blocked).
        ``reads=False`` leaves read markers out: my actions, what the app's outbox
        indicator shows; the engine and the CLI count every action."""
        counts = dict.fromkeys(OUTBOX_STATES, 0)
        sql = COUNTS_BY_STATE_SQL if reads else MY_COUNTS_BY_STATE_SQL
        for state, n in self.db.execute_sql(sql).fetchall():
            counts[state] = n
        return counts

    def problems(self) -> list[OutboxProblem]:
        """Every outbox action that waits for the user: failed, expired, and blocked behind
        one of those (bug class 5: nothing blocked is hidden), in outbox order."""
        Ob = self.m.Outbox
        out = []
        blockers: dict[str, object] = {}
        for o in Ob.select().where(Ob.kind != "read").order_by(Ob.id):
            blocker = blockers.get(o.conversation_id)
            if o.state in WAITS_FOR_USER:
                state, reason = o.state, o.last_error or o.state
                if blocker is None:
                    blockers[o.conversation_id] = o
            elif blocker is not None and o.state == OutboxState.QUEUED:
                state = OutboxState.BLOCKED
                reason = f"blocked behind {blocker.kind} {blocker.message_id or blocker.id} ({blocker.state})"
            else:
                continue
            text = action_text(o.kind, json.loads(o.payload or "{}"))
            out.append(OutboxProblem(o.message_id, o.conversation_id, state, reason,
                                     preview(text), o.id, o.kind))
        return out

    def outbox_list(self) -> list[OutboxProblem]:
        """Every outbox action, whatever its kind (``create_conversation``, ``send``,
        ``edit``, ``delete``, ``read``, ``update_conversation``, ``regenerate``, ...) and state, in outbox order, as the user sees it
        (``chat-tui outbox``, sync rule 3n): ``state`` is the stored one except ``blocked``
        for a queued action behind a failed or expired one of its conversation (a read
        marker is never blocked, rule 3k); ``reason`` is the server's reason for a failure,
        the expiry text, ``blocked behind <kind> <id> (<state>)``, the last transient error
        of a queued action, or ""; ``body_preview`` is the text, title or marked message
        (:func:`action_text`)."""
        Ob = self.m.Outbox
        out = []
        blockers: dict[str, object] = {}
        for o in Ob.select().order_by(Ob.id):
            blocker = blockers.get(o.conversation_id)
            state, reason = o.state, o.last_error or ""
            if o.kind == "read":
                pass
            elif o.state in WAITS_FOR_USER:
                reason = o.last_error or o.state
                if blocker is None:
                    blockers[o.conversation_id] = o
            elif blocker is not None and o.state == OutboxState.QUEUED:
                state = OutboxState.BLOCKED
                reason = (f"blocked behind {blocker.kind} "
                          f"{blocker.message_id or blocker.id} ({blocker.state})")
            payload = json.loads(o.payload or "{}")
            text = action_text(o.kind, payload) or payload.get("message_id") or ""
            out.append(OutboxProblem(o.message_id, o.conversation_id, state, reason,
                                     preview(text), o.id, o.kind))
        return out

    def outbox_rows(self) -> list[OutboxAction]:
        """Every outbox action in FIFO order (for status and tests)."""
        Ob = self.m.Outbox
        return [self._action(o) for o in Ob.select().order_by(Ob.id)]

    def outbox_row(self, outbox_id: int) -> dict | None:
        """Raw fields of one outbox row (``state``, ``attempts``, ``next_attempt_at``,
        ``last_error``, ...) or None; for status output and tests."""
        Ob = self.m.Outbox
        row = Ob.select().where(Ob.id == outbox_id).dicts().first()
        return row

    def has_unsent(self) -> bool:
        """True while any action waits in the outbox (``cache clear`` refuses then)."""
        return self.m.Outbox.select().exists()

    @staticmethod
    def _action(o) -> OutboxAction:
        """The snapshot of outbox row ``o`` handed to the drain."""
        return OutboxAction(o.id, o.kind, o.conversation_id, o.message_id,
                            json.loads(o.payload or "{}"), o.attempts, o.transient_failures)

    def _rows_for(self, message_id: str, kind: str | None = None) -> list:
        """The outbox rows acting on the message (send, edit, delete), FIFO, only those of
        ``kind`` when given; read-marker rows only point at it and are not its actions."""
        Ob = self.m.Outbox
        q = Ob.select().where((Ob.message_id == message_id) & (Ob.kind != "read"))
        if kind:
            q = q.where(Ob.kind == kind)
        return list(q.order_by(Ob.id))

    def _first_blocker(self, cid: str) -> int | None:
        """The outbox id of conversation ``cid``'s first failed or expired action, or None:
        every queued action after it is blocked (outbox rule 3)."""
        Ob = self.m.Outbox
        return (Ob.select(fn.MIN(Ob.id))
                .where((Ob.conversation_id == cid) & Ob.state.in_(WAITS_FOR_USER))
                .scalar())

    def next_actions(self, now: float | None = None) -> list[OutboxAction]:
        """Outbox rules 2-3: the head action of every conversation whose head is ``queued``
        and due at ``now`` (epoch seconds, default the clock; a failed/expired head blocks
        its conversation; a ``sending`` head is in flight), in outbox order."""
        now = _now() if now is None else now
        Ob = self.m.Outbox
        heads = Ob.select(fn.MIN(Ob.id)).group_by(Ob.conversation_id)
        rows = (Ob.select().where(Ob.id.in_(heads) & (Ob.state == OutboxState.QUEUED)
                                 & (Ob.next_attempt_at <= now)).order_by(Ob.id))
        return [self._action(o) for o in rows]

    def next_due_at(self) -> float | None:
        """Epoch seconds when the earliest queued head becomes due, or None when none waits."""
        Ob = self.m.Outbox
        heads = Ob.select(fn.MIN(Ob.id)).group_by(Ob.conversation_id)
        return (Ob.select(fn.MIN(Ob.next_attempt_at))
                .where(Ob.id.in_(heads) & (Ob.state == OutboxState.QUEUED)).scalar())

    def blocked_messages(self, conversation_id: str) -> list[str]:
        """Ids of the messages whose actions in ``conversation_id`` are blocked (queued
        behind its first failed or expired action, outbox rule 3), in outbox order: what a
        new failure or expiry changes besides its own message (bug class 5)."""
        Ob = self.m.Outbox
        first = (Ob.select(fn.MIN(Ob.id))
                 .where((Ob.conversation_id == conversation_id) & (Ob.kind != "read")
                        & Ob.state.in_(WAITS_FOR_USER)).scalar())
        if first is None:
            return []
        rows = (Ob.select(Ob.message_id)
                .where((Ob.conversation_id == conversation_id) & (Ob.kind != "read")
                       & (Ob.state == OutboxState.QUEUED) & (Ob.id > first)
                       & Ob.message_id.is_null(False))
                .order_by(Ob.id).tuples())
        return list(dict.fromkeys(mid for (mid,) in rows))

    def expire_old(self, max_age: float, now: float | None = None) -> list[str]:
        """Outbox rule 6: queued sends older than ``max_age`` seconds become ``expired``
        (0 turns it off). Returns their message ids."""
        if max_age <= 0:
            return []
        now = _now() if now is None else now
        Ob = self.m.Outbox
        due = ((Ob.state == OutboxState.QUEUED) & (Ob.kind == "send")
               & (Ob.queued_at < now - max_age))
        if not Ob.select().where(due).exists():
            return []  # the usual case: no write transaction (the drain asks every round)
        with self._write():
            rows = list(Ob.select().where(due))
            if rows:
                hours = max_age / 3600
                Ob.update(state=OutboxState.EXPIRED,
                          last_error=f"not sent within {hours:g} h; send anyway or discard",
                          ).where(Ob.id.in_([o.id for o in rows])).execute()
        return [o.message_id for o in rows]


__all__ = ["OutboxQueue"]

"""The states of an outbox action (docs/sync.md, outbox rules 3 to 6).

No imports beyond the standard library: ``chat_tui.store.views`` builds its
``OUTBOX_STATES`` from it on the app's first-frame path.
"""

from __future__ import annotations

from enum import StrEnum


class OutboxState(StrEnum):
    """The state of one outbox action.

    A ``StrEnum``: each member equals (and hashes as) its string, which is what the
    ``outbox.state`` column stores, what the SQL of the store spells, and what the engine,
    the UI and the CLI compare with (``state == "failed"`` stays true).

    - ``QUEUED``: waits for its turn; sent when it is its conversation's head and due.
    - ``SENDING``: in flight, attempt counted (outbox rule 4); back to ``QUEUED`` on start.
    - ``FAILED``: refused for good or out of attempts (outbox rule 3); blocks its
      conversation until the user retries or discards it.
    - ``EXPIRED``: a send older than ``max_queue_age`` (outbox rule 6); blocks likewise
      until the user sends it anyway or discards it.
    - ``BLOCKED``: never stored; the read API's name for a ``QUEUED`` action behind a
      failed or expired one of its conversation (outbox rule 3, bug class 5).
    """

    QUEUED = "queued"
    SENDING = "sending"
    FAILED = "failed"
    BLOCKED = "blocked"
    EXPIRED = "expired"


#: Stored states that stop a conversation's queue until the user acts (outbox rules 3, 6).
WAITS_FOR_USER: tuple[OutboxState, ...] = (OutboxState.FAILED, OutboxState.EXPIRED)


def _counts_by_state(where: str) -> str:
    """The query of :data:`COUNTS_BY_STATE_SQL` restricted by ``where`` (a ``WHERE``
    clause over ``outbox o``, or "")."""
    return f"""
WITH blockers AS (
    SELECT conversation_id, min(id) AS first_id FROM outbox
     WHERE state IN ('{OutboxState.FAILED}', '{OutboxState.EXPIRED}') GROUP BY conversation_id)
SELECT CASE WHEN o.state = '{OutboxState.QUEUED}' AND o.id > b.first_id
       THEN '{OutboxState.BLOCKED}' ELSE o.state END AS s, count(*)
  FROM outbox o LEFT JOIN blockers b ON b.conversation_id = o.conversation_id
 {where}
 GROUP BY s
"""


#: The outbox's actions counted by the state the read API shows (rows ``(state,
#: count)``; a queued action behind a failed or expired one of its conversation counts as
#: ``blocked``), for ``Cache.outbox_counts`` and the first frame's reader. The first
#: failed or expired action of each conversation is computed once and joined (a
#: correlated ``EXISTS`` per row costs O(n^2): 6 ms with 1,000 queued sends, and the
#: engine asks twice per message sent).
COUNTS_BY_STATE_SQL = _counts_by_state("")

#: As :data:`COUNTS_BY_STATE_SQL`, read markers left out: my actions, what the app's
#: outbox indicator counts (as the offline banner, the problems panel and the list's
#: queued counts do; a read marker is never failed or blocked, rule 3j).
MY_COUNTS_BY_STATE_SQL = _counts_by_state("WHERE o.kind != 'read'")

#: The column ``problems`` of a conversation-list query over ``conversation c``: how many
#: of the conversation's actions wait for the user (``ConversationView.problem_count``):
#: its failed and expired ones and the queued ones behind the first of them (blocked),
#: read markers left out, as ``Cache.problems`` lists them. One indexed look-up when the
#: conversation has no failed or expired action.
PROBLEMS_COLUMN_SQL = f"""
       (SELECT count(*) FROM outbox o
         WHERE o.conversation_id = c.id AND o.kind != 'read'
           AND o.state IN ('{OutboxState.FAILED}', '{OutboxState.EXPIRED}',
                           '{OutboxState.QUEUED}')
           AND o.id >= (SELECT min(f.id) FROM outbox f
                         WHERE f.conversation_id = c.id AND f.kind != 'read'
                           AND f.state IN ('{OutboxState.FAILED}', '{OutboxState.EXPIRED}'))
       ) AS problems"""

#: The condition of a listed conversation ``c``: no leave of it waits in the outbox (one
#: that failed or expired does not hide it; sync rule 11). One pass over the outbox's
#: leaves for the whole list: as a correlated ``NOT EXISTS`` it was an index look-up per
#: conversation, 1.9 of the 4.5 ms of the first frame's list read at 10,000 conversations.
NOT_LEAVING_SQL = (f"c.id NOT IN (SELECT l.conversation_id FROM outbox l "
                   f"WHERE l.kind = 'leave_conversation' AND l.state NOT IN "
                   f"('{OutboxState.FAILED}', '{OutboxState.EXPIRED}') "
                   f"AND l.conversation_id IS NOT NULL)")

#: The key under which :data:`PENDING_BY_KIND_SQL` counts the actions that wait for the
#: user (failed, expired, and queued behind one of them: blocked): never an outbox kind.
WAITING_FOR_USER = ":waiting-for-user"

#: My actions in the outbox of every listed conversation (read markers left out), by
#: outbox kind, except those that wait for the user, which count under
#: :data:`WAITING_FOR_USER` (as :data:`PROBLEMS_COLUMN_SQL` counts them): what the offline
#: banner names. Rows ``(kind, count)``.
PENDING_BY_KIND_SQL = f"""
SELECT CASE WHEN o.state IN ('{OutboxState.FAILED}', '{OutboxState.EXPIRED}')
              OR (o.state = '{OutboxState.QUEUED}' AND o.id > b.first_id)
            THEN '{WAITING_FOR_USER}' ELSE o.kind END AS k, count(*)
  FROM outbox o JOIN conversation c ON c.id = o.conversation_id
  LEFT JOIN (SELECT conversation_id, min(id) AS first_id FROM outbox
              WHERE kind != 'read'
                AND state IN ('{OutboxState.FAILED}', '{OutboxState.EXPIRED}')
              GROUP BY conversation_id) b ON b.conversation_id = o.conversation_id
 WHERE NOT c.removed AND o.kind != 'read' GROUP BY k
"""

#: Which state a message shows when several of its actions are pending: the one the user
#: most needs to see (a failure over an expiry over a send in flight over a wait).
SHOWN_FIRST: dict[str, int] = {
    OutboxState.FAILED: 5,
    OutboxState.EXPIRED: 4,
    OutboxState.SENDING: 3,
    OutboxState.BLOCKED: 2,
    OutboxState.QUEUED: 1,
}



def shown_state(seq: int | None, actions, blocker: int | None,
                others_read: int | None) -> tuple[str, str | None]:
    """The state my message shows and the reason to show with it.

    ``seq``: the message's server seq (None before its acknowledgement); ``actions``: its
    pending outbox rows in FIFO order, each with ``id``, ``state`` and ``last_error``
    (read markers left out: outbox rule 8); ``blocker``: the outbox id of its
    conversation's first failed or expired action, or None; ``others_read``: the highest
    seq another member's read marker reached, or None. Of the actions, the one
    :data:`SHOWN_FIRST` puts first wins (a queued one after ``blocker`` counts as blocked,
    outbox rule 3); without any, ``read`` once ``others_read`` reaches ``seq``, else
    ``sent``."""
    best, reason = None, None
    for o in actions:
        state = o.state
        if state == OutboxState.QUEUED and blocker is not None and o.id > blocker:
            state = OutboxState.BLOCKED
        if best is None or SHOWN_FIRST[state] > SHOWN_FIRST[best]:
            best, reason = state, o.last_error if state in WAITS_FOR_USER else None
    if best is not None:
        return best, reason
    if seq is not None and others_read is not None and others_read >= seq:
        return "read", None
    return "sent", None


__all__ = ["SHOWN_FIRST", "WAITS_FOR_USER", "OutboxState", "shown_state"]

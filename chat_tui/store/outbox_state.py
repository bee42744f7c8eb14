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

#: Which state a message shows when several of its actions are pending: the one the user
#: most needs to see (a failure over an expiry over a send in flight over a wait).
SHOWN_FIRST: dict[str, int] = {
    OutboxState.FAILED: 5,
    OutboxState.EXPIRED: 4,
    OutboxState.SENDING: 3,
    OutboxState.BLOCKED: 2,
    OutboxState.QUEUED: 1,
}

__all__ = ["SHOWN_FIRST", "WAITS_FOR_USER", "OutboxState"]

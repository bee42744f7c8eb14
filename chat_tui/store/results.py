"""What the cache's write API hands back to the engine: :class:`ApplyResult` (what a
write changed, for the engine's events) and :class:`OutboxAction` (one outbox row for the
drain worker)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ApplyResult:
    """What a write changed, for the engine's events: ``conversations`` (set of ids),
    ``messages`` (conversation id -> set of message ids), ``added`` (int, messages new to
    the cache)."""

    conversations: set[str] = field(default_factory=set)
    messages: dict[str, set[str]] = field(default_factory=dict)
    added: int = 0

    def touch(self, cid: str, mid: str | None = None) -> None:
        """Record that conversation ``cid`` changed and, when given, its message ``mid``
        (both ids are str). Never raises."""
        self.conversations.add(cid)
        if mid is not None:
            self.messages.setdefault(cid, set()).add(mid)

    def merge(self, other: ApplyResult) -> ApplyResult:
        """Add ``other``'s conversations, messages and ``added`` count into this result;
        returns ``self`` (for chaining). ``other`` is not changed."""
        self.conversations |= other.conversations
        for cid, mids in other.messages.items():
            self.messages.setdefault(cid, set()).update(mids)
        self.added += other.added
        return self


@dataclass(frozen=True)
class OutboxAction:
    """One outbox row handed to the drain worker (a snapshot, not a live row).

    ``kind`` is ``create_conversation``, ``send``, ``edit``, ``delete`` or ``read``;
    ``message_id`` is None for a conversation create; ``payload`` is the decoded JSON the
    request needs; ``attempts`` counts attempts made (this one included once it is
    ``sending``), ``transient_failures`` those that got a transient failure (outbox rule 5).
    """

    id: int
    kind: str
    conversation_id: str
    message_id: str | None
    payload: dict
    attempts: int
    transient_failures: int


__all__ = ["ApplyResult", "OutboxAction"]

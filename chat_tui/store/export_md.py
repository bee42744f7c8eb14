"""Conversations as Markdown, for ``chat-tui export --format md`` and the app's export.

Takes what :meth:`chat_tui.store.Cache.export` returns. Standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["conversations_markdown"]


def conversations_markdown(conversations: Iterable[dict]) -> str:
    """Markdown of ``conversations`` (``Cache.export`` dicts): per conversation a ``#``
    title and its members, then each message, oldest first, as ``**author** time``
    (``(edited)``, and its outbox state when it is not sent yet) and its body; a person's
    deleted message reads ``*(deleted)*`` (a replaced assistant reply is not in
    ``Cache.export``, sync rule 10). Times as stored (RFC 3339 UTC)."""
    parts: list[str] = []
    for conv in conversations:
        parts.append(f"# {conv['title']}\n\nMembers: {', '.join(conv['members'])}\n\n")
        for m in conv["messages"]:
            body = "*(deleted)*" if m["deleted"] else m["body"]
            flag = f" ({m['state']})" if m["state"] not in (None, "sent", "read") else ""
            edited = " (edited)" if m["edited"] else ""
            parts.append(f"**{m['author']}** {m['created_at']}{edited}{flag}\n\n{body}\n\n")
    return "".join(parts)

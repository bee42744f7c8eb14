"""Which cached messages a conversation shows (sync rule 10): every one except a tombstone
of the assistant's. An assistant reply is tombstoned only when a newer reply to the same
question replaced it (docs/api.md, regenerate) or with its conversation, so the new reply
takes its place in the message window and the export; a person's deleted message stays,
shown as ``(deleted)``.

Standard library only (the first frame's reader uses it, :mod:`chat_tui.store.first_frame`).
"""

from __future__ import annotations

__all__ = ["ASSISTANT_AUTHOR", "SHOWN_M_SQL", "SHOWN_SQL"]

#: Author name of the assistant's messages; equal to
#: ``chat_tui.wire.limits.ASSISTANT_USERNAME`` (a test checks it), written out here so
#: the first frame imports nothing of ``chat_tui.wire``.
ASSISTANT_AUTHOR = "assistant"

#: SQL condition on a row of the cache's ``message`` table (unqualified columns): true for
#: a message the conversation shows. Every read of a message window, a page of it and its
#: "older messages exist" check applies it, so paging and counting agree with the screen.
SHOWN_SQL = f"NOT (deleted AND author = '{ASSISTANT_AUTHOR}')"

#: :data:`SHOWN_SQL` for the ``message`` table aliased ``m`` (a conversation's preview).
SHOWN_M_SQL = f"NOT (m.deleted AND m.author = '{ASSISTANT_AUTHOR}')"

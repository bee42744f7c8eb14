"""The window of the conversation list kept in memory (pure Python, no Textual).

Only the most recent conversations are read (:data:`LIST_WINDOW`, the first frame
:data:`FIRST_FRAME_CONVERSATIONS`): reading 10,000 conversations whole costs ~0.15 s and
11 MB of peak memory (benchmarks/NOTES.md). The window doubles as the list scrolls past
it, and widens to reach a conversation opened further down (a search hit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.store import Cache, ConversationView

__all__ = ["FIRST_FRAME_CONVERSATIONS", "LIST_WINDOW", "ROW_PAGE", "ConversationWindow",
           "first_frame_rows"]

FIRST_FRAME_CONVERSATIONS = 100
"""Rows read for the first frame at most (:func:`first_frame_rows`); the window
(:data:`LIST_WINDOW`) is read right after it."""
LIST_WINDOW = 400
"""Conversations kept in memory after the first frame (the most recent first)."""
ROW_PAGE = 200
"""Rows a widened window keeps beyond the conversation it was widened for (the list
widget's page, ``ConversationList.PAGE``)."""


def first_frame_rows(height: int) -> int:
    """Conversations the first frame reads and shows for a terminal ``height`` lines high:
    a screenful of the list's two-line rows and two more, at most
    :data:`FIRST_FRAME_CONVERSATIONS` (22 at 40 lines). Each row more costs its read and
    its rendering before the first frame; the rest come right after it."""
    return max(1, min(FIRST_FRAME_CONVERSATIONS, height // 2 + 2))


class ConversationWindow:
    """The most recent conversations of ``store`` (a :class:`chat_tui.store.Cache`, or for
    the first frame a :class:`chat_tui.store.first_frame.FirstFrameReader`; the screen
    sets ``store`` to the cache once it is open).

    State: ``rows`` (``ConversationView`` list, most recent activity first); ``limit``
    (rows read, None for the whole list); ``complete`` (``rows`` is the whole list);
    ``queued_total`` (my actions waiting over the whole list: sends, edits, deletes,
    conversation creates) and ``queued_kinds`` (the same by outbox kind, e.g.
    ``{"send": 1, "create_conversation": 1}``: what the offline banner names).
    """

    def __init__(self, store: Cache) -> None:
        self.store = store
        self.rows: list[ConversationView] = []
        self.limit: int | None = LIST_WINDOW
        self.complete = True
        self.queued_total = 0
        self.queued_kinds: dict[str, int] = {}

    def ids(self) -> list[str]:
        """Ids of ``rows``, in order."""
        return [c.id for c in self.rows]

    def get(self, conversation_id: str | None) -> ConversationView | None:
        """The row of ``conversation_id``, or None when it is not in the window."""
        for conv in self.rows:
            if conv.id == conversation_id:
                return conv
        return None

    def read_first_frame(self, wanted: str | None, height: int) -> bool:
        """Read :func:`first_frame_rows` rows for the first frame of a terminal ``height``
        lines high. When they fill the page and hold ``wanted`` (the last open
        conversation), returns True: the window is read after the first frame. Otherwise
        the window is read now (holding ``wanted``) and returns False."""
        first = first_frame_rows(height)
        self.rows = list(self.store.list_conversations(limit=first))
        partial = len(self.rows) == first
        if partial and wanted not in self.ids():
            self.read(include=wanted)
            return False
        self.complete = not partial
        self.count_queued()
        return partial

    def read(self, include: str | None = None, *, whole: bool = False) -> None:
        """Read the ``limit`` most recent conversations (``whole``: all of them) into
        ``rows``; when ``include`` is not among them, read the whole list once and widen
        the window to reach it from now on."""
        store = self.store
        limit = None if whole else self.limit
        views = list(store.list_conversations(limit=limit))
        complete = limit is None or len(views) < limit
        if not complete and include is not None and all(v.id != include for v in views):
            views = list(store.list_conversations())
            complete = True
            ids = [v.id for v in views]
            if limit is not None and include in ids:
                self.limit = max(limit, ids.index(include) + ROW_PAGE)
        self.rows = views
        self.complete = complete
        self.count_queued()

    def grow(self) -> bool:
        """Double the window when it is not the whole list; True when it grew (read it)."""
        if self.limit is None or self.complete:
            return False
        self.limit *= 2
        return True

    def count_queued(self) -> None:
        """Set ``queued_kinds`` (counted by the store, by outbox kind) and
        ``queued_total`` (their sum)."""
        if hasattr(self.store, "queued_by_kind"):  # the first frame's reader
            kinds = self.store.queued_by_kind()
        else:
            from chat_tui.store.conversation_counts import queued_by_kind

            kinds = queued_by_kind(self.store)
        self.queued_kinds = kinds
        self.queued_total = sum(kinds.values())

    def everything(self) -> list[ConversationView]:
        """Every conversation: ``rows`` when complete, else read from the store."""
        return self.rows if self.complete else list(self.store.list_conversations())

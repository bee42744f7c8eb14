"""Reading the client cache directly in tests: :func:`message_row`."""

from __future__ import annotations


def message_row(store, mid: str) -> dict:
    """The ``message`` row ``mid`` of an open :class:`~chat_tui.store.Cache` as a dict of
    column -> value ({} when there is none)."""
    cur = store.db.execute_sql("SELECT * FROM message WHERE id = ?", (mid,))
    names = [d[0] for d in cur.description]
    row = cur.fetchone()
    return {} if row is None else dict(zip(names, row, strict=True))

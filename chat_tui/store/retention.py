"""Keeping the cache to what it should hold (docs/sync.md, sync rule R1 and the ``410
cursor_expired`` reset), and reading all of it out for ``chat-tui export``. None of it
ever drops the outbox, its local echoes, their conversations or drafts (bug class 8)."""

from __future__ import annotations

from collections.abc import Sequence

from peewee import SQL

from chat_tui.store import migrations
from chat_tui.store.cachefile import CacheFile
from chat_tui.store.convert import now as _now
from chat_tui.store.models import CREATED_DAY
from chat_tui.store.views import SortKey

#: Messages deleted per retention transaction (sync rule R1; keeps each write short).
RETENTION_CHUNK = 2000


class Retention(CacheFile):
    """Retention, reset and export (part of :class:`~chat_tui.store.Cache`): big work, run
    on the engine's database worker thread or by the CLI. :meth:`export` reads through
    :class:`~chat_tui.store.reads.ReadModel`."""

    def last_retention_at(self) -> float | None:
        """Epoch seconds of the last retention run, or None."""
        value = self._get_meta("last_retention_at")
        return float(value) if value else None

    def run_retention(self, retention_days: int, now: float | None = None) -> int:
        """Sync rule R1: delete cached messages older than ``retention_days`` (0 keeps all),
        never a message the outbox references (drafts are per conversation and untouched),
        then let the file shrink (``PRAGMA incremental_vacuum``). Returns messages deleted.

        Deletes in chunks of :data:`RETENTION_CHUNK` messages, one short transaction each,
        so a user action waiting for the write lock waits for one chunk, never for the
        whole run (database work never blocks the UI for more than a few milliseconds)."""
        now = _now() if now is None else now
        deleted = 0
        while True:
            with self._write():
                n = (self._delete_older_than(now - retention_days * 86400, RETENTION_CHUNK)
                     if retention_days > 0 else 0)
                deleted += n
                if n < RETENTION_CHUNK:
                    # With the last chunk: whoever sees the run recorded sees the messages gone.
                    self._set_meta("last_retention_at", repr(now))
                    break
        self._wlock.acquire()
        try:
            migrations.reclaim_free_pages(self.db)
            self.db.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self._wlock.release()
        return deleted

    def _delete_older_than(self, cutoff: float, limit: int) -> int:
        """The deleting part of :meth:`run_retention`, in the caller's transaction: at most
        ``limit`` messages created before ``cutoff`` (epoch seconds) that no outbox row
        references. Returns how many were deleted (fewer than ``limit``: none are left)."""
        C, M, Ob, G = self.m.Conversation, self.m.Message, self.m.Outbox, self.m.Gap
        referenced = Ob.select(Ob.message_id).where(Ob.message_id.is_null(False))
        # The day range comes first so the query reads retention's index (INDEX_SCHEMA);
        # the exact time is checked on the rows of the cutoff's day.
        in_range = SQL(f"{CREATED_DAY} <= ?", [int(cutoff // 86400)])
        doomed = list(M.select(M.id, M.conv).where(
            in_range & (M.created_at < cutoff) & M.id.not_in(referenced)
            & M.seq.is_null(False)
        ).limit(limit).tuples())
        if not doomed:
            return 0
        keys = list({key for _, key in doomed})
        touched = [cid for (cid,) in C.select(C.id).where(C.pk.in_(keys)).tuples()]
        deleted = 0
        for start in range(0, len(doomed), 500):  # SQLite's bound-variable limit
            ids = [mid for mid, _ in doomed[start:start + 500]]
            deleted += M.delete().where(M.id.in_(ids)).execute()
        for cid in touched:
            C.update(has_more=True).where(C.id == cid).execute()
            # The oldest acknowledged message left: sort_key equals seq for those, and local
            # echoes sort after them (a walk of the (conv, sort_key) index, not a scan).
            low = (M.select(M.seq).where((M.conv == self._ckey(cid)) & M.seq.is_null(False))
                   .order_by(M.sort_key).limit(1).scalar())
            gone = G.delete().where(G.conversation == cid)
            if low is not None:
                gone = gone.where(G.before_seq <= low)
            gone.execute()
        return deleted

    def reset_cache(self) -> None:
        """After ``410 cursor_expired``: drop the cached server state (rebuilt by an initial
        sync) but never the outbox, its local echoes, their conversations or drafts."""
        C, M, Ob, G, R = (self.m.Conversation, self.m.Message, self.m.Outbox, self.m.Gap,
                          self.m.ReadMarker)
        with self._write():
            referenced = Ob.select(Ob.message_id).where(Ob.message_id.is_null(False))
            M.delete().where(M.id.not_in(referenced)).execute()
            G.delete().execute()
            R.delete().execute()
            keep = Ob.select(Ob.conversation_id)
            C.delete().where(C.id.not_in(keep)).execute()
            C.update(has_more=True).where(C.pending == False).execute()  # noqa: E712
            C.update(synced_seq=None).execute()
            self._set_meta("cursor", None)

    def export(self, conversation_ids: Sequence[str] | None = None) -> list[dict]:
        """Cached conversations with their messages, oldest first, for ``chat-tui export``:
        ``[{"id", "title", "members", "messages": [{"id", "author", "body", "created_at",
        "edited", "deleted", "state"}]}]`` (times RFC 3339 UTC); only the conversations in
        ``conversation_ids`` when given. The messages are those the conversation shows
        (``messages_after``): a replaced assistant reply is left out (sync rule 10), a
        person's deleted message is there with ``deleted`` true."""
        out = []
        for conv in self.list_conversations():
            if conversation_ids and conv.id not in conversation_ids:
                continue
            msgs = []
            last: SortKey = -1
            while True:
                page = self.messages_after(conv.id, last, 500)
                if not page:
                    break
                last = page[-1].sort_key
                msgs += [{"id": m.id, "author": m.author, "body": m.body,
                          "created_at": m.created_at.isoformat().replace("+00:00", "Z"),
                          "edited": m.edited, "deleted": m.deleted, "state": m.state}
                         for m in page]
            out.append({"id": conv.id, "title": conv.title, "members": list(conv.members),
                        "messages": msgs})
        return out


__all__ = ["RETENTION_CHUNK", "Retention"]

"""The UI's read model of the cache (docs/engine.md, "Cache read API"): the conversation
list, windows of a conversation's messages with each of my messages' send state, the
backfill state, and full-text search. Reads only; every answer is a frozen dataclass from
:mod:`chat_tui.store.views` or :mod:`chat_tui.store.more_views`, never a Peewee row."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from peewee import SQL, fn

from chat_tui.store.cachefile import CacheFile
from chat_tui.store.convert import dt, preview
from chat_tui.store.errors import StoreError
from chat_tui.store.more_views import Gap, SearchHit
from chat_tui.store.outbox_state import NOT_LEAVING_SQL, PROBLEMS_COLUMN_SQL, shown_state
from chat_tui.store.shown import SHOWN_M_SQL, SHOWN_SQL
from chat_tui.store.views import ConversationView, MessageView, SortKey


class ReadModel(CacheFile):
    """The read API the UI uses (part of :class:`~chat_tui.store.Cache`). Every method
    needs the cache open and raises what Peewee raises (``peewee.DatabaseError``) on a
    broken file. Uses ``_first_blocker`` of :class:`~chat_tui.store.outbox_queue.OutboxQueue`
    (which actions are blocked)."""

    def list_conversations(self, limit: int | None = None,
                           ids: Iterable[str] | None = None) -> list[ConversationView]:
        """Conversations (not removed, and none I am leaving: a leave waiting in the outbox
        hides it unless it failed or expired, sync rule 11), most recent activity first,
        then by title; only
        the first ``limit`` when given (a first frame needs a screenful, not 10,000 rows);
        only those whose id is in ``ids`` when given (a refresh after an engine event
        re-reads what changed: one indexed lookup each, never the whole list). Ids not
        found (unknown or removed) are left out. Each row counts its queued actions and
        those that wait for the user (``ConversationView.problem_count``)."""
        where, params = "", []
        if ids is not None:
            wanted = list(dict.fromkeys(ids))
            if not wanted:
                return []
            if len(wanted) > 500:  # SQLite's variable limit; a big change reads everything
                keep = set(wanted)
                return [v for v in self.list_conversations(limit) if v.id in keep]
            where = f" AND c.id IN ({', '.join('?' * len(wanted))})"
            params = wanted
        sql = f"""
        SELECT c.id, c.title, c.members, c.assistant, c.last_activity_at, c.unread_count,
               c.pending, c.model, c.system_prompt,
               (SELECT CASE WHEN m.deleted OR m.pending_deleted THEN '(deleted)'
                            ELSE m.author || ': ' || coalesce(m.pending_body, m.body) END
                  FROM message m WHERE m.conv = c.pk AND {SHOWN_M_SQL}
                  ORDER BY m.sort_key DESC LIMIT 1) AS preview,
               (SELECT count(*) FROM outbox o
                 WHERE o.conversation_id = c.id AND o.kind != 'read') AS queued,
               {PROBLEMS_COLUMN_SQL},
               (SELECT r.encrypted FROM remote_room r WHERE r.conversation_id = c.id)
                 AS encrypted
          FROM conversation c WHERE NOT c.removed AND {NOT_LEAVING_SQL}{where}
         ORDER BY coalesce(c.last_activity_at, 0) DESC, c.title
         LIMIT ?
        """
        out = []
        rows = self.db.execute_sql(sql, (*params, -1 if limit is None else limit)).fetchall()
        for row in rows:
            (cid, title, members, assistant, activity, unread, pending, model, system_prompt,
             last, queued, problems, enc) = row
            out.append(ConversationView(
                id=cid, title=title, members=tuple(json.loads(members or "[]")),
                assistant=bool(assistant),
                last_message_preview=None if last is None else preview(last),
                last_activity_at=dt(activity), unread_count=unread or 0,
                queued_count=queued or 0, pending=bool(pending), model=model,
                system_prompt=system_prompt, problem_count=problems or 0,
                encrypted=bool(enc),
            ))
        return out

    def get_conversation(self, conversation_id: str) -> ConversationView | None:
        """One conversation (not removed), or None."""
        found = self.list_conversations(ids=(conversation_id,))
        return found[0] if found else None

    def find_conversation(self, id_or_title: str) -> ConversationView:
        """The conversation whose id is, or whose title equals (case-insensitive), the text.

        Raises:
            StoreError: none matches, or several conversations have that title.
        """
        views = self.list_conversations()
        for view in views:
            if view.id == id_or_title:
                return view
        matches = [v for v in views if v.title.casefold() == id_or_title.casefold()]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise StoreError(f"no conversation with id or title {id_or_title!r}")
        raise StoreError(f"several conversations are titled {id_or_title!r}: use the id")

    def _views(self, rows: Sequence, cid: str | None = None) -> list[MessageView]:
        """Views of message rows of ONE conversation (``cid``, looked up when None)."""
        if not rows:
            return []
        cid = cid if cid is not None else self._cid(rows[0])
        Ob = self.m.Outbox
        ids = [r.id for r in rows]
        actions: dict[str, list] = {}
        # A read-marker row names the message it marks read, but it is not an action OF that
        # message: it never changes the message's state (outbox rule 8).
        for o in (Ob.select().where(Ob.message_id.in_(ids) & (Ob.kind != "read"))
                  .order_by(Ob.id)):
            actions.setdefault(o.message_id, []).append(o)
        blocker = self._first_blocker(cid)
        others_read = (
            self.m.ReadMarker.select(fn.MAX(self.m.ReadMarker.seq))
            .where((self.m.ReadMarker.conversation_id == cid)
                   & (self.m.ReadMarker.username != self._me))
            .scalar()
        )
        out = []
        for r in rows:
            mine = r.author == self._me
            state = reason = None
            if mine:
                state, reason = self._state_of(r, actions.get(r.id, []), blocker, others_read)
            out.append(MessageView(
                id=r.id, conversation_id=cid, author=r.author,
                body="" if (r.deleted or r.pending_deleted) else (
                    r.pending_body if r.pending_body is not None else r.body),
                created_at=dt(r.created_at), edited=r.edited_at is not None or (
                    r.pending_body is not None and r.seq is not None),
                deleted=bool(r.deleted or r.pending_deleted), streaming=bool(r.streaming),
                error=bool(r.error), mine=mine, state=state, failure_reason=reason,
                sort_key=r.sort_key, seq=r.seq, version=r.version, model=r.model,
                stopped=bool(r.stopped),
            ))
        return out

    @staticmethod
    def _state_of(row, actions: list, blocker: int | None,
                  others_read: int | None) -> tuple[str, str | None]:
        """The state my message ``row`` shows (:func:`~chat_tui.store.outbox_state.shown_state`)."""
        return shown_state(row.seq, actions, blocker, others_read)

    def messages_before(self, conversation_id: str, before: SortKey | None = None,
                        limit: int = 50) -> list[MessageView]:
        """Up to ``limit`` cached messages the conversation shows (not a replaced
        assistant reply, sync rule 10: :mod:`chat_tui.store.shown`) with ``sort_key <
        before`` (the newest page when ``before`` is None), ascending by sort key."""
        M = self.m.Message
        q = M.select().where((M.conv == self._ckey(conversation_id)) & SQL(SHOWN_SQL))
        if before is not None:
            q = q.where(M.sort_key < before)
        rows = list(q.order_by(M.sort_key.desc()).limit(limit))
        rows.reverse()
        return self._views(rows, conversation_id)

    def messages_after(self, conversation_id: str, after: SortKey,
                       limit: int = 50) -> list[MessageView]:
        """Up to ``limit`` cached messages the conversation shows (sync rule 10) with
        ``sort_key > after``, ascending."""
        M = self.m.Message
        rows = list(M.select().where((M.conv == self._ckey(conversation_id))
                                     & SQL(SHOWN_SQL) & (M.sort_key > after))
                    .order_by(M.sort_key).limit(limit))
        return self._views(rows, conversation_id)

    def message_window_around(self, conversation_id: str, message_id: str,
                              limit: int = 50) -> list[MessageView]:
        """About ``limit`` messages centred on ``message_id`` (included), ascending; the
        newest page when the message is not cached."""
        M = self.m.Message
        row = M.get_or_none((M.id == message_id) & (M.conv == self._ckey(conversation_id)))
        if row is None:
            return self.messages_before(conversation_id, None, limit)
        half = max(1, limit // 2)
        older = self.messages_before(conversation_id, row.sort_key + 1, half + 1)
        newer = self.messages_after(conversation_id, row.sort_key, limit - len(older))
        return older + newer

    def get_message(self, message_id: str) -> MessageView | None:
        """One cached message, or None."""
        M = self.m.Message
        row = M.get_or_none(M.id == message_id)
        return None if row is None else self._views([row])[0]

    def has_older(self, conversation_id: str, before: SortKey | None = None) -> bool:
        """True when older messages than ``before`` (default: the oldest cached) exist, in
        the cache (shown ones, sync rule 10) or on the server per the backfill state
        (``has_more`` or a gap)."""
        M = self.m.Message
        if before is not None and M.select().where(
                (M.conv == self._ckey(conversation_id)) & SQL(SHOWN_SQL)
                & (M.sort_key < before)).exists():
            return True
        conv = self.m.Conversation.get_or_none(self.m.Conversation.id == conversation_id)
        if conv is None or conv.pending:
            return False
        return bool(conv.has_more) or bool(self.gaps(conversation_id))

    def gaps(self, conversation_id: str) -> list[Gap]:
        """Holes left by ``limited`` syncs, newest first (sync rule S4)."""
        G = self.m.Gap
        return [Gap(conversation_id, g.before_message_id, g.before_seq, g.after_seq)
                for g in G.select().where(G.conversation == conversation_id)
                .order_by(G.before_seq.desc())]

    def search(self, query: str, limit: int = 50) -> list[SearchHit]:
        """Full-text search over cached message bodies (FTS5, offline), best match first.

        Each word of ``query`` must occur (the last one as a prefix); FTS syntax characters
        are taken literally, so any text is a valid query. Tombstones are not found.
        """
        words = [w.replace('"', '""') for w in query.split()]
        if not words:
            return []
        match = " ".join(f'"{w}"' for w in words[:-1])
        match = (match + f' "{words[-1]}"*').strip()
        sql = """
        SELECT m.id, c.id, c.title, m.author,
               snippet(message_index, 0, '[', ']', '…', 12), m.created_at
          FROM message_index JOIN message m ON m.pk = message_index.rowid
          JOIN conversation c ON c.pk = m.conv
         WHERE message_index MATCH ? ORDER BY rank LIMIT ?
        """
        rows = self.db.execute_sql(sql, (match, limit)).fetchall()
        return [SearchHit(mid, cid, title, author, snip, dt(created))
                for mid, cid, title, author, snip, created in rows]

    def _count_unread(self, cid: str, read_seq: int | None) -> int:
        """Others' messages (acknowledged, not tombstones) of conversation ``cid`` after
        ``read_seq`` (all of them when None): the conversation's unread count."""
        M = self.m.Message
        q = M.select().where((M.conv == self._ckey(cid)) & (M.author != self._me)
                             & M.seq.is_null(False) & (M.deleted == False))  # noqa: E712
        if read_seq is not None:
            # sort_key equals seq for every acknowledged message (outbox rule 8): the same
            # rows, but a range of the (conversation, sort_key) index instead of a scan of
            # the whole conversation (23 ms -> under 1 ms at 100,000 messages).
            q = q.where((M.seq > read_seq) & (M.sort_key > read_seq))
        return q.count()


__all__ = ["ReadModel"]

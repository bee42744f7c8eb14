"""Applying the server's answers to the cache (docs/sync.md, sync rules S2 to S5): a
``/v1/sync`` response with its cursor, a backfill page, and the gap markers a ``limited``
sync leaves; last-write-wins on ``version`` throughout (sync rule S3)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from chat_tui.store.cachefile import CacheFile
from chat_tui.store.convert import dt, now, ts
from chat_tui.store.results import ApplyResult

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.store.records import (
        ConversationRecord,
        MessageRecord,
        PageRecord,
        ReadMarkerRecord,
        SyncRecord,
    )

#: Rows (messages, conversations) applied per write transaction by
#: :meth:`SyncApply.apply_sync`: a user action waits at most one such chunk (tens of
#: milliseconds), never a whole response (sync rules S2 and D1).
APPLY_CHUNK_ROWS = 250

#: One server message new to the cache (its conversation looked up by id); parameters
#: ``(id, conversation_id, author, body, created_at, edited_at, seq, version, deleted,
#: streaming, error, sort_key, model, stopped)``. Prepared once, run with ``executemany``.
INSERT_MESSAGE_SQL = (
    "INSERT INTO message (id, conv, author, body, created_at, edited_at, seq, "
    "version, deleted, streaming, error, sort_key, model, stopped, pending_body, "
    "pending_deleted) "
    "VALUES (?, (SELECT pk FROM conversation WHERE id = ?), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
    "?, ?, NULL, 0)"
)


class SyncApply(CacheFile):
    """The puller's write API (part of :class:`~chat_tui.store.Cache`): big work, run on
    the engine's database worker thread. Uses ``_count_unread`` of
    :class:`~chat_tui.store.reads.ReadModel`."""

    def get_cursor(self) -> str | None:
        """The ``/v1/sync`` cursor of the last applied response, or None (initial sync next)."""
        return self._get_meta("cursor")

    def last_synced_at(self) -> datetime | None:
        """UTC time the last ``/v1/sync`` response was applied, or None."""
        value = self._get_meta("last_synced_at")
        return dt(float(value)) if value else None

    def _upsert_conversation(self, conv: ConversationRecord, res: ApplyResult) -> None:
        """Cache the server's copy of a conversation (activity only moves forward), with
        the settings my queued changes set on top (sync rule 9); touches ``res`` when
        anything changed. In the caller's transaction. Uses ``_pending_settings`` of
        :class:`~chat_tui.store.outbox_conversation.ConversationChanges`."""
        C = self.m.Conversation
        updated = ts(conv.updated_at)
        fields = dict(title=conv.title, creator=conv.creator,
                      members=json.dumps(sorted(conv.members)), assistant=conv.assistant,
                      created_at=ts(conv.created_at), updated_at=updated,
                      unread_count=conv.unread_count, pending=False, removed=False,
                      model=conv.model, system_prompt=conv.system_prompt)
        fields.update(self._pending_settings(conv.id, fields["members"]))
        row = C.get_or_none(C.id == conv.id)
        if row is None:
            C.insert(id=conv.id, last_activity_at=updated, has_more=True, **fields).execute()
            res.touch(conv.id)
            return
        current = dict(title=row.title, creator=row.creator, members=row.members,
                       assistant=row.assistant, created_at=row.created_at,
                       updated_at=row.updated_at, unread_count=row.unread_count,
                       pending=row.pending, removed=row.removed, model=row.model,
                       system_prompt=row.system_prompt)
        activity = max(row.last_activity_at or 0, updated or 0)
        if current != fields or activity != row.last_activity_at:
            C.update(last_activity_at=activity, **fields).where(C.id == conv.id).execute()
            res.touch(conv.id)

    def _apply_message(self, msg: MessageRecord, res: ApplyResult) -> bool:
        """Last-write-wins on ``version`` (sync rule S3). Returns True when the row changed."""
        M = self.m.Message
        fields = dict(author=msg.author, body=msg.body, created_at=ts(msg.created_at),
                      edited_at=ts(msg.edited_at), seq=msg.seq, version=msg.version,
                      deleted=msg.deleted, streaming=msg.streaming, error=msg.error,
                      sort_key=msg.seq, model=msg.model, stopped=msg.stopped)
        row = M.get_or_none(M.id == msg.id)
        if row is None:
            M.insert(id=msg.id, conv=self._ckey(msg.conversation_id), **fields).execute()
            res.touch(msg.conversation_id, msg.id)
            res.added += 1
            return True
        if row.version is not None and msg.version <= row.version:
            return False
        M.update(**fields).where(M.id == msg.id).execute()
        res.touch(msg.conversation_id, msg.id)
        return True

    def _apply_messages(self, messages: Sequence[MessageRecord], res: ApplyResult) -> None:
        """:meth:`_apply_message` for many messages, same result: the ids already held are
        looked up in one query per 500, messages new to the cache are inserted with one
        prepared statement (``executemany``), the others go through last-write-wins one by
        one. Building one Peewee query per message costs about 1 ms each, minutes for an
        initial sync of 358,000 messages (benchmarks/NOTES.md)."""
        M = self.m.Message
        known: dict[str, int | None] = {}  # id -> version held (None: a local echo)
        ids = [m.id for m in messages]
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            known.update(M.select(M.id, M.version).where(M.id.in_(chunk)).tuples())
        rows: list[tuple] = []
        for msg in messages:
            if msg.id in known:
                held = known[msg.id]
                if held is not None and msg.version <= held:
                    continue  # last-write-wins: an older or equal copy changes nothing
                known[msg.id] = msg.version
                if rows:
                    self.db.cursor().executemany(INSERT_MESSAGE_SQL, rows)
                    rows = []
                self._apply_message(msg, res)
                continue
            known[msg.id] = msg.version
            rows.append((msg.id, msg.conversation_id, msg.author, msg.body,
                         ts(msg.created_at), ts(msg.edited_at), msg.seq, msg.version,
                         int(msg.deleted), int(msg.streaming), int(msg.error), msg.seq,
                         msg.model, int(msg.stopped)))
            res.touch(msg.conversation_id, msg.id)
            res.added += 1
        if rows:
            self.db.cursor().executemany(INSERT_MESSAGE_SQL, rows)

    def _apply_marker(self, marker: ReadMarkerRecord, res: ApplyResult) -> None:
        """Cache a member's read marker when it moves forward: mine sets the conversation's
        read position and unread count; another member's turns my messages up to it
        ``read`` (they are touched in ``res``). In the caller's transaction."""
        R, C = self.m.ReadMarker, self.m.Conversation
        row = R.get_or_none((R.conversation_id == marker.conversation_id)
                            & (R.username == marker.username))
        if row is not None and row.seq >= marker.seq:
            return
        R.insert(conversation_id=marker.conversation_id, username=marker.username,
                 message_id=marker.message_id, seq=marker.seq).on_conflict_replace().execute()
        res.touch(marker.conversation_id)
        if marker.username == self._me:
            conv = C.get_or_none(C.id == marker.conversation_id)
            if conv is not None and (conv.read_seq is None or conv.read_seq < marker.seq):
                C.update(read_seq=marker.seq, read_message_id=marker.message_id,
                         unread_count=self._count_unread(conv.id, marker.seq),
                         ).where(C.id == conv.id).execute()
        else:
            # My messages up to this seq are now "read": tell the UI which ones changed.
            M = self.m.Message
            prev = row.seq if row is not None else -1
            # The sort_key bounds select the same rows (sort_key == seq once acknowledged)
            # as a range of the (conv, sort_key) index instead of a scan of the conversation.
            mine = ((M.conv == self._ckey(marker.conversation_id)) & (M.author == self._me)
                    & (M.seq > prev) & (M.seq <= marker.seq)
                    & (M.sort_key > prev) & (M.sort_key <= marker.seq))
            for mid in M.select(M.id).where(mine).tuples():
                res.touch(marker.conversation_id, mid[0])

    def apply_sync(self, response: SyncRecord) -> ApplyResult:
        """Sync rule S2: apply one ``/v1/sync`` response; its cursor is stored with the last
        write, so the cursor moves only once everything before it is committed. Replaying
        a response (all of it, or after a crash part of it) changes nothing:
        last-write-wins on ``version``, and gaps are measured against ``synced_seq``,
        which moves in the same transaction as the messages it covers.

        A big response (an initial sync of a reader in thousands of conversations) is
        written in chunks of about :data:`APPLY_CHUNK_ROWS` rows, one short transaction
        each, so a user action waits at most one chunk (sync rule D1). ``limited``
        conversations get a gap marker (sync rule S4). Big work: call from the worker
        thread.

        Args:
            response: a parsed ``/v1/sync`` answer (``chat_tui.api.SyncResponse``).

        Returns:
            What changed (conversation and message ids, messages added).

        Raises:
            peewee.DatabaseError: the cache could not be written; what was committed
            before stays (replaying the response later is safe).
        """
        res = ApplyResult()
        units: list[tuple[int, object]] = []  # (rows, step) with step() run in a transaction
        for item in response.conversations:
            if item.removed:
                units.append((1, lambda item=item: self._apply_removed(item, res)))
                continue
            msgs = list(item.messages)
            first = msgs[:APPLY_CHUNK_ROWS]
            units.append((1 + len(first), lambda item=item, first=first: self._apply_item_head(
                item, first, response.initial, res)))
            for start in range(APPLY_CHUNK_ROWS, len(msgs), APPLY_CHUNK_ROWS):
                part = msgs[start:start + APPLY_CHUNK_ROWS]
                units.append((len(part), lambda part=part: self._apply_messages(part, res)))

        def finish() -> None:
            for marker in response.read_markers:
                self._apply_marker(marker, res)
            self._set_meta("cursor", response.cursor)
            self._set_meta("last_synced_at", repr(now()))

        units.append((len(response.read_markers), finish))
        batch: list = []
        rows = 0
        for i, (n, step) in enumerate(units):
            batch.append(step)
            rows += n
            if rows >= APPLY_CHUNK_ROWS or i == len(units) - 1:
                with self._write():
                    for run in batch:
                        run()
                batch, rows = [], 0
        return res

    def _apply_removed(self, item, res: ApplyResult) -> None:
        """I was removed from the conversation of sync ``item``: its messages go (except
        those my outbox still refers to) and it is marked removed."""
        C, M, Ob = self.m.Conversation, self.m.Message, self.m.Outbox
        conv = item.conversation
        referenced = Ob.select(Ob.message_id).where(Ob.message_id.is_null(False))
        M.delete().where((M.conv == self._ckey(conv.id)) & M.id.not_in(referenced)).execute()
        if C.select().where(C.id == conv.id).exists():
            C.update(removed=True).where(C.id == conv.id).execute()
            res.touch(conv.id)

    def _apply_item_head(self, item, messages: Sequence[MessageRecord], initial: bool,
                         res: ApplyResult) -> None:
        """The conversation of one sync item, its first chunk of messages, its gap marker
        (sync rule S4, computed from all its messages) and its ``synced_seq``, in the
        caller's transaction."""
        C = self.m.Conversation
        conv = item.conversation
        known = C.get_or_none(C.id == conv.id)
        self._upsert_conversation(conv, res)
        self._apply_messages(messages, res)
        if item.limited:
            if known is None or initial:
                # Nothing was synced before: older history, not a hole.
                C.update(has_more=True).where(C.id == conv.id).execute()
            else:
                self._mark_gap(conv.id, known.synced_seq, item.messages)
        self._advance_synced_seq(conv.id, item.messages)
        self._hold_local_read(conv.id, res)

    def _hold_local_read(self, cid: str, res: ApplyResult) -> None:
        """Sync rule S7: the server's unread count of ``cid`` may predate my read marker
        moved here; when my read message is cached and no gap lies after it, the count is
        at most the others' messages cached after it. In the caller's transaction."""
        C, G, M = self.m.Conversation, self.m.Gap, self.m.Message
        conv = C.get_or_none(C.id == cid)
        if conv is None or conv.read_seq is None or not conv.unread_count:
            return
        read = M.get_or_none((M.id == conv.read_message_id) & (M.seq == conv.read_seq))
        if read is None or G.select().where((G.conversation == cid)
                                            & (G.before_seq > conv.read_seq)).exists():
            return  # messages after the read one may be missing here: the server knows
        local = self._count_unread(cid, conv.read_seq)
        if local < conv.unread_count:
            C.update(unread_count=local).where(C.id == cid).execute()
            res.touch(cid)

    def _advance_synced_seq(self, cid: str, messages: Sequence[MessageRecord]) -> None:
        """Raise the conversation's ``synced_seq`` (the highest seq received through sync
        or backfill) to the highest of ``messages``; never lowers it."""
        if not messages:
            return
        C = self.m.Conversation
        top = max(m.seq for m in messages)
        C.update(synced_seq=top).where(
            (C.id == cid) & (C.synced_seq.is_null() | (C.synced_seq < top))).execute()

    def _mark_gap(self, cid: str, prev_max: int | None,
                  messages: Sequence[MessageRecord]) -> None:
        """Sync rule S4: a hole between ``prev_max`` (the highest seq received through sync
        or backfill, None when none was: the hole reaches the start) and the oldest of the
        limited delta's messages newer than it. Acknowledgements of my own sends never
        raise ``prev_max``: they can be newer than messages the delta left out."""
        G = self.m.Gap
        new = sorted((m for m in messages if prev_max is None or m.seq > prev_max),
                     key=lambda m: m.seq)
        if not new:
            return
        oldest = new[0]
        if not G.select().where((G.conversation == cid)
                                & (G.before_message_id == oldest.id)).exists():
            G.insert(conversation=cid, before_message_id=oldest.id, before_seq=oldest.seq,
                     after_seq=prev_max).execute()

    def backfill_target(self, conversation_id: str) -> tuple[str | None, int | None] | None:
        """What the next backfill page should ask for (sync rule S5): ``(before_message_id,
        gap_id)`` for the newest gap, ``(oldest cached id, None)`` when ``has_more``,
        ``(None, None)`` for the newest page when nothing is cached, or None when nothing
        older exists."""
        C, G, M = self.m.Conversation, self.m.Gap, self.m.Message
        gap = (G.select().where(G.conversation == conversation_id)
               .order_by(G.before_seq.desc()).first())
        if gap is not None:
            return gap.before_message_id, gap.id
        conv = C.get_or_none(C.id == conversation_id)
        if conv is None or conv.pending or not conv.has_more:
            return None
        # By sort_key, which equals seq for acknowledged messages: the (conv, sort_key) index.
        oldest = (M.select(M.id).where((M.conv == self._ckey(conversation_id))
                                       & M.seq.is_null(False)).order_by(M.sort_key).first())
        return (oldest.id if oldest else None), None

    def apply_page(self, conversation_id: str, page: PageRecord,
                   gap_id: int | None, *, seq_is_order: bool = True) -> ApplyResult:
        """Sync rule S5: store one backfill page (dedupe by id, last-write-wins) and update the
        backfill state in one transaction: a gap closes when the page reaches a message
        already held (one the cache had at or below the gap's lower bound; with
        ``seq_is_order``, chat-tui's server, also when the page's oldest ``seq`` is at or
        below that bound) or ``has_more`` is false, otherwise it shrinks to the page's
        oldest message; without a gap ``has_more`` is remembered. ``seq_is_order`` is
        False for a Matrix room, whose backfilled places may come from timestamps below
        the bound before the page reaches it (rule M5)."""
        res = ApplyResult()
        C, G, M = self.m.Conversation, self.m.Gap, self.m.Message
        with self._write():
            gap = G.get_or_none(G.id == gap_id) if gap_id is not None else None
            held = False
            if gap is not None and gap.after_seq is not None and page.messages:
                held = (M.select(M.id).where(
                    (M.conv == self._ckey(conversation_id))
                    & M.id.in_([m.id for m in page.messages])
                    & M.seq.is_null(False) & (M.seq <= gap.after_seq)).exists())
            self._apply_messages(page.messages, res)
            self._advance_synced_seq(conversation_id, page.messages)
            oldest = min(page.messages, key=lambda m: m.seq) if page.messages else None
            if gap_id is not None:
                if gap is not None:
                    reached = (oldest is None or not page.has_more or held
                               or (seq_is_order and gap.after_seq is not None
                                   and oldest.seq <= gap.after_seq))
                    if reached:
                        gap.delete_instance()
                    else:
                        G.update(before_message_id=oldest.id, before_seq=oldest.seq).where(
                            G.id == gap_id).execute()
            else:
                C.update(has_more=page.has_more).where(C.id == conversation_id).execute()
            res.touch(conversation_id)
        return res


__all__ = ["APPLY_CHUNK_ROWS", "INSERT_MESSAGE_SQL", "SyncApply"]

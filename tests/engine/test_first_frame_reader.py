"""The first frame's reader (``chat_tui.store.first_frame``, stdlib ``sqlite3``) answers as
the cache (Peewee) does, on a real cache file holding every state a message can show; it
steps aside for a file that needs ``Cache.open`` (sync rule D4) and leaves the file clean."""

from __future__ import annotations

import sqlite3
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chat_tui.store import SCHEMA_VERSION, Cache
from chat_tui.store.cleanstamp import is_clean
from chat_tui.store.first_frame import READS_SCHEMA, FirstFrameReader
from tests.support.payloads import sync_response, wire_conversation, wire_message

A = "0000000a-0000-4000-8000-000000000000"
B = "0000000b-0000-4000-8000-000000000000"
C = "0000000c-0000-4000-8000-000000000000"


def _filled_cache(path: Path, key: bytes | None = None) -> dict:
    """A cache of alice with: a limited conversation (gap) of 40 messages by bob and
    alice, bob's read marker half way, my edits and deletes pending, a failed send and
    a queued one behind it (blocked), a conversation created offline, a scroll anchor,
    the last open conversation and "work offline" on. Closed cleanly; encrypted with the
    raw ``key`` when one is given."""
    store = Cache(path, "alice", key=key)
    store.open()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    msgs = [wire_message(A, seq, "alice" if seq % 3 == 0 else "bob", body=f"line {seq}",
                         mid=str(uuid.UUID(int=seq)), created=start + timedelta(minutes=seq))
            for seq in range(1, 41)]
    marker = {"conversation_id": A, "username": "bob", "message_id": msgs[19]["id"],
              "seq": 20}
    store.apply_sync(sync_response("1", [(wire_conversation(A, "Plans"), msgs, True),
                                         (wire_conversation(B, "Other"),
                                          [wire_message(B, 1, body="hi")], False)],
                                   markers=[marker]))
    store.enqueue_edit(msgs[35]["id"], "line 36, edited")
    store.enqueue_delete(msgs[38]["id"])
    failed = store.enqueue_send(A, "this one fails")
    (outbox_id,) = store.db.execute_sql("SELECT id FROM outbox WHERE message_id = ?",
                                        (failed,)).fetchone()
    store.record_permanent(outbox_id, "refused")
    store.enqueue_send(A, "waits behind it")
    store.enqueue_create_conversation(C, "Offline notes")
    store.enqueue_send(C, "written offline")
    store.set_scroll_anchor(A, msgs[10]["id"])
    store.set_last_conversation(A)
    store.set_work_offline(True)
    store.save_remote_ids({B: ("!other:localhost", True)}, {})  # an encrypted Matrix room
    store.close()
    return {"anchor": msgs[10]["id"], "missing": str(uuid.uuid4()), "last": msgs[-1]["id"]}


def _reads(source, ids: dict) -> dict:
    """Every read the first frame makes, from a reader or a cache."""
    return {
        "ui_state": source.get_ui_state(),
        "conversations": source.list_conversations(),
        "first_two": source.list_conversations(limit=2),
        "by_id": source.list_conversations(ids=[C, A]),
        "outbox": source.outbox_counts(),
        "newest": {c: source.messages_before(c, None, limit=17) for c in (A, B, C)},
        "older": source.messages_before(A, 30, limit=5),
        "after": source.messages_after(A, 35, limit=50),
        "around": source.message_window_around(A, ids["anchor"], limit=17),
        "around_missing": source.message_window_around(A, ids["missing"], limit=9),
        "has_older": [source.has_older(A), source.has_older(A, 1), source.has_older(A, 5),
                      source.has_older(B), source.has_older(C), source.has_older("x")],
    }


def test_reader_answers_as_the_cache_on_a_real_file(tmp_path, cache_key):
    """On a plain file and on an encrypted one (read with its raw key, sync rule D6)."""
    path = tmp_path / "alice.db"
    ids = _filled_cache(path, cache_key)
    reader = FirstFrameReader.open(path, "alice", cache_key)
    assert reader is not None
    from_reader = _reads(reader, ids)
    from chat_tui.store.conversation_counts import queued_actions

    queued = reader.queued_actions()
    reader.close()

    # The reader leaves the file as the clean close left it: no WAL, the stamp matches,
    # so the cache skips the full check (sync rule D4).
    assert not Path(str(path) + "-wal").exists()
    assert is_clean(path)
    store = Cache(path, "alice", key=cache_key)
    store.open()
    assert store.full_check is False
    from_cache = _reads(store, ids)
    assert queued == queued_actions(store) == 6
    waiting = Counter(p.conversation_id for p in store.problems())
    store.close()

    assert from_reader == from_cache
    # The file holds what the comparison is meant to cover.
    shown = {v.state for v in from_cache["newest"][A] + from_cache["around"]}
    assert {"sent", "read", "failed", "blocked", "queued"} <= shown
    assert any(v.deleted for v in from_cache["newest"][A])
    assert any(v.edited for v in from_cache["newest"][A])
    assert from_cache["ui_state"].work_offline and from_cache["ui_state"].scroll_anchors
    assert from_cache["has_older"][:3] == [True, True, True]
    assert [c.id for c in from_cache["by_id"]] == [C, A]
    # the failure mark's count: the failed send and the one blocked behind it
    assert {c.id: c.problem_count for c in from_cache["conversations"]} == {A: 2, B: 0, C: 0}
    assert waiting == {A: 2}


def test_reader_steps_aside_for_a_file_cache_open_must_see(tmp_path):
    path = tmp_path / "alice.db"
    assert FirstFrameReader.open(path, "alice") is None  # no file: Cache.open creates it
    _filled_cache(path)
    reader = FirstFrameReader.open(path, "alice")
    assert reader is not None
    reader.close()
    # Not closed cleanly (a WAL next to it): the full check first.
    wal = Path(str(path) + "-wal")
    wal.write_bytes(b"")
    assert FirstFrameReader.open(path, "alice") is None
    wal.unlink()
    # Another schema (a migration, or a newer chat-tui): Cache.open decides.
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {READS_SCHEMA + 1}")
    conn.close()
    from chat_tui.store.cleanstamp import file_state, stamp_path

    stamp_path(path).write_text(file_state(path), encoding="ascii")
    assert FirstFrameReader.open(path, "alice") is None


def test_reader_sql_is_written_for_the_current_schema():
    assert READS_SCHEMA == SCHEMA_VERSION


def test_rule_d6_reader_steps_aside_for_an_encrypted_file_without_its_key(tmp_path):
    from chat_tui.store.cipher import new_key

    key = new_key()
    path = tmp_path / "alice.db"
    _filled_cache(path, key)
    before = path.read_bytes()
    assert FirstFrameReader.open(path, "alice") is None  # no key: Cache.open decides (D8)
    assert FirstFrameReader.open(path, "alice", new_key()) is None  # the wrong key
    assert path.read_bytes() == before and is_clean(path)
    reader = FirstFrameReader.open(path, "alice", key)
    assert reader is not None and reader.get_ui_state().last_conversation_id == A
    reader.close()
    assert is_clean(path)
    plain = tmp_path / "plain.db"
    _filled_cache(plain)
    assert FirstFrameReader.open(plain, "alice", key) is None  # a key on a plain file


def test_rule_m3_an_encrypted_room_is_marked_on_the_first_frame(tmp_path):
    path = tmp_path / "alice.db"
    _filled_cache(path)
    reader = FirstFrameReader.open(path, "alice")
    assert reader is not None
    try:
        marked = {v.id: v.encrypted for v in reader.list_conversations()}
    finally:
        reader.close()
    assert marked == {A: False, B: True, C: False}

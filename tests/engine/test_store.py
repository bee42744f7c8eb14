"""Cache-level tests on a real SQLite file (no server needed): outbox transactions, FTS,
retention, migrations, concurrency. Server records are built with the api's own wire
dataclasses (real types, parsed from the JSON shapes of docs/api.md)."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from peewee import IntegrityError

from chat_tui.api import Message, SyncResponse
from chat_tui.store import LOCAL_ECHO_BASE, SCHEMA_VERSION, Cache, SchemaTooNew, StoreError
from chat_tui.store.cipher import open_raw_connection
from tests.support.cache import message_row
from tests.support.payloads import iso, sync_response, wire_conversation, wire_message

SCHEMA_V1 = Path(__file__).resolve().parents[2] / "chat_tui" / "store" / "schema_v1.sql"


def test_pragmas_wal_foreign_keys_full_sync(store):
    pragma = lambda name: store.db.execute_sql(f"PRAGMA {name}").fetchone()[0]  # noqa: E731
    assert pragma("journal_mode") == "wal"
    assert pragma("foreign_keys") == 1
    assert pragma("synchronous") == 2
    assert pragma("busy_timeout") >= 5000
    assert pragma("auto_vacuum") == 2
    assert pragma("user_version") == SCHEMA_VERSION


def test_rule_1_send_is_one_transaction_with_local_echo_outbox_row_and_cleared_draft(store, conv):
    store.save_draft(conv, "hello there", (0, 11))
    mid = store.enqueue_send(conv, "hello there")
    assert str(uuid.UUID(mid)) == mid
    [view] = store.messages_before(conv)
    assert (view.id, view.body, view.state, view.mine) == (mid, "hello there", "queued", True)
    [action] = store.outbox_rows()
    assert (action.kind, action.message_id, action.payload) == ("send", mid, {"body": "hello there"})
    assert store.get_draft(conv) is None
    assert view.sort_key == LOCAL_ECHO_BASE + action.id


def test_rule_1_bad_input_is_refused_and_keeps_the_draft(store, conv):
    store.save_draft(conv, "keep me")
    with pytest.raises(StoreError):
        store.enqueue_send(conv, "   ")
    with pytest.raises(StoreError):
        store.enqueue_send(conv, "x" * 65537)
    with pytest.raises(StoreError):
        store.enqueue_send("no-such-conversation", "hi")
    assert store.get_draft(conv).text == "keep me"
    assert store.outbox_rows() == []


def test_rule_1_failed_transaction_leaves_nothing_behind(store, conv):
    """A send whose transaction fails part-way leaves no echo and no outbox row."""
    mid = str(uuid.uuid4())
    store.enqueue_send(conv, "first", message_id=mid)
    with pytest.raises(IntegrityError):
        store.enqueue_send(conv, "duplicate id", message_id=mid)  # unique id violation
    assert len(store.outbox_rows()) == 1
    assert [m.body for m in store.messages_before(conv)] == ["first"]


def test_rule_4_sending_rows_are_requeued_on_start(tmp_path, conv, store):
    mid = store.enqueue_send(conv, "in flight when we crashed")
    [action] = store.outbox_rows()
    marked = store.mark_sending(action.id)
    assert marked.attempts == 1
    assert store.outbox_counts()["sending"] == 1
    store.close()
    again = Cache(tmp_path / "alice.db", "alice", key=store.key)
    again.open()
    assert again.requeue_sending() == 1
    [row] = again.outbox_rows()
    assert (row.message_id, row.attempts) == (mid, 1)
    assert again.outbox_counts()["queued"] == 1
    again.close()


def test_rule_4_server_copy_through_sync_before_the_answer_is_one_row(store, conv):
    mid = store.enqueue_send(conv, "hello")
    [action] = store.outbox_rows()
    store.mark_sending(action.id)
    server_copy = wire_message(conv, 7, author="alice", body="hello", mid=mid)
    store.apply_sync(sync_response("2", [(wire_conversation(conv), [server_copy], False)]))
    store.ack_message(action.id, Message.parse(server_copy))
    views = store.messages_before(conv)
    assert [(v.id, v.seq, v.state) for v in views] == [(mid, 7, "sent")]
    assert store.outbox_rows() == []


def test_rule_6_old_queued_messages_expire_and_wait(store, conv):
    mid = store.enqueue_send(conv, "stale")
    assert store.expire_old(3600, now=time.time() + 7200) == [mid]
    [problem] = store.problems()
    assert (problem.message_id, problem.state) == (mid, "expired")
    assert store.next_actions() == []
    assert store.get_message(mid).state == "expired"
    store.send_anyway(mid)
    assert [a.message_id for a in store.next_actions()] == [mid]
    assert store.expire_old(3600) == []  # the expiry clock restarted


def test_rule_6_retry_and_edit_restart_the_expiry_clock(store, conv):
    """A message retried (or edited) long after it was written is not expired again at once."""
    later = time.time() + 7200
    failed = store.enqueue_send(conv, "failed long ago")
    [action] = store.outbox_rows()
    store.mark_sending(action.id)
    store.record_permanent(action.id, "422 validation: nope")
    store.m.Outbox.update(queued_at=time.time() - 7200).execute()  # written two hours ago
    store.retry(failed)
    assert store.expire_old(3600) == []
    assert store.get_message(failed).state == "queued"
    # An expired send edited by the user is queued again with a fresh clock.
    assert store.expire_old(3600, now=later) == [failed]
    assert store.enqueue_edit(failed, "edited after expiry") == "rewritten"
    assert store.get_message(failed).state == "queued"
    assert store.expire_old(3600) == []
    assert [a.message_id for a in store.next_actions()] == [failed]


def test_rule_3k_a_read_marker_row_is_not_an_action_of_its_message(store, conv):
    """Marking my own acknowledged last message read leaves it ``sent``, and behind a
    failed head it is not shown blocked (the read row only points at it)."""
    mine = store.enqueue_send(conv, "my last word")
    [action] = store.outbox_rows()
    store.mark_sending(action.id)
    store.ack_message(action.id, Message.parse(
        wire_message(conv, 9, author="alice", body="my last word", mid=mine)))
    assert store.get_message(mine).state == "sent"
    head = store.enqueue_send(conv, "refused")
    assert store.enqueue_read(conv, mine)
    assert store.get_message(mine).state == "sent"
    [send, read] = store.outbox_rows()
    assert (send.message_id, read.kind, read.message_id) == (head, "read", mine)
    store.mark_sending(send.id)
    store.record_permanent(send.id, "422 validation: body rejected")
    assert store.get_message(mine).state == "sent"
    assert store.get_message(head).state == "failed"
    assert [(p.message_id, p.state) for p in store.problems()] == [(head, "failed")]
    assert store.get_conversation(conv).queued_count == 1
    assert store.get_conversation(conv).last_message_preview == "alice: refused"


def test_rule_6_zero_turns_expiry_off(store, conv):
    store.enqueue_send(conv, "old but fine")
    assert store.expire_old(0, now=time.time() + 10**7) == []


def test_rule_7_edit_of_a_queued_message_rewrites_its_outbox_row(store, conv):
    mid = store.enqueue_send(conv, "helo")
    assert store.enqueue_edit(mid, "hello") == "rewritten"
    [action] = store.outbox_rows()
    assert (action.kind, action.payload["body"]) == ("send", "hello")
    assert store.get_message(mid).body == "hello"


def test_rule_7_an_edit_keeps_the_sign_that_a_send_may_have_reached_the_server(store, conv):
    """Killed mid-PUT, edited, then deleted: the edit keeps the attempt count, so the
    delete still goes to the server, which may hold the message."""
    mid = store.enqueue_send(conv, "first")
    [action] = store.outbox_rows()
    store.mark_sending(action.id)  # the PUT went out...
    assert store.requeue_sending() == 1  # ...and the process was killed before the answer
    assert store.enqueue_edit(mid, "second") == "rewritten"
    assert store.enqueue_delete(mid) == "queued"
    [delete] = store.outbox_rows()
    assert (delete.kind, delete.message_id) == ("delete", mid)
    assert store.get_message(mid).deleted


def test_rule_7_delete_of_a_queued_message_removes_it_so_it_is_never_sent(store, conv):
    mid = store.enqueue_send(conv, "oops")
    assert store.enqueue_delete(mid) == "removed"
    assert store.outbox_rows() == []
    assert store.get_message(mid) is None


def test_rule_7_edit_and_delete_while_sending_queue_after_it(store, conv):
    mid = store.enqueue_send(conv, "first")
    [send] = store.outbox_rows()
    store.mark_sending(send.id)
    assert store.enqueue_edit(mid, "first, edited") == "queued"
    assert store.get_message(mid).body == "first, edited"
    assert store.enqueue_delete(mid) == "queued"
    kinds = [(a.kind, a.message_id) for a in store.outbox_rows()]
    assert kinds == [("send", mid), ("delete", mid)]  # the pending edit is superseded
    assert store.get_message(mid).deleted


def test_rule_7_edit_of_a_sent_message_shows_on_top_until_acknowledged(store, conv):
    mine = wire_message(conv, 3, author="alice", body="original")
    store.apply_sync(sync_response("2", [(wire_conversation(conv), [mine], False)]))
    store.enqueue_edit(mine["id"], "changed")
    view = store.get_message(mine["id"])
    assert (view.body, view.edited, view.state) == ("changed", True, "queued")
    # Another device's older copy arrives: the pending edit stays on top (sync rule S3).
    newer = dict(mine, body="from elsewhere", version=2)
    store.apply_sync(sync_response("3", [(wire_conversation(conv), [newer], False)]))
    assert store.get_message(mine["id"]).body == "changed"
    [edit] = store.outbox_rows()
    store.ack_message(edit.id, Message.parse(dict(mine, body="changed", version=3)))
    assert store.get_message(mine["id"]).body == "changed"
    assert store.get_message(mine["id"]).state == "sent"


def test_rule_3a_failed_head_blocks_later_actions_of_its_conversation_only(store, conv):
    other = str(uuid.uuid4())
    store.apply_sync(sync_response("2", [(wire_conversation(other, "Other"), [], False)]))
    a = store.enqueue_send(conv, "a")
    b = store.enqueue_send(conv, "b")
    c = store.enqueue_send(other, "c")
    head = store.outbox_rows()[0]
    store.mark_sending(head.id)
    store.record_permanent(head.id, "422 validation: body rejected")
    assert [x.message_id for x in store.next_actions()] == [c]
    states = {p.message_id: p.state for p in store.problems()}
    assert states == {a: "failed", b: "blocked"}
    assert store.get_message(b).state == "blocked"
    assert store.outbox_counts() == {"queued": 1, "sending": 0, "failed": 1, "blocked": 1,
                                     "expired": 0}
    text = store.discard(a)
    assert text == "a"
    assert store.get_draft(conv).text == "a"
    assert store.get_message(a) is None
    assert [x.message_id for x in store.next_actions()] == [b, c]


def test_outbox_states_are_the_stored_strings(store, conv):
    """OutboxState members are the strings the outbox column stores and callers compare
    with; BLOCKED is derived (a queued action behind a failed one), never stored."""
    from chat_tui.store import OUTBOX_STATES, OutboxState

    assert OUTBOX_STATES == ("queued", "sending", "failed", "blocked", "expired")
    assert tuple(OutboxState) == OUTBOX_STATES
    a = store.enqueue_send(conv, "a")
    b = store.enqueue_send(conv, "b")
    head, _ = store.outbox_rows()
    assert store.outbox_row(head.id)["state"] == OutboxState.QUEUED
    store.mark_sending(head.id)
    assert store.outbox_row(head.id)["state"] == OutboxState.SENDING
    store.record_permanent(head.id, "422 validation: body rejected")
    stored = {r[0] for r in store.db.execute_sql("SELECT state FROM outbox").fetchall()}
    assert stored == {"failed", "queued"}
    assert store.get_message(a).state == OutboxState.FAILED
    assert store.get_message(b).state == OutboxState.BLOCKED == "blocked"
    assert [type(k) for k in store.outbox_counts()] == [str] * len(OUTBOX_STATES)


def test_rule_5_transient_failures_give_up_after_max_attempts(store, conv):
    mid = store.enqueue_send(conv, "x")
    [action] = store.outbox_rows()
    for _ in range(2):
        store.mark_sending(action.id)
        state = store.record_transient(action.id, 0.0, "503", max_attempts=3)
        assert state == "queued"
    store.mark_sending(action.id)
    store.record_unreached(action.id, "connection refused")  # offline: does not count
    assert store.outbox_row(action.id)["attempts"] == 2
    store.mark_sending(action.id)
    assert store.record_transient(action.id, 0.0, "503", max_attempts=3) == "failed"
    assert store.get_message(mid).state == "failed"
    assert "gave up after 3 attempts" in store.get_message(mid).failure_reason


def test_rule_8_acknowledged_echo_keeps_its_id_and_moves_to_its_seq(store, conv):
    mid = store.enqueue_send(conv, "mine")
    theirs = wire_message(conv, 5, body="theirs")  # ordered before mine by the server
    store.apply_sync(sync_response("2", [(wire_conversation(conv), [theirs], False)]))
    assert [v.body for v in store.messages_before(conv)] == ["theirs", "mine"]
    [action] = store.outbox_rows()
    store.mark_sending(action.id)
    store.ack_message(action.id, Message.parse(
        wire_message(conv, 6, author="alice", body="mine", mid=mid)))
    views = store.messages_before(conv)
    assert [(v.id, v.sort_key) for v in views] == [(theirs["id"], 5), (mid, 6)]


def test_rule_s2_replaying_a_sync_response_changes_nothing(store, conv):
    msgs = [wire_message(conv, i) for i in range(2, 6)]
    response = sync_response("9", [(wire_conversation(conv), msgs, False)])
    first = store.apply_sync(response)
    assert first.added == 4
    snapshot = [(v.id, v.body, v.version) for v in store.messages_before(conv)]
    again = store.apply_sync(response)
    assert again.added == 0 and not again.messages
    assert [(v.id, v.body, v.version) for v in store.messages_before(conv)] == snapshot
    assert store.get_cursor() == "9"


def test_rule_s3_last_write_wins_on_version(store, conv):
    msg = wire_message(conv, 2, body="v2", version=2)
    store.apply_sync(sync_response("2", [(wire_conversation(conv), [msg], False)]))
    older = dict(msg, body="v1", version=1)
    store.apply_sync(sync_response("3", [(wire_conversation(conv), [older], False)]))
    assert store.get_message(msg["id"]).body == "v2"
    tomb = dict(msg, body="", version=3, deleted=True)
    store.apply_sync(sync_response("4", [(wire_conversation(conv), [tomb], False)]))
    assert store.get_message(msg["id"]).deleted
    assert store.search("v2") == []


def test_rule_s4_limited_delta_marks_a_gap(store, conv):
    store.apply_sync(sync_response("2", [(wire_conversation(conv), [wire_message(conv, 2)], False)]))
    newer = [wire_message(conv, s) for s in range(60, 63)]
    store.apply_sync(sync_response("3", [(wire_conversation(conv), newer, True)]))
    [gap] = store.gaps(conv)
    assert (gap.before_message_id, gap.before_seq, gap.after_seq) == (newer[0]["id"], 60, 2)
    assert store.has_older(conv)
    assert store.backfill_target(conv) == (newer[0]["id"], store.m.Gap.get().id)


def test_search_fts5_follows_edits_deletes_and_retention(store, conv):
    m = wire_message(conv, 2, body="the quick brown fox")
    store.apply_sync(sync_response("2", [(wire_conversation(conv, "Animals"), [m], False)]))
    [hit] = store.search("quick fo")
    assert (hit.message_id, hit.conversation_title) == (m["id"], "Animals")
    assert "[quick]" in hit.snippet
    edited = dict(m, body="a lazy dog", version=2)
    store.apply_sync(sync_response("3", [(wire_conversation(conv), [edited], False)]))
    assert store.search("quick") == []
    assert [h.message_id for h in store.search("lazy")] == [m["id"]]
    assert store.search('"unbalanced AND (') == []  # any text is a valid query
    old = dict(edited, version=3, created_at=iso(datetime.now(UTC) - timedelta(days=100)))
    store.apply_sync(sync_response("4", [(wire_conversation(conv), [old], False)]))
    store.run_retention(90)
    assert store.search("lazy") == []


def test_rule_r1_retention_keeps_outbox_and_drafts_and_shrinks_the_file(store, conv):
    long_ago = datetime.now(UTC) - timedelta(days=200)
    old = [wire_message(conv, s, body="old " + "x" * 2000, created=long_ago)
           for s in range(2, 302)]
    recent = wire_message(conv, 400, body="recent")
    store.apply_sync(sync_response("2", [(wire_conversation(conv), old + [recent], False)]))
    # An old message of mine with a pending edit is referenced by the outbox.
    mine = wire_message(conv, 1, author="alice", body="mine, old", created=long_ago)
    store.apply_sync(sync_response("3", [(wire_conversation(conv), [mine], False)]))
    store.enqueue_edit(mine["id"], "mine, edited")
    queued = store.enqueue_send(conv, "queued text")
    store.save_draft(conv, "draft text", (0, 5))
    size_before = store.file_size()
    deleted = store.run_retention(90)
    assert deleted == 300
    ids = {v.id for v in store.messages_before(conv, limit=1000)}
    assert ids == {mine["id"], recent["id"], queued}
    assert store.get_draft(conv).text == "draft text"
    assert len(store.outbox_rows()) == 2
    assert store.file_size() < size_before
    # Every free page went back (not one per run: the pragma is stepped to its end).
    assert store.db.execute_sql("PRAGMA freelist_count").fetchone()[0] == 0
    assert store.has_older(conv)  # the server still has them: backfill may fetch again


def test_rule_r1_retention_deletes_in_short_chunks_until_nothing_old_is_left(store, conv):
    from chat_tui.store.retention import RETENTION_CHUNK

    long_ago = datetime.now(UTC) - timedelta(days=200)
    count = 2 * RETENTION_CHUNK + 7  # three transactions: two full chunks and a remainder
    old = [wire_message(conv, s, body="old", created=long_ago) for s in range(2, 2 + count)]
    recent = wire_message(conv, 3 * RETENTION_CHUNK, body="recent")
    store.apply_sync(sync_response("2", [(wire_conversation(conv), old + [recent], False)]))
    assert store.run_retention(90) == count
    assert [v.id for v in store.messages_before(conv, limit=10)] == [recent["id"]]
    assert store.last_retention_at() is not None


def test_rule_r1_zero_keeps_everything(store, conv):
    old = wire_message(conv, 2, created=datetime.now(UTC) - timedelta(days=5000))
    store.apply_sync(sync_response("2", [(wire_conversation(conv), [old], False)]))
    assert store.run_retention(0) == 0
    assert store.get_message(old["id"]) is not None


def test_rule_d2_migration_from_v1_keeps_the_outbox_and_drafts(tmp_path, cache_key):
    path = tmp_path / "v1.db"
    con = open_raw_connection(path, cache_key)
    con.executescript(SCHEMA_V1.read_text())
    now = time.time()
    con.execute("INSERT INTO conversation VALUES ('c1', 'Old chat', 'alice', '[\"alice\"]', 0,"
                " ?, ?, ?, 0, 0, 1, NULL, NULL)", (now, now, now))
    con.execute("INSERT INTO message (id, conversation_id, author, body, created_at, deleted,"
                " streaming, error, sort_key, pending_deleted) VALUES ('m1', 'c1', 'alice',"
                " 'written before the upgrade', ?, 0, 0, 0, ?, 0)", (now, LOCAL_ECHO_BASE + 1))
    con.execute("INSERT INTO outbox (id, kind, conversation_id, message_id, payload, state,"
                " attempts, transient_failures, next_attempt_at, created_at) VALUES (1, 'send',"
                " 'c1', 'm1', '{\"body\": \"written before the upgrade\"}', 'queued', 0, 0, 0, ?)",
                (now - 60,))
    con.execute("INSERT INTO draft VALUES ('c1', 'half-typed', 0, 4, ?)", (now,))
    con.commit()
    assert con.execute("PRAGMA user_version").fetchone()[0] == 1
    con.close()

    store = Cache(path, "alice", key=cache_key)
    store.open()
    assert store.db.execute_sql("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    [action] = store.outbox_rows()
    assert (action.kind, action.message_id, action.payload["body"]) == (
        "send", "m1", "written before the upgrade")
    assert store.outbox_row(1)["queued_at"] == pytest.approx(now - 60)
    assert store.get_draft("c1").text == "half-typed"
    assert store.get_message("m1").state == "queued"
    assert [h.message_id for h in store.search("upgrade")] == ["m1"]
    assert store.list_conversations()[0].title == "Old chat"
    store.close()
    backup = tmp_path / "v1.db.v1.bak"
    assert backup.exists()
    con = open_raw_connection(backup, cache_key)
    assert con.execute("SELECT count(*) FROM outbox").fetchone()[0] == 1
    con.close()


def test_rule_d2_a_newer_file_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "future.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE outbox (id INTEGER)")
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    con.commit()
    con.close()
    with pytest.raises(SchemaTooNew, match="newer chat-tui"):
        Cache(path, "alice").open()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 5
    con.close()


def test_rule_d1_sync_pages_and_outbox_writes_at_once_never_lock(tmp_path, store, conv):
    """Bug class 6: a worker thread applies big sync pages while the UI thread sends."""
    errors: list[BaseException] = []
    stop = threading.Event()

    def syncer():
        worker = Cache(tmp_path / "alice.db", "alice", key=store.key)  # its own connection, like the engine
        worker.open()
        try:
            seq = 1000
            for n in range(30):
                msgs = [wire_message(conv, seq + i, body="s" * 500) for i in range(100)]
                seq += 100
                worker.apply_sync(sync_response(str(n + 10),
                                                [(wire_conversation(conv), msgs, False)]))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            stop.set()
            worker.close()

    thread = threading.Thread(target=syncer)
    thread.start()
    sent = []
    while not stop.is_set() or len(sent) < 50:
        try:
            sent.append(store.enqueue_send(conv, f"typed {len(sent)}"))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
            break
    thread.join()
    assert errors == []
    assert len(store.outbox_rows()) == len(sent)
    assert store.m.Message.select().where(store.m.Message.seq.is_null(False)).count() == 3000


def big_sync_response(cursor: str, conversations: int, per_conversation: int) -> SyncResponse:
    now = iso(datetime.now(UTC))
    items = []
    seq = 10
    for _ in range(conversations):
        cid = str(uuid.uuid4())
        msgs = []
        for _ in range(per_conversation):
            seq += 1
            msgs.append({"id": str(uuid.uuid4()), "conversation_id": cid, "author": "bob",
                         "body": f"history {seq}", "created_at": now, "edited_at": None,
                         "seq": seq, "version": 1, "deleted": False, "streaming": False,
                         "error": False})
        items.append((wire_conversation(cid), msgs, False))
    return sync_response(cursor, items, initial=True)


def test_rule_d1_a_send_during_a_big_sync_apply_waits_for_one_chunk_at_most(tmp_path, store,
                                                                             conv):
    """A big response is applied in short transactions (sync rule S2) under the process's
    FIFO write lock (D1): sends keep going through during the apply, each in well under a
    second, and the cursor moves only with the last chunk."""
    response = big_sync_response("big", conversations=30, per_conversation=1000)
    started, done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def syncer():
        worker = Cache(tmp_path / "alice.db", "alice", key=store.key)  # the engine's worker-thread store
        worker.open()
        try:
            started.set()
            worker.apply_sync(response)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            done.set()
            worker.close()

    thread = threading.Thread(target=syncer)
    thread.start()
    started.wait(10)
    latencies = []
    partial_seen_with_old_cursor = False
    while not done.is_set():
        t0 = time.monotonic()
        store.enqueue_send(conv, f"typed during the sync {len(latencies)}")
        latencies.append(time.monotonic() - t0)
        held = store.m.Message.select().where(store.m.Message.author == "bob").count()
        if 0 < held < 30_000 and store.get_cursor() != "big":
            partial_seen_with_old_cursor = True
    thread.join()
    assert errors == []
    assert len(latencies) >= 3, "the apply ended before any send could run during it"
    assert max(latencies) < 1.0, f"a send waited {max(latencies):.2f} s behind the sync"
    assert partial_seen_with_old_cursor  # chunks commit, the cursor comes last
    assert store.get_cursor() == "big"
    assert store.m.Message.select().where(store.m.Message.author == "bob").count() == 30_000
    assert len(store.outbox_rows()) == len(latencies)


def test_rule_s4_an_ack_of_my_newer_message_does_not_hide_a_limited_gap(store, conv):
    """Bob's 80 messages, then my send acknowledged at seq 91, then the limited delta with
    bob's newest 50 (and mine): the 30 left out are a gap, measured against what sync
    delivered (seq 10), not against my acknowledged message."""
    old = wire_message(conv, 10, body="seen before")
    store.apply_sync(sync_response("2", [(wire_conversation(conv), [old], False)]))
    bobs = [wire_message(conv, 10 + i, body=f"bob {i}") for i in range(1, 81)]
    mine = store.enqueue_send(conv, "mine")
    [action] = store.outbox_rows()
    store.mark_sending(action.id)
    store.ack_message(action.id, Message.parse(
        wire_message(conv, 91, author="alice", body="mine", mid=mine)))
    delta = bobs[-49:] + [wire_message(conv, 91, author="alice", body="mine", mid=mine)]
    store.apply_sync(sync_response("3", [(wire_conversation(conv), delta, True)]))
    [gap] = store.gaps(conv)
    assert (gap.before_seq, gap.after_seq) == (bobs[-49]["seq"], 10)
    assert store.backfill_target(conv) == (bobs[-49]["id"], store.m.Gap.get().id)


def test_drafts_and_ui_state_round_trip(store, conv):
    store.save_draft(conv, "line one\nline two", (1, 3))
    assert store.get_draft(conv).cursor == (1, 3)
    store.set_last_conversation(conv)
    store.set_scroll_anchor(conv, "m-anchor")
    state = store.get_ui_state()
    assert (state.last_conversation_id, state.scroll_anchors) == (conv, {conv: "m-anchor"})
    store.set_scroll_anchor(conv, None)
    assert store.get_ui_state().scroll_anchors == {}
    store.save_draft(conv, "")
    assert store.get_draft(conv) is None


def test_mark_read_moves_the_marker_and_unread_count(store, conv):
    msgs = [wire_message(conv, s) for s in (2, 3, 4)]
    store.apply_sync(sync_response("2", [(wire_conversation(conv, unread=3), msgs, False)]))
    assert store.list_conversations()[0].unread_count == 3
    assert store.enqueue_read(conv, msgs[1]["id"])
    assert store.list_conversations()[0].unread_count == 1
    assert not store.enqueue_read(conv, msgs[0]["id"])  # never backward
    store.enqueue_read(conv, msgs[2]["id"])
    reads = [a for a in store.outbox_rows() if a.kind == "read"]
    assert [a.payload["message_id"] for a in reads] == [msgs[2]["id"]]  # coalesced


def test_message_window_around_a_search_hit(store, conv):
    msgs = [wire_message(conv, s, body=f"number {s}") for s in range(2, 102)]
    store.apply_sync(sync_response("2", [(wire_conversation(conv), msgs, False)]))
    window = store.message_window_around(conv, msgs[50]["id"], limit=10)
    seqs = [v.seq for v in window]
    assert msgs[50]["seq"] in seqs and len(window) == 10 and seqs == sorted(seqs)


SCHEMA_V3 = SCHEMA_V1.with_name("schema_v3.sql")


def fts_consistent(store: Cache) -> bool:
    """FTS5's own check of the index against what it reads (the ``message_text`` view):
    raises ``peewee.DatabaseError`` ("malformed") when one differs from the other."""
    store.db.execute_sql(
        "INSERT INTO message_index(message_index, rank) VALUES ('integrity-check', 1)")
    return True


def found(store: Cache, query: str) -> list[str]:
    return sorted(h.message_id for h in store.search(query))


def test_search_follows_edits_pending_edits_deletes_and_tombstones(store, conv):
    """v4's index holds no copy of the bodies: every change of what the user sees must
    reach it with the exact old values, or it goes out of step (checked by FTS5's own
    integrity check after every step, and by what search finds and shows)."""
    mine = wire_message(conv, 2, author="alice", body="alpha original")
    theirs = wire_message(conv, 3, author="bob", body="bravo words")
    store.apply_sync(sync_response("2", [(wire_conversation(conv, "Words"), [mine, theirs],
                                          False)]))
    assert fts_consistent(store) and found(store, "alpha") == [mine["id"]]
    # A pending edit is what search finds and what the snippet shows, the old body is not.
    store.enqueue_edit(mine["id"], "charlie pending")
    assert fts_consistent(store)
    assert found(store, "alpha") == [] and found(store, "charlie") == [mine["id"]]
    [hit] = store.search("charl")
    assert hit.snippet == "[charlie] pending" and hit.conversation_id == conv
    # Another device's copy of the same message (older version) keeps the edit on top.
    store.apply_sync(sync_response("3", [(wire_conversation(conv), [
        dict(mine, body="delta elsewhere", version=2)], False)]))
    assert fts_consistent(store)
    assert found(store, "delta") == [] and found(store, "charlie") == [mine["id"]]
    # Acknowledged: the server's copy (same text) replaces the pending one.
    [edit] = store.outbox_rows()
    store.ack_message(edit.id, Message.parse(dict(mine, body="charlie pending", version=3)))
    assert fts_consistent(store) and found(store, "charlie") == [mine["id"]]
    # A server-side edit of someone else's message.
    store.apply_sync(sync_response("4", [(wire_conversation(conv), [
        dict(theirs, body="echo edited", version=2)], False)]))
    assert fts_consistent(store)
    assert found(store, "bravo") == [] and found(store, "echo") == [theirs["id"]]
    # A pending delete hides it at once; discarding the delete brings it back.
    store.enqueue_delete(mine["id"])
    assert fts_consistent(store) and found(store, "charlie") == []
    store.discard(mine["id"])
    assert fts_consistent(store) and found(store, "charlie") == [mine["id"]]
    # A tombstone is never found; a tombstone replayed or edited again stays unfound.
    store.apply_sync(sync_response("5", [(wire_conversation(conv), [
        dict(theirs, body="", deleted=True, version=3)], False)]))
    assert fts_consistent(store) and found(store, "echo") == []
    # A local echo: found, rewritten while queued, removed when its send is deleted.
    echo = store.enqueue_send(conv, "foxtrot queued")
    assert fts_consistent(store) and found(store, "foxtrot") == [echo]
    store.enqueue_edit(echo, "golf rewritten")
    assert fts_consistent(store)
    assert found(store, "foxtrot") == [] and found(store, "golf") == [echo]
    store.enqueue_delete(echo)
    assert fts_consistent(store) and found(store, "golf") == []
    # Rows leaving the cache (removed conversation, reset, retention) leave the index.
    store.reset_cache()
    assert fts_consistent(store) and found(store, "charlie") == []


def _v3_file(path: Path, now: float) -> dict:
    """A v3 cache built from the frozen v3 schema (its own triggers fill its FTS table):
    acknowledged messages, a pending edit, a pending delete, a tombstone, a local echo,
    their outbox rows, a draft, a read marker, a gap and a scroll anchor."""
    con = sqlite3.connect(path)
    con.executescript(SCHEMA_V3.read_text())
    ids = {k: str(uuid.uuid4()) for k in ("c1", "c2", "sent", "edited", "gone", "tomb",
                                          "echo", "other")}
    for cid, title in (("c1", "First chat"), ("c2", "Second chat")):
        con.execute("INSERT INTO conversation VALUES (?, ?, 'alice', '[\"alice\", \"bob\"]', 0,"
                    " ?, ?, ?, 0, 0, 0, 1, NULL, NULL, 4)", (ids[cid], title, now, now, now))
    msgs = [  # key, conversation, author, body, seq, deleted, sort_key, pending_body, p_del
        ("sent", "c1", "bob", "hello from the old schema", 1, 0, 1, None, 0),
        ("edited", "c1", "alice", "typo in thsi one", 2, 0, 2, "typo fixed in this one", 0),
        ("gone", "c1", "alice", "regrettable words", 3, 0, 3, None, 1),
        ("tomb", "c1", "bob", "", 4, 1, 4, None, 0),
        ("echo", "c1", "alice", "written offline before the upgrade", None, 0,
         LOCAL_ECHO_BASE + 3, None, 0),
        ("other", "c2", "bob", "another conversation entirely", 5, 0, 5, None, 0),
    ]
    for key, cid, author, body, seq, deleted, sort_key, pending, pdel in msgs:
        con.execute("INSERT INTO message (id, conversation_id, author, body, created_at, seq,"
                    " version, deleted, streaming, error, sort_key, pending_body,"
                    " pending_deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?)",
                    (ids[key], ids[cid], author, body, now - 100, seq,
                     None if seq is None else 1, deleted, sort_key, pending, pdel))
    outbox = [(1, "edit", "c1", "edited", '{"body": "typo fixed in this one", '
               '"base_version": 1}', "failed"),
              (2, "delete", "c1", "gone", "{}", "queued"),
              (3, "send", "c1", "echo", '{"body": "written offline before the upgrade"}',
               "queued")]
    for oid, kind, cid, key, payload, state in outbox:
        con.execute("INSERT INTO outbox VALUES (?, ?, ?, ?, ?, ?, 1, 0, 0, 'why', ?, ?)",
                    (oid, kind, ids[cid], ids[key], payload, state, now - 50, now - 40))
    con.execute("INSERT INTO draft VALUES (?, 'half-typed', 0, 4, ?)", (ids["c2"], now))
    con.execute("INSERT INTO read_marker VALUES (?, 'bob', ?, 2)", (ids["c1"], ids["edited"]))
    con.execute("INSERT INTO gap (conversation_id, before_message_id, before_seq, after_seq)"
                " VALUES (?, ?, 5, 1)", (ids["c2"], ids["other"]))
    con.execute("INSERT INTO scroll_anchor VALUES (?, ?)", (ids["c1"], ids["sent"]))
    con.execute("INSERT INTO meta VALUES ('cursor', 'cursor-v3')")
    con.commit()
    assert con.execute("PRAGMA user_version").fetchone()[0] == 3
    assert con.execute("SELECT count(*) FROM message_index WHERE message_index MATCH 'fixed'"
                       ).fetchone()[0] == 1
    con.close()
    return ids


def test_rule_d2_migration_from_v3_keeps_outbox_drafts_and_search(tmp_path):
    path = tmp_path / "v3.db"
    now = time.time()
    ids = _v3_file(path, now)
    con = sqlite3.connect(path)
    outbox_before = con.execute("SELECT * FROM outbox ORDER BY id").fetchall()
    con.close()

    store = Cache(path, "alice")
    store.open()
    assert store.db.execute_sql("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    columns = {r[1] for r in store.db.execute_sql("PRAGMA table_info(message)").fetchall()}
    assert "conv" in columns and "conversation_id" not in columns
    assert store.db.execute_sql("SELECT sql FROM sqlite_schema WHERE name = 'message_index'"
                                ).fetchone()[0].count("content='message_text'") == 1
    # The outbox, byte for byte; drafts, markers, gaps, anchors and the cursor too.
    assert store.db.execute_sql("SELECT * FROM outbox ORDER BY id").fetchall() == outbox_before
    assert [(a.kind, a.message_id) for a in store.outbox_rows()] == [
        ("edit", ids["edited"]), ("delete", ids["gone"]), ("send", ids["echo"])]
    assert store.get_draft(ids["c2"]).text == "half-typed"
    assert store.gaps(ids["c2"])[0].before_message_id == ids["other"]
    assert store.get_ui_state().scroll_anchors == {ids["c1"]: ids["sent"]}
    assert store.get_cursor() == "cursor-v3"
    # Messages: same ids, order, conversation ids and what the user sees.
    views = store.messages_before(ids["c1"], limit=10)
    assert [v.id for v in views] == [ids[k] for k in ("sent", "edited", "gone", "tomb",
                                                      "echo")]
    assert {v.conversation_id for v in views} == {ids["c1"]}
    shown = {v.id: (v.body, v.deleted, v.state) for v in views}
    assert shown[ids["edited"]] == ("typo fixed in this one", False, "failed")
    # Behind the failed edit in the FIFO: blocked, as before the upgrade.
    assert shown[ids["gone"]] == ("", True, "blocked")
    assert shown[ids["echo"]] == ("written offline before the upgrade", False, "blocked")
    assert shown[ids["sent"]][0] == "hello from the old schema"
    assert store.get_message(ids["other"]).conversation_id == ids["c2"]
    assert [c.title for c in store.list_conversations()] == ["First chat", "Second chat"]
    # Search: the index was rebuilt from what the user sees.
    assert fts_consistent(store)
    assert found(store, "fixed") == [ids["edited"]] and found(store, "thsi") == []
    assert found(store, "regrettable") == []  # pending delete
    assert found(store, "offline") == [ids["echo"]]
    [hit] = store.search("anoth")
    assert (hit.conversation_id, hit.conversation_title) == (ids["c2"], "Second chat")
    assert hit.snippet == "[another] conversation entirely"
    # And it stays in step with what happens next.
    store.discard(ids["edited"])
    assert fts_consistent(store) and found(store, "thsi") == [ids["edited"]]
    mid = store.enqueue_send(ids["c2"], "the first message after the upgrade")
    assert fts_consistent(store) and found(store, "upgrade") == sorted([ids["echo"], mid])
    store.close()
    assert store.db.execute_sql("PRAGMA freelist_count").fetchone()[0] == 0  # rebuilt, shrunk
    # The copy made before migrating is the untouched v3 file.
    con = sqlite3.connect(tmp_path / "v3.db.v3.bak")
    assert con.execute("PRAGMA user_version").fetchone()[0] == 3
    assert con.execute("SELECT * FROM outbox ORDER BY id").fetchall() == outbox_before
    con.close()
    # Opened again: nothing to migrate, the check passes.
    again = Cache(path, "alice")
    again.open()
    assert [a.kind for a in again.outbox_rows()] == ["delete", "send", "send"]
    assert again.get_draft(ids["c1"]).text == "typo fixed in this one"  # the discarded edit
    again.close()


def test_schema_v4_ui_queries_use_indexes(store, conv):
    """Project rule: every query the UI runs uses an index (no scan of ``message``), and so
    does retention (v4 dropped the ``seq`` and ``conversation_id`` indexes and keys
    retention's index by day)."""
    import re

    msgs = [wire_message(conv, s, body=f"number {s}") for s in range(2, 40)]
    store.apply_sync(sync_response("2", [(wire_conversation(conv), msgs, False)]))
    seen: list[str] = []
    con = store.db.connection()
    con.set_trace_callback(seen.append)
    try:
        page = store.messages_before(conv, None, 10)
        store.messages_before(conv, page[0].sort_key, 10)
        store.messages_after(conv, page[0].sort_key, 10)
        store.message_window_around(conv, msgs[5]["id"], 10)
        store.get_message(msgs[3]["id"])
        store.has_older(conv, page[0].sort_key)
        store.list_conversations()
        store.search("number")
        store.backfill_target(conv)
        store.enqueue_read(conv, msgs[-1]["id"])
        store.run_retention(30)
    finally:
        con.set_trace_callback(None)
    scans = []
    checked = 0
    for sql in seen:
        if not sql.lstrip().upper().startswith(("SELECT", "WITH")) or "message" not in sql:
            continue
        checked += 1
        # Names the plan may give ``message``: itself, ``m``, or Peewee's alias ("t1").
        names = {"message", "m"} | set(re.findall(r'"message" AS "(\w+)"', sql))
        for row in store.db.execute_sql("EXPLAIN QUERY PLAN " + sql).fetchall():
            words = row[3].split()
            if words[0] == "SCAN" and words[1] in names:
                scans.append((row[3], sql))
    assert checked >= 10 and scans == []


def test_list_conversations_by_ids_reads_only_those_in_the_list_order(store):
    """``ids`` re-reads only the named conversations (unknown ids left out), in the same
    order as the full list; ``get_conversation`` is that lookup for one id."""
    base = datetime(2026, 11, 1, tzinfo=UTC)
    items = []
    for k, (title, minutes) in enumerate([("b", 5), ("a", 5), ("c", 9), ("Z", 1), ("é", 5)]):
        c = wire_conversation(str(uuid.uuid4()), title)
        c["updated_at"] = iso(base + timedelta(minutes=minutes))
        items.append((c, [wire_message(c["id"], k + 1)] if title != "c" else [], False))
    store.apply_sync(sync_response("1", items))
    everything = store.list_conversations()
    # newest activity first; equal times by title in code point order ("a" < "b" < "é")
    assert [v.title for v in everything] == ["c", "a", "b", "é", "Z"]
    picked = [everything[3].id, everything[0].id, "no-such-id", everything[3].id]
    some = store.list_conversations(ids=picked)
    assert [v.id for v in some] == [everything[0].id, everything[3].id]
    assert store.list_conversations(ids=[]) == []
    assert store.get_conversation(everything[2].id) == everything[2]
    assert store.get_conversation("no-such-id") is None


def test_rule_8_ack_writes_the_servers_copy_in_place_search_and_counts_follow(store, conv):
    """The acknowledgement (written in SQL of its own, once per message drained) turns the
    echo into the server's message in place: same row and id, the server's seq, version,
    time and body, nothing pending; search finds the server's body; the unread count and
    the conversation's activity are what the send left; an echo whose send is followed by
    my queued edit keeps that edit on top (and in the index) until the edit is answered."""
    store.apply_sync(sync_response("2", [(wire_conversation(conv, unread=2), [
        wire_message(conv, 5, body="theirs")], False)]))
    mid = store.enqueue_send(conv, "kilo queued")
    before = store.get_conversation(conv)
    echo = message_row(store, mid)
    [send] = store.outbox_rows()
    store.mark_sending(send.id)
    # The server normalised nothing but gives its own time, seq and version.
    created = datetime.now(UTC) - timedelta(seconds=3)
    res = store.ack_message(send.id, Message.parse(wire_message(
        conv, 6, author="alice", body="kilo queued", mid=mid, version=4, created=created)))
    acked = message_row(store, mid)
    assert acked["pk"] == echo["pk"] and acked["conv"] == echo["conv"]
    assert (acked["seq"], acked["sort_key"], acked["version"]) == (6, 6, 4)
    assert acked["created_at"] == pytest.approx(created.timestamp(), abs=1e-3)
    assert (acked["pending_body"], acked["pending_deleted"], acked["deleted"]) == (None, 0, 0)
    assert res.messages == {conv: {mid}} and res.conversations == {conv} and res.added == 0
    assert store.outbox_rows() == [] and store.get_message(mid).state == "sent"
    assert fts_consistent(store) and found(store, "kilo") == [mid]
    after = store.get_conversation(conv)
    assert (after.unread_count, after.last_activity_at) == (before.unread_count,
                                                            before.last_activity_at)
    # A send followed by my edit: the ack of the send keeps the edit pending and found.
    mid2 = store.enqueue_send(conv, "lima first")
    [send2] = store.outbox_rows()
    store.mark_sending(send2.id)
    assert store.enqueue_edit(mid2, "mike second") == "queued"
    store.ack_message(send2.id, Message.parse(wire_message(
        conv, 7, author="alice", body="lima first", mid=mid2)))
    row = message_row(store, mid2)
    assert (row["body"], row["pending_body"], row["seq"]) == ("lima first", "mike second", 7)
    assert fts_consistent(store) and found(store, "lima") == [] and found(store, "mike") == [mid2]
    [edit] = store.outbox_rows()
    assert edit.kind == "edit"
    store.mark_sending(edit.id)
    store.ack_message(edit.id, Message.parse(wire_message(
        conv, 7, author="alice", body="mike second", mid=mid2, version=2)))
    row = message_row(store, mid2)
    assert (row["body"], row["pending_body"], row["version"]) == ("mike second", None, 2)
    assert fts_consistent(store) and found(store, "mike") == [mid2]
    # An ack older than the copy sync already brought (edited elsewhere) changes no field
    # of it (S3) but still ends the send: nothing pending, the newer body found.
    mid3 = store.enqueue_send(conv, "november")
    [send3] = store.outbox_rows()
    store.mark_sending(send3.id)
    newer = wire_message(conv, 8, author="alice", body="oscar elsewhere", mid=mid3, version=3)
    store.apply_sync(sync_response("3", [(wire_conversation(conv), [newer], False)]))
    store.ack_message(send3.id, Message.parse(dict(newer, body="november", version=1)))
    row = message_row(store, mid3)
    assert (row["body"], row["version"], row["pending_body"]) == ("oscar elsewhere", 3, None)
    assert store.outbox_rows() == []
    assert fts_consistent(store) and found(store, "oscar") == [mid3]
    assert found(store, "november") == []
    # A delete's answer (a tombstone) leaves the index.
    store.enqueue_delete(mid)
    [delete] = store.outbox_rows()
    store.mark_sending(delete.id)
    store.ack_message(delete.id, Message.parse(wire_message(
        conv, 6, author="alice", mid=mid, version=5, deleted=True)))
    row = message_row(store, mid)
    assert (row["deleted"], row["pending_deleted"], row["body"]) == (1, 0, "")
    assert fts_consistent(store) and found(store, "kilo") == [] and store.outbox_rows() == []


def test_rule_8_ack_of_a_message_the_cache_no_longer_holds_inserts_it(store):
    """The echo's conversation was reset away while its send was in flight: the answer is
    stored as a new row under a conversation stub (counted as added), the action removed."""
    cid = str(uuid.uuid4())
    store.enqueue_create_conversation(cid, "gone", ["bob"])
    mid = store.enqueue_send(cid, "papa")
    send = [a for a in store.outbox_rows() if a.kind == "send"][0]
    store.db.execute_sql("DELETE FROM message WHERE id = ?", (mid,))
    store.db.execute_sql("DELETE FROM conversation WHERE id = ?", (cid,))
    res = store.ack_message(send.id, Message.parse(wire_message(
        cid, 1, author="alice", body="papa", mid=mid)))
    assert res.added == 1 and res.messages == {cid: {mid}}
    row = message_row(store, mid)
    assert (row["body"], row["seq"], row["sort_key"], row["pending_body"]) == ("papa", 1, 1,
                                                                              None)
    assert [a.kind for a in store.outbox_rows()] == ["create_conversation"]
    assert fts_consistent(store) and found(store, "papa") == [mid]


def test_rule_S7_my_read_position_holds_against_an_older_server_copy(store, conv):
    """A reply read as it arrived: the server's next copy of the conversation still counts
    it unread (its answer predates my read marker); the cache keeps it read."""
    msgs = [wire_message(conv, s) for s in (2, 3)]
    store.apply_sync(sync_response("2", [(wire_conversation(conv, unread=2), msgs, False)]))
    assert store.enqueue_read(conv, msgs[1]["id"])
    assert store.list_conversations()[0].unread_count == 0
    # the server's copy from before my marker arrived (the reply's last update)
    store.apply_sync(sync_response("3", [(wire_conversation(conv, unread=2), [], False)]))
    assert store.list_conversations()[0].unread_count == 0
    # a new message by bob after my read position counts, whatever the server's copy says
    newer = wire_message(conv, 4)
    store.apply_sync(sync_response("4", [(wire_conversation(conv, unread=3), [newer], False)]))
    assert store.list_conversations()[0].unread_count == 1


def test_rule_S7_a_gap_after_my_read_position_leaves_the_server_count(store, conv):
    msgs = [wire_message(conv, s) for s in (2, 3)]
    store.apply_sync(sync_response("2", [(wire_conversation(conv, unread=2), msgs, False)]))
    assert store.enqueue_read(conv, msgs[1]["id"])
    # a limited delta: seqs 4..53 are missing, only the newest came
    newest = [wire_message(conv, s) for s in range(54, 60)]
    store.apply_sync(sync_response("3", [(wire_conversation(conv, unread=56), newest, True)]))
    assert store.list_conversations()[0].unread_count == 56

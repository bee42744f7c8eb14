"""Sync rule 9 (docs/sync.md): a conversation's title, model and system prompt go through
the outbox in order with its messages, show at once, stay shown over sync until the
server has them, and give the earlier values back when discarded; each reply records its
model (docs/api.md). Real server processes, a real OpenAI-compatible model server (SSE),
real SQLite files."""

from __future__ import annotations

import sqlite3
import time
import uuid

import pytest

from chat_tui.store import Cache, StoreError
from chat_tui.store.models import FTS_SCHEMA, FTS_TRIGGERS, SCHEMA_VERSION
from tests.support.accounts import login_account
from tests.support.engine import drained
from tests.support.payloads import sync_response, wire_conversation, wire_message
from tests.support.waiting import wait_for


def assistant_conversation(cid: str, model: str | None = None, title: str = "Ask") -> dict:
    conv = wire_conversation(cid, title)
    conv.update(assistant=True, members=["alice", "assistant"], creator="alice",
                model=model, system_prompt=None)
    return conv


def replies(engine, cid: str) -> list:
    return [m for m in engine.store.messages_before(cid, limit=50)
            if m.author == "assistant" and not m.streaming]


async def test_rule_9_a_model_change_made_offline_between_two_messages_applies_in_order(
        server_factory, model_server, engines):
    server = server_factory.start_with_model(model_server.url, "small",
                                             users={"alice": "alice-pw"})
    engine = engines.make(login_account(server, "alice"))
    await engine.open()  # not started: everything below is queued offline
    cid = engine.create_conversation("Ask", assistant=True)
    engine.send(cid, "first question")
    assert engine.update_conversation(cid, model="large", system_prompt="Be brief.")
    assert engine.store.get_conversation(cid).model == "large"  # shown at once
    engine.send(cid, "second question")
    assert [a.kind for a in engine.store.outbox_rows()] == [
        "create_conversation", "send", "update_conversation", "send"]

    await engine.start()
    done = await wait_for(lambda: len(replies(engine, cid)) == 2 and drained(engine), 30)
    assert done, engine.store.outbox_list()
    first, second = replies(engine, cid)
    assert (first.body, first.model) == ("saw 1: alice: first question", "small")
    assert (second.body, second.model) == ("saw 2: alice: second question", "large")
    used = [(r["model"], r["messages"][0]["content"]) for r in model_server.requests]
    assert used[0][0] == "small" and used[0][1] != "Be brief."
    assert used[1] == ("large", "Be brief.")
    conv = engine.store.get_conversation(cid)
    assert (conv.model, conv.system_prompt) == ("large", "Be brief.")


async def test_rule_9_created_with_a_model_and_renamed_offline(
        server_factory, model_server, engines):
    server = server_factory.start_with_model(model_server.url, "small",
                                             users={"alice": "alice-pw"})
    engine = engines.make(login_account(server, "alice"))
    await engine.open()
    cid = engine.create_conversation("Ask", assistant=True, model="large",
                                     system_prompt="Answer in one word.")
    assert engine.update_conversation(cid, title="Renamed")
    assert not engine.update_conversation(cid, title="Renamed")  # nothing changes
    engine.send(cid, "hello")
    await engine.start()
    assert await wait_for(lambda: replies(engine, cid) and drained(engine), 30)
    [reply] = replies(engine, cid)
    assert reply.model == "large"
    assert model_server.requests[0]["messages"][0]["content"] == "Answer in one word."
    conv = engine.store.get_conversation(cid)
    assert (conv.title, conv.model, conv.pending) == ("Renamed", "large", False)


def test_rule_9_a_queued_change_stays_shown_over_sync_and_a_discard_gives_it_back(store):
    cid = str(uuid.uuid4())
    store.apply_sync(sync_response("1", [(assistant_conversation(cid, "small"), [], False)]))
    oid = store.enqueue_update_conversation(cid, {"model": "large", "title": " New "})
    view = store.get_conversation(cid)
    assert (view.model, view.title) == ("large", "New")
    # the server's copy (still the old values) comes by sync: mine stays on top
    store.apply_sync(sync_response("2", [(assistant_conversation(cid, "small"), [], False)]))
    assert store.get_conversation(cid).model == "large"
    # a refusal shows among the problems, with what the change was
    store.record_permanent(oid, "404 not_found: conversation not found")
    [problem] = store.problems()
    assert (problem.kind, problem.state, problem.body_preview) == (
        "update_conversation", "failed", "title: New; model: large")
    assert "not found" in problem.reason
    assert "the earlier ones come back" in store.discard_plan(oid)[0]
    assert store.discard_action(oid) == ""
    view = store.get_conversation(cid)
    assert (view.model, view.title) == ("small", "Ask")
    assert store.outbox_rows() == []


def test_rule_9_the_servers_answer_wins_once_acknowledged(store):
    from chat_tui.wire.models import Conversation

    cid = str(uuid.uuid4())
    store.apply_sync(sync_response("1", [(assistant_conversation(cid, "small"), [], False)]))
    first = store.enqueue_update_conversation(cid, {"model": "large"})
    store.enqueue_update_conversation(cid, {"system_prompt": "Be brief."})
    answer = Conversation.parse(assistant_conversation(cid, "large"))
    store.ack_conversation_update(first, answer)
    view = store.get_conversation(cid)
    # the later change, still queued, stays on top of the answer
    assert (view.model, view.system_prompt) == ("large", "Be brief.")
    assert [a.kind for a in store.outbox_rows()] == ["update_conversation"]
    # discarding an earlier change keeps what a later one sets
    again = store.enqueue_update_conversation(cid, {"model": None})
    store.enqueue_update_conversation(cid, {"model": "tiny"})
    store.discard_action(again)
    assert store.get_conversation(cid).model == "tiny"


def test_rule_9_bad_settings_are_refused_before_anything_is_queued(store, conv):
    cid = str(uuid.uuid4())
    store.apply_sync(sync_response("1", [(assistant_conversation(cid), [], False)]))
    for bad in ({"title": "  "}, {"title": "x" * 201}, {"model": "m" * 201},
                {"system_prompt": "p" * 16_001}, {"colour": "red"}):
        with pytest.raises(StoreError):
            store.enqueue_update_conversation(cid, bad)
    with pytest.raises(StoreError, match="only a conversation with the assistant"):
        store.enqueue_update_conversation(conv, {"model": "large"})
    with pytest.raises(StoreError, match="unknown conversation"):
        store.enqueue_update_conversation(str(uuid.uuid4()), {"title": "x"})
    with pytest.raises(StoreError, match="only a conversation with the assistant"):
        store.enqueue_create_conversation(str(uuid.uuid4()), "t", model="large")
    assert store.outbox_rows() == []
    assert store.enqueue_update_conversation(conv, {"title": "Chat"}) is None  # no change


def test_reply_model_and_stopped_are_cached_from_sync_and_acknowledgements(store):
    cid = str(uuid.uuid4())
    reply = wire_message(cid, 2, author="assistant", body="half an ans")
    reply.update(model="large", stopped=True)
    plain = wire_message(cid, 3, author="bob")
    store.apply_sync(sync_response("1", [(assistant_conversation(cid), [reply, plain],
                                          False)]))
    by_id = {m.id: m for m in store.messages_before(cid)}
    assert (by_id[reply["id"]].model, by_id[reply["id"]].stopped) == ("large", True)
    assert (by_id[plain["id"]].model, by_id[plain["id"]].stopped) == (None, False)
    # a later version through the single-row path keeps them too
    reply.update(version=2, body="half an answer", stopped=False, model="small")
    store.apply_sync(sync_response("2", [(assistant_conversation(cid), [reply], False)]))
    again = store.get_message(reply["id"])
    assert (again.body, again.model, again.stopped) == ("half an answer", "small", False)


def test_cache_v4_file_is_migrated_to_v5_keeping_everything(tmp_path):
    path = tmp_path / "v4.db"
    store = Cache(path, "alice")
    store.open()
    cid = str(uuid.uuid4())
    store.apply_sync(sync_response("7", [(assistant_conversation(cid), [
        wire_message(cid, 1, author="alice", body="kept across the upgrade")], False)]))
    mid = store.enqueue_send(cid, "queued before the upgrade")
    store.save_draft(cid, "half-typed", (0, 3))
    store.close()
    con = sqlite3.connect(path)
    # The v4 shape: the same file without the v5 columns (the view, the index over it and
    # its triggers name ``message``: set aside while its columns are dropped).
    for trigger in ("message_ai", "message_ad", "message_au"):
        con.execute(f"DROP TRIGGER {trigger}")
    con.execute("DROP TABLE message_index")
    con.execute("DROP VIEW message_text")
    for table, column in (("conversation", "model"), ("conversation", "system_prompt"),
                          ("message", "model"), ("message", "stopped")):
        con.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    for statement in (*FTS_SCHEMA, *FTS_TRIGGERS):
        con.execute(statement)
    con.execute("INSERT INTO message_index(message_index) VALUES ('rebuild')")
    con.execute("DROP TABLE remote_room")  # v6, after this one
    con.execute("DROP TABLE remote_event")
    con.execute("PRAGMA user_version = 4")
    con.commit()
    outbox = con.execute("SELECT * FROM outbox").fetchall()
    con.close()
    time.sleep(0.01)

    again = Cache(path, "alice")
    again.open()
    assert again.db.execute_sql("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
    assert again.db.execute_sql("SELECT * FROM outbox").fetchall() == outbox
    assert again.get_message(mid).state == "queued"
    assert again.get_draft(cid).text == "half-typed"
    assert [h.message_id for h in again.search("upgrade")] != []
    view = again.get_conversation(cid)
    assert (view.title, view.model, view.system_prompt) == ("Ask", None, None)
    assert again.enqueue_update_conversation(cid, {"model": "large"}) is not None
    assert again.get_conversation(cid).model == "large"
    again.close()
    assert (tmp_path / "v4.db.v4.bak").exists()

"""Sync rule 10 (docs/sync.md): regenerate a reply and retry a failed one through the
outbox: queued offline with the new reply's id, sent in order when back, the earlier reply
shown until the server's tombstone replaces it, nothing of the user's touched; refusals
before anything is queued. Real server process, a real OpenAI-compatible model server
(SSE), real SQLite files."""

from __future__ import annotations

import uuid

import pytest

from chat_tui.store import StoreError
from tests.support.accounts import login_account
from tests.support.engine import drained
from tests.support.payloads import sync_response, wire_conversation, wire_message
from tests.support.waiting import wait_for


def assistant_messages(engine, cid: str) -> list:
    return [m for m in engine.store.messages_before(cid, limit=50) if m.author == "assistant"]


async def test_rule_10_failure_then_retry_and_an_offline_regenerate(
        server_factory, model_server, engines):
    server = server_factory.start_with_model(model_server.url, "small",
                                             users={"alice": "alice-pw"})
    engine = engines.make(login_account(server, "alice"))
    model_server.control(fail="500")
    await engine.start()
    cid = engine.create_conversation("Ask", assistant=True)
    question = engine.send(cid, "are you there")
    assert await wait_for(lambda: any(m.error for m in assistant_messages(engine, cid)), 30)
    [failed] = assistant_messages(engine, cid)
    assert failed.model == "small" and "HTTP 500" in failed.body

    # retry the failed reply
    model_server.control(fail=None)
    retried = engine.regenerate(failed.id)
    assert await wait_for(lambda: (m := engine.store.get_message(retried)) is not None
                          and not m.streaming and m.body and drained(engine), 30)
    assert engine.store.get_message(retried).body == "saw 1: alice: are you there"
    assert await wait_for(lambda: engine.store.get_message(failed.id).deleted, 10)

    # regenerate offline, with another model: queued, the earlier reply stays shown
    engine.set_work_offline(True)
    assert engine.update_conversation(cid, model="large")
    new_id = engine.regenerate(retried)
    assert engine.regenerate(retried) == new_id  # asked twice: queued once
    assert [a.kind for a in engine.store.outbox_rows()] == [
        "update_conversation", "regenerate"]
    assert engine.store.get_message(new_id) is None
    assert not engine.store.get_message(retried).deleted
    engine.set_work_offline(False)
    assert await wait_for(lambda: (m := engine.store.get_message(new_id)) is not None
                          and not m.streaming and m.body and drained(engine), 30)
    new = engine.store.get_message(new_id)
    assert (new.model, new.body) == ("large", "saw 1: alice: are you there")
    assert await wait_for(lambda: engine.store.get_message(retried).deleted, 10)
    mine = engine.store.get_message(question)
    assert (mine.body, mine.deleted, mine.state) == ("are you there", False, "sent")
    assert [m.id for m in assistant_messages(engine, cid) if not m.deleted] == [new_id]


def test_rule_10_refused_before_anything_is_queued(store):
    cid = str(uuid.uuid4())
    conv = wire_conversation(cid)
    conv.update(assistant=True, members=["alice", "assistant"])
    question = wire_message(cid, 1, author="alice", body="q")
    writing = wire_message(cid, 2, author="assistant", body="half")
    writing["streaming"] = True
    gone = wire_message(cid, 3, author="assistant", deleted=True)
    done = wire_message(cid, 4, author="assistant", body="an answer")
    store.apply_sync(sync_response("1", [(conv, [question, writing, gone, done], False)]))
    for mid, reason in ((question["id"], "only an assistant reply"),
                        (writing["id"], "still being written"),
                        (gone["id"], "replaced already"),
                        (str(uuid.uuid4()), "unknown message")):
        with pytest.raises(StoreError, match=reason):
            store.enqueue_regenerate(mid)
    assert store.outbox_rows() == []
    assert store.last_reply(cid) == done["id"]
    reply_id = store.enqueue_regenerate(done["id"])
    [action] = store.outbox_rows()
    assert (action.kind, action.message_id, action.payload) == (
        "regenerate", done["id"], {"reply_id": reply_id})
    # refused by the server: failed like any action, shown with what it is; discarded
    store.record_permanent(action.id, "409 conflict: the reply is still being written")
    [problem] = store.problems()
    assert (problem.kind, problem.state, problem.body_preview) == (
        "regenerate", "failed", "a new reply")
    assert "earlier reply stays" in store.discard_plan(action.id)[0]
    assert store.discard_action(action.id) == ""
    assert store.outbox_rows() == [] and not store.get_message(done["id"]).deleted

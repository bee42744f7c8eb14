"""A conversation's task acknowledges one action and marks the next ``sending`` in one
transaction (outbox rules 2 and 4; ``Cache.mark_next_sending``, ``Drain._ack_and_next``):
the store method on a real SQLite file, and interruptions of a chained drain against the
real server process."""

from __future__ import annotations

import time
import uuid

import pytest

from chat_tui.store import Cache
from tests.support.engine import drained, online_conversation, server_bodies
from tests.support.payloads import sync_response, wire_conversation
from tests.support.waiting import wait_for


@pytest.fixture
async def alice(login_account, engines):
    engine = engines.make(login_account("alice"))
    await engine.start()
    assert await wait_for(lambda: engine.connectivity == "online")
    return engine


def states(store: Cache) -> list[tuple[str, str]]:
    return [(a.message_id, store.outbox_row(a.id)["state"]) for a in store.outbox_rows()]


def test_rule_4_mark_next_sending_marks_only_a_queued_due_head(store, conv):
    other = str(uuid.uuid4())
    store.apply_sync(sync_response("2", [(wire_conversation(other), [], False)]))
    first = store.enqueue_send(conv, "one")
    second = store.enqueue_send(conv, "two")
    store.enqueue_send(other, "elsewhere")
    marked = store.mark_next_sending(conv)
    assert (marked.message_id, marked.attempts, marked.payload) == (first, 1, {"body": "one"})
    assert store.mark_next_sending(conv) is None  # the head is in flight: never two
    assert states(store)[:2] == [(first, "sending"), (second, "queued")]
    store.record_permanent(marked.id, "422 nope")
    assert store.mark_next_sending(conv) is None  # a failed head blocks (rule 3)
    assert store.get_message(second).state == "blocked"


def test_rule_6_mark_next_sending_leaves_a_too_old_send_to_expiry(store, conv):
    mid = store.enqueue_send(conv, "stale")
    later = time.time() + 7200
    assert store.mark_next_sending(conv, 3600, now=later) is None
    assert states(store) == [(mid, "queued")]
    assert store.expire_old(3600, now=later) == [mid]
    assert store.mark_next_sending(conv, 0) is None  # expired now: blocks until send anyway


def test_rule_3c_mark_next_sending_waits_for_a_retry_that_is_not_due(store, conv):
    mid = store.enqueue_send(conv, "later")
    action = store.mark_sending(store.outbox_rows()[0].id)
    store.record_transient(action.id, 60.0, "503", 8)
    assert store.mark_next_sending(conv) is None
    assert store.mark_next_sending(conv, now=time.time() + 61).message_id == mid



def test_rule_4_batch_commits_the_ack_and_the_next_mark_together_or_neither(store, conv):
    """``Cache.batch`` joins the methods' transactions into one (no savepoints): when
    anything in it fails, the acknowledgement and the next action's mark are both undone,
    so the answered action is still ``sending`` (re-sent with its key) and nothing else is;
    a batch that completes commits both, and later writes are transactions of their own."""
    from chat_tui.api import Message
    from tests.support.cache import message_row
    from tests.support.payloads import wire_message

    first = store.enqueue_send(conv, "one")
    second = store.enqueue_send(conv, "two")
    action = store.mark_next_sending(conv)
    answer = Message.parse(wire_message(conv, 4, author="alice", body="one", mid=first))
    with pytest.raises(RuntimeError), store.batch():
        store.ack_message(action.id, answer)
        assert store.mark_next_sending(conv).message_id == second
        raise RuntimeError("the worker died half way")
    assert states(store) == [(first, "sending"), (second, "queued")]
    assert message_row(store, first)["seq"] is None
    assert store.db.in_transaction() is False
    with store.batch():
        store.ack_message(action.id, answer)
        nxt = store.mark_next_sending(conv)
    assert states(store) == [(second, "sending")] and nxt.message_id == second
    assert message_row(store, first)["seq"] == 4
    store.record_unreached(nxt.id, "interrupted")  # outside the batch: its own transaction
    assert states(store) == [(second, "queued")]


async def test_rule_4_work_offline_in_the_middle_of_a_chained_drain_leaves_nothing_sending(
        alice, server_api):
    """Work offline interrupts a conversation draining back to back (each ack marks the next
    action ``sending`` in its transaction): nothing stays ``sending``, and once online again
    every message arrives once, in order."""
    cid = await online_conversation(alice)
    mids = [alice.send(cid, f"m{i}") for i in range(60)]
    assert await wait_for(lambda: alice.store.outbox_counts()["queued"] < 50, timeout=20)
    alice.set_work_offline(True)
    assert await wait_for(lambda: alice.store.outbox_counts()["sending"] == 0, timeout=5)
    left = alice.store.outbox_counts()["queued"]
    assert 0 < left < 60, "the drain finished before the interruption: nothing tested"
    await wait_for(lambda: False, timeout=0.3)
    assert alice.store.outbox_counts()["sending"] == 0
    alice.set_work_offline(False)
    assert await wait_for(lambda: drained(alice), timeout=30)
    assert await server_bodies(server_api("bob"), cid) == [f"m{i}" for i in range(60)]
    page = await server_api("bob").messages(cid, limit=500)
    assert [m.id for m in page.messages] == mids and page.total_count == 60

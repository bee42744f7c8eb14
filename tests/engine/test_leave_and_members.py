"""Sync rule 11 (docs/sync.md): leaving a conversation and changing its members through
the outbox: shown at once, queued offline, sent in order; a leave drops the conversation
from the list at once and from the cache once acknowledged; a refused one shows again,
retry and discard; member changes stay shown over sync and a discard gives the members
back. Real server process, real SQLite files."""

from __future__ import annotations

import uuid

import pytest

from chat_tui.store import StoreError
from tests.support.engine import drained, online_conversation
from tests.support.payloads import sync_response, wire_conversation, wire_message
from tests.support.waiting import wait_for


async def test_rule_11_a_leave_made_offline_hides_at_once_and_drops_the_cache(
        server, login_account, engines, server_api):
    engine = engines.make(login_account("alice"))
    await engine.start()
    cid = await online_conversation(engine, "Plans", ("bob",))
    engine.send(cid, "see you")
    assert await wait_for(lambda: drained(engine))
    engine.set_work_offline(True)
    engine.leave_conversation(cid)
    assert engine.store.get_conversation(cid) is None  # gone from the list at once
    assert [a.kind for a in engine.store.outbox_rows()] == ["leave_conversation"]
    engine.leave_conversation(cid)  # asked twice: queued once
    assert len(engine.store.outbox_rows()) == 1
    engine.set_work_offline(False)
    assert await wait_for(lambda: drained(engine) and not engine.store.outbox_rows(), 15)
    assert engine.store.messages_before(cid) == []
    assert engine.store.get_conversation(cid) is None
    bob = server_api("bob")
    [conv] = [c for c in await bob.list_conversations() if c.id == cid]
    assert conv.members == ("bob",)
    assert [m.body for m in (await bob.messages(cid)).messages] == ["see you"]
    with pytest.raises(StoreError):
        engine.send(cid, "too late")


def test_rule_11_a_refused_leave_shows_the_conversation_again(store, conv):
    oid = store.enqueue_leave(conv)
    assert store.get_conversation(conv) is None
    store.record_permanent(oid, "404 not_found: conversation not found")
    assert store.get_conversation(conv) is not None  # back, with its failed action
    [problem] = store.problems()
    assert (problem.kind, problem.body_preview) == ("leave_conversation",
                                                    "leave the conversation")
    store.retry_action(oid)
    assert store.get_conversation(conv) is None
    store.record_permanent(oid, "500 internal")
    assert "comes back in the list" in store.discard_plan(oid)[0]
    store.discard_action(oid)
    assert store.get_conversation(conv) is not None and store.outbox_rows() == []


def test_rule_11_member_changes_show_at_once_stay_over_sync_and_discard_gives_back(store):
    cid = str(uuid.uuid4())
    mine = wire_conversation(cid)
    mine["creator"] = "alice"
    store.apply_sync(sync_response("1", [(mine, [], False)]))
    added = store.enqueue_member_change(cid, " Carol ", True)
    store.enqueue_member_change(cid, "bob", False)
    assert store.get_conversation(cid).members == ("alice", "carol")
    store.apply_sync(sync_response("2", [(mine, [], False)]))  # the server's old members
    assert store.get_conversation(cid).members == ("alice", "carol")
    assert [p.body_preview for p in store.outbox_list()] == ["add carol", "remove bob"]
    assert store.enqueue_member_change(cid, "carol", True) is None  # a member already
    store.discard_action(added)
    assert store.get_conversation(cid).members == ("alice",)  # bob's removal still queued
    row = store.outbox_rows()[0]
    store.discard_action(row.id)
    assert store.get_conversation(cid).members == ("alice", "bob")
    for name, add, reason in (("assistant", True, "chosen when the conversation"),
                              ("alice", False, "leave"), ("no way", True, "invalid")):
        with pytest.raises(StoreError, match=reason):
            store.enqueue_member_change(cid, name, add)
    theirs = str(uuid.uuid4())
    store.apply_sync(sync_response("3", [(wire_conversation(theirs), [], False)]))
    with pytest.raises(StoreError, match="only the creator"):
        store.enqueue_member_change(theirs, "carol", True)
    assert store.outbox_rows() == []


def test_rule_11_a_removed_entry_of_sync_drops_the_conversation(store, conv):
    msg = wire_message(conv, 1)
    store.apply_sync(sync_response("2", [(wire_conversation(conv), [msg], False)]))
    store.save_draft(conv, "unsent words", (0, 0))
    gone = {"conversation": wire_conversation(conv), "messages": [], "limited": False,
            "removed": True}
    from chat_tui.api import SyncResponse

    store.apply_sync(SyncResponse.parse({"cursor": "3", "initial": False,
                                         "conversations": [gone], "read_markers": []}))
    assert store.get_conversation(conv) is None
    assert store.get_message(msg["id"]) is None
    assert store.get_draft(conv).text == "unsent words"  # nothing typed is lost


async def test_rule_11_members_changed_offline_reach_the_server_in_order(
        server, login_account, engines, server_api):
    server.add_user("carol", "carol-pw")
    engine = engines.make(login_account("alice"))
    await engine.start()
    cid = await online_conversation(engine, "Team", ("bob",))
    engine.set_work_offline(True)
    assert engine.add_member(cid, "carol")
    assert engine.remove_member(cid, "bob")
    assert not engine.remove_member(cid, "bob")
    engine.send(cid, "welcome carol")
    assert engine.store.get_conversation(cid).members == ("alice", "carol")
    engine.set_work_offline(False)
    assert await wait_for(lambda: drained(engine) and not engine.store.outbox_rows(), 15)
    from chat_tui.api import ApiClient

    token = server.login("carol", "carol-pw", device="checker")["access_token"]
    async with ApiClient(server.url, token) as carol:
        [conv] = [c for c in await carol.list_conversations() if c.id == cid]
        assert conv.members == ("alice", "carol")
        assert [m.body for m in (await carol.messages(cid)).messages] == ["welcome carol"]
    assert cid not in [c.id for c in await server_api("bob").list_conversations()]

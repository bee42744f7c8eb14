"""Sync rule 3n in the cache: retry and discard any pending action by its outbox id."""

from __future__ import annotations

import uuid

import pytest

from chat_tui.store import StoreError


def test_rule_3n_retry_by_id_takes_an_expired_send_back(store, conv):
    mid = store.enqueue_send(conv, "old words")
    assert store.expire_old(1, now=10**12) == [mid]
    [entry] = store.outbox_list()
    assert entry.state == "expired" and entry.kind == "send" and entry.reason
    store.retry_action(entry.outbox_id)
    [entry] = store.outbox_list()
    assert entry.state == "queued" and entry.reason == ""


def test_rule_3n_retry_refuses_a_queued_action_and_an_unknown_id(store, conv):
    store.enqueue_send(conv, "waiting")
    [entry] = store.outbox_list()
    with pytest.raises(StoreError, match="queued, not failed or expired"):
        store.retry_action(entry.outbox_id)
    with pytest.raises(StoreError, match="no outbox action 999"):
        store.retry_action(999)


def test_rule_3n_discard_of_a_create_removes_the_conversation_and_what_follows(store):
    cid = store.enqueue_create_conversation(str(uuid.uuid4()), "Offline plans")
    mid = store.enqueue_send(cid, "queued behind the create")
    store.save_draft(cid, "half typed", (0, 0))
    store.set_last_conversation(cid)
    create = store.outbox_list()[0]
    plan = "\n".join(store.discard_plan(create.outbox_id))
    assert "Offline plans" in plan and "queued behind the create" in plan
    assert "half typed" in plan
    assert store.discard_action(create.outbox_id) == "queued behind the create\n\nhalf typed"
    assert store.outbox_list() == []
    assert store.get_conversation(cid) is None and store.get_message(mid) is None
    assert store.get_draft(cid) is None
    assert store.get_ui_state().last_conversation_id is None


def test_rule_3n_discard_of_a_send_by_id_puts_the_text_back(store, conv):
    mid = store.enqueue_send(conv, "take it back")
    [entry] = store.outbox_list()
    assert store.discard_action(entry.outbox_id) == "take it back"
    assert store.get_message(mid) is None
    assert store.get_draft(conv).text == "take it back"

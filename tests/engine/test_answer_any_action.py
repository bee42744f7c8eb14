"""Rules 3n and 3p (docs/sync.md): every waiting action is answerable by its outbox id,
whatever its kind, and a refused conversation create can be edited. A real SQLite cache;
the server's refusal is recorded as the drain records it (``Cache.mark_sending`` and
``Cache.record_permanent``)."""

from __future__ import annotations

import json

import pytest

from chat_tui.store import Cache, StoreError

CID = "00000002-0000-4000-8000-000000000000"


@pytest.fixture
def store(tmp_path):
    cache = Cache(tmp_path / "me.db", "me")
    cache.open()
    yield cache
    cache.close()


def refuse_create(store: Cache) -> int:
    """Queue a create with an unknown member and record the server's 422 for it."""
    store.enqueue_create_conversation(CID, "Ghosts", ["nobody_x"])
    create = store.outbox_rows()[0]
    store.mark_sending(create.id)
    store.record_permanent(create.id, "422 unknown usernames: nobody_x")
    return create.id


def test_rule_3n_discarding_a_create_removes_it_and_returns_the_text(store):
    oid = refuse_create(store)
    store.enqueue_send(CID, "first words")
    store.save_draft(CID, "half a thought")
    assert [p.state for p in store.problems()] == ["failed", "blocked"]
    text = store.discard_action(oid)
    assert text == "first words\n\nhalf a thought"
    assert store.problems() == [] and store.outbox_rows() == []
    assert all(c.id != CID for c in store.list_conversations())
    assert store.get_draft(CID) is None


def test_rule_3n_discarding_a_message_action_by_id_is_a_discard(store):
    oid = refuse_create(store)
    store.retry_action(oid)
    mid = store.enqueue_send(CID, "hello")
    send = next(a for a in store.outbox_rows() if a.message_id == mid)
    assert store.discard_action(send.id) == "hello"
    assert store.get_draft(CID).text == "hello"
    assert [a.kind for a in store.outbox_rows()] == ["create_conversation"]


def test_rule_3n_an_action_in_flight_or_unknown_is_refused(store):
    store.enqueue_create_conversation(CID, "Notes")
    create = store.outbox_rows()[0]
    store.mark_sending(create.id)
    with pytest.raises(StoreError, match="being sent"):
        store.discard_action(create.id)
    with pytest.raises(StoreError, match="no outbox action"):
        store.discard_action(create.id + 100)
    assert len(store.outbox_rows()) == 1


def test_rule_3p_a_refused_create_is_edited_and_queued_again(store):
    oid = refuse_create(store)
    store.update_create_conversation(oid, "Friends", ["Bob"])
    row = store.outbox_row(oid)
    assert row["state"] == "queued" and row["attempts"] == 0 and row["last_error"] is None
    assert json.loads(row["payload"]) == {"title": "Friends", "members": ["bob", "me"],
                                          "assistant": False}
    conv = next(c for c in store.list_conversations() if c.id == CID)
    assert conv.title == "Friends" and list(conv.members) == ["bob", "me"]
    with pytest.raises(StoreError, match="1 to 200"):
        store.update_create_conversation(oid, "  ", ["bob"])

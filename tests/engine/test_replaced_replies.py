"""Sync rule 10 in the cache: a replaced assistant reply (the server's tombstone of it, as
sync brings it) is not shown: every read of a conversation's messages leaves it out in
SQL, the Peewee cache and the first frame's reader alike, so pages, the "older messages"
check and the export agree; a person's deleted message is still shown and exported as
deleted. Real cache files."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chat_tui.store import Cache
from chat_tui.store.export_md import conversations_markdown
from chat_tui.store.first_frame import FirstFrameReader
from chat_tui.store.shown import ASSISTANT_AUTHOR
from chat_tui.wire.limits import ASSISTANT_USERNAME
from tests.support.payloads import sync_response, wire_conversation, wire_message

A = "0000000a-0000-4000-8000-000000000000"
START = datetime(2026, 1, 1, tzinfo=UTC)


def message(seq: int, author: str, body: str = "", deleted: bool = False) -> dict:
    return wire_message(A, seq, author, body=body, mid=str(uuid.UUID(int=seq)),
                        deleted=deleted, created=START + timedelta(minutes=seq))


def cache_with_a_replaced_reply(path: Path) -> dict[str, str]:
    """alice's cache of an assistant conversation: alice asks (seq 1); the assistant's
    first reply (2) is a tombstone, replaced by its reply at 5; bob deleted his message
    (3); alice thanks (4). Closed cleanly. Returns the ids by name."""
    conv = {**wire_conversation(A, "Ask"), "assistant": True,
            "members": ["alice", "assistant", "bob"]}
    msgs = [message(1, "alice", "what is a lighthouse"),
            message(2, "assistant", deleted=True),  # replaced
            message(3, "bob", deleted=True),  # a person's deleted message
            message(4, "alice", "thanks"),
            message(5, "assistant", "a tower with a light")]
    store = Cache(path, "alice")
    store.open()
    store.apply_sync(sync_response("9", [(conv, msgs, False)]))
    store.close()
    return {"question": msgs[0]["id"], "old": msgs[1]["id"], "bob": msgs[2]["id"],
            "thanks": msgs[3]["id"], "new": msgs[4]["id"]}


def reads(source) -> dict:
    return {
        "newest": source.messages_before(A, None, limit=50),
        "page_of_two": source.messages_before(A, None, limit=2),
        "before_3": source.messages_before(A, 3, limit=50),
        "after_1": source.messages_after(A, 1, limit=50),
        "around_old": source.message_window_around(A, str(uuid.UUID(int=2)), limit=4),
        "older_than_3": source.has_older(A, 3),
        "preview": source.list_conversations()[0].last_message_preview,
    }


def test_rule_10_a_replaced_reply_is_not_shown_nor_exported_a_persons_deletion_is(
        tmp_path):
    assert ASSISTANT_AUTHOR == ASSISTANT_USERNAME
    path = tmp_path / "alice.db"
    ids = cache_with_a_replaced_reply(path)
    reader = FirstFrameReader.open(path, "alice")
    assert reader is not None
    from_reader = reads(reader)
    reader.close()
    store = Cache(path, "alice")
    store.open()
    try:
        from_cache = reads(store)
        assert from_reader == from_cache
        newest = from_cache["newest"]
        assert [v.id for v in newest] == [ids["question"], ids["bob"], ids["thanks"],
                                          ids["new"]]
        assert [v.deleted for v in newest] == [False, True, False, False]
        # a page counts shown messages only; the window pages past the hidden reply
        assert [v.id for v in from_cache["page_of_two"]] == [ids["thanks"], ids["new"]]
        assert [v.id for v in from_cache["before_3"]] == [ids["question"]]
        assert [v.id for v in from_cache["after_1"]] == [ids["bob"], ids["thanks"],
                                                         ids["new"]]
        assert ids["old"] not in [v.id for v in from_cache["around_old"]]
        assert from_cache["older_than_3"] is True  # the question, not the hidden reply
        assert store.get_message(ids["old"]).deleted  # still cached, for sync
        exported = store.export([A])[0]["messages"]
        assert [m["id"] for m in exported] == [v.id for v in newest]
        text = conversations_markdown(store.export([A]))
        assert text.count("*(deleted)*") == 1  # bob's
        assert text.count("**assistant**") == 1 and "a tower with a light" in text
    finally:
        store.close()

"""A Matrix account's ids in the cache (docs/sync.md, rule M4; schema v5): kept across a
reopen, a ``410`` reset and the migration that adds them; the outbox untouched."""

from __future__ import annotations

import sqlite3
import uuid

from chat_tui.store import SCHEMA_VERSION, Cache

ME = "@alice:localhost"


def test_rule_m4_matrix_ids_survive_a_reopen_and_a_reset(tmp_path) -> None:
    path = tmp_path / "matrix.db"
    store = Cache(path, ME)
    store.open()
    store.save_remote_ids({"c1": ("!plain:localhost", False), "c2": ("!secret:localhost", True)},
                          {"m1": ("!plain:localhost", "$one", 1700000000000)})
    store.save_invites([{"room_id": "!new:localhost", "inviter": "@bob:localhost",
                         "name": "come in"}])
    store.close()
    store = Cache(path, ME)
    store.open()
    try:
        assert store.remote_event("m1") == ("!plain:localhost", "$one", 1700000000000)
        assert store.remote_message_id("$one") == "m1"
        assert store.remote_room("c1") == "!plain:localhost"
        assert store.remote_event("unknown") is None and store.remote_room("c9") is None
        assert store.encrypted_conversations() == {"c2"}
        # The same id learned again replaces, never duplicates; encryption is never
        # turned off again, so a room kept as encrypted stays so.
        store.save_remote_ids({"c1": ("!plain:localhost", True),
                               "c2": ("!secret:localhost", False)},
                              {"m1": ("!plain:localhost", "$one", 1700000000001)})
        assert store.encrypted_conversations() == {"c1", "c2"}
        assert store.remote_event("m1")[2] == 1700000000001
        # A reset (sync rule S6) drops cached server state, not the names of the
        # server's objects nor the invites.
        store.reset_cache()
        assert store.remote_message_id("$one") == "m1"
        assert store.invites() == [{"room_id": "!new:localhost",
                                    "inviter": "@bob:localhost", "name": "come in"}]
    finally:
        store.close()


def test_rule_m4_the_migration_to_v6_adds_the_id_tables_and_keeps_the_outbox(tmp_path) -> None:
    path = tmp_path / "old.db"
    store = Cache(path, ME)
    store.open()
    cid = store.enqueue_create_conversation(str(uuid.uuid4()), "kept", [], False)
    mid = store.enqueue_send(cid, "still queued")
    store.close()
    con = sqlite3.connect(path)
    con.execute("DROP TABLE remote_room")
    con.execute("DROP TABLE remote_event")
    con.execute("PRAGMA user_version = 5")  # the v5 shape: no Matrix ids yet
    outbox = con.execute("SELECT * FROM outbox ORDER BY id").fetchall()
    con.commit()
    con.close()
    store = Cache(path, ME)
    store.open()
    try:
        assert store.db.execute_sql("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert store.db.execute_sql("SELECT * FROM outbox ORDER BY id").fetchall() == outbox
        assert store.get_message(mid).body == "still queued"
        store.save_remote_ids({cid: ("!room:localhost", False)}, {})
        assert store.remote_room(cid) == "!room:localhost"
    finally:
        store.close()
    assert path.with_name(f"{path.name}.v5.bak").exists()


def test_rule_m5_the_cache_gives_back_a_rooms_highest_place_and_the_kept_places(
        tmp_path) -> None:
    import datetime as dt

    from chat_tui.wire.models import Conversation, Message, SyncConversation, SyncResponse

    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    store = Cache(tmp_path / "places.db", ME)
    store.open()
    try:
        assert store.remote_places("!room:localhost", ["$a"]) == (0, {})
        msgs = tuple(Message(id=f"m{n}", conversation_id="c1", author=ME, body=str(n),
                             created_at=when, edited_at=None, seq=seq, version=seq,
                             deleted=False) for n, seq in enumerate((500, 900, 700)))
        conv = Conversation(id="c1", title="t", creator=ME, members=(ME,), assistant=False,
                            created_at=when, updated_at=when, last_message=None,
                            unread_count=0)
        store.apply_sync(SyncResponse(cursor="s1", initial=True, read_markers=(),
                                      conversations=(SyncConversation(
                                          conversation=conv, messages=msgs, limited=False),)))
        store.save_remote_ids({"c1": ("!room:localhost", False)},
                              {"m0": ("!room:localhost", "$a", 500),
                               "m1": ("!room:localhost", "$b", 900)})
        assert store.remote_places("c1", ["$a", "$b", "$unknown"]) == (
            900, {"$a": 500, "$b": 900})
        assert store.remote_places("c2", []) == (0, {})
        # My send answered but not synced is kept with seq 0, "no place yet": its id is
        # known (rule M4), its provisional place is not read back as a place; its echo
        # gives it one.
        store.save_remote_ids({}, {"m2": ("!room:localhost", "$c", 0)})
        assert store.remote_event("m2") == ("!room:localhost", "$c", 0)
        assert store.remote_places("c1", ["$b", "$c"]) == (900, {"$b": 900})
        store.save_remote_ids({}, {"m2": ("!room:localhost", "$c", 901)})
        assert store.remote_places("c1", ["$c"]) == (900, {"$c": 901})
    finally:
        store.close()

"""A Matrix account end to end against a real Synapse: ``chat-tui login``, headless
engines of two chat-tui accounts and a plain Matrix client (raw HTTP) in one room, an
outage, a lost answer, ``kill -9`` of ``chat-tui sync``, edits and redactions from the
other side, a limited timeline filled by backfill, an encrypted room, invites, and the
ids kept in the cache (docs/sync.md, Matrix rules M1-M4)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from chat_tui.api.matrix import MESSAGE_KEY
from chat_tui.config import load_accounts
from chat_tui.store import StoreError
from chat_tui.sync.events import InvitesChanged
from tests.support.cli import FAST_ENV, cli
from tests.support.engine import drained
from tests.support.fault_proxy import FaultProxy
from tests.support.waiting import wait_for, wait_until

#: Seconds a flow waits for something to cross Synapse (a loaded 2-core machine).
SLOW = 60


def cached(engine, cid: str) -> list:
    """The conversation's cached messages, oldest first."""
    return engine.store.messages_before(cid, limit=5000)


def bodies(engine, cid: str) -> list[str]:
    return [m.body for m in cached(engine, cid)]


def conversation_of(engine, room: str) -> str | None:
    """The id of the cached conversation that is ``room`` (its room id, or the chat-tui id
    its create carried), or None."""
    for conv in engine.store.list_conversations():
        if conv.id == room or engine.store.remote_room(conv.id) == room:
            return conv.id
    return None


async def joined(engine, room: str) -> None:
    """Wait for the invite to ``room``, accept it, and wait for the room in the cache."""
    assert await wait_for(lambda: any(i["room_id"] == room for i in engine.invites()),
                          timeout=SLOW), engine.invites()
    await engine.answer_invite(room, True)
    assert await wait_for(lambda: conversation_of(engine, room), timeout=SLOW)


async def saw_before_then_stopped(matrix_engines, account, bob, room: str) -> None:
    """An engine of ``account`` joins ``room`` (bob's invite), caches bob's message
    "before" and stops: the account's cache then holds the room and its place in the
    timeline, and what bob sends next reaches the account's next engine."""
    first = matrix_engines.make(account)
    await first.start()
    await joined(first, room)
    bob.say(room, "before")
    assert await wait_for(lambda: bodies(first, room) == ["before"], timeout=SLOW)
    await first.stop()


async def room_created(engine, title: str, members=()) -> tuple[str, str]:
    """Create a conversation through the engine, wait until it is a room; returns its
    conversation id and room id."""
    cid = engine.create_conversation(title, list(members))
    assert await wait_for(lambda: drained(engine), timeout=SLOW)
    room = engine.store.remote_room(cid)
    assert room and room.startswith("!")
    return cid, room


def test_login_stores_a_matrix_account_with_its_own_cache(synapse, matrix_user) -> None:
    user_id, name, password = matrix_user()
    wrong = cli("login", synapse.url, "--username", name, "--password-stdin",
                stdin="not the password\n")
    assert wrong.returncode == 3 and "wrong username or password" in wrong.stderr
    assert load_accounts() == []
    done = cli("login", synapse.url, "--username", name, "--password-stdin",
               stdin=f"{password}\n")
    assert done.returncode == 0, done.stderr
    assert f"logged in as {user_id}" in done.stdout and "Matrix" in done.stdout
    [account] = load_accounts()
    assert (account.kind, account.username, account.user_id, account.server_url) == (
        "matrix", user_id, user_id, synapse.url)
    synced = cli("sync", "--once")
    assert synced.returncode == 0, synced.stderr
    assert account.db_path.exists() and account.db_path.name == f"{user_id}.db"
    status = json.loads(cli("status", "--json").stdout)
    assert status["connectivity"] == "online"
    assert status["account"]["cache"] == str(account.db_path)
    # The assistant's commands say why they are not there instead of failing oddly.
    models = cli("models")
    assert models.returncode != 0 and "Matrix account has no assistant" in models.stderr
    # A second Matrix user is a second account with a cache file of its own.
    other_id, other, other_pw = matrix_user()
    assert cli("login", synapse.url, "--username", other, "--password-stdin",
               stdin=f"{other_pw}\n").returncode == 0
    paths = {a.db_path for a in load_accounts()}
    assert len(paths) == 2
    assert cli("--user", other, "sync", "--once").returncode == 0
    assert all(p.exists() for p in paths)


async def test_two_accounts_and_a_plain_client_talk_both_ways(
        matrix_account, matrix_engines, matrix_user, raw) -> None:
    a, b = matrix_account(), matrix_account()
    carol_id, carol_name, carol_pw = matrix_user()
    carol = raw(carol_name, carol_pw)
    alice, bob = matrix_engines.make(a.account), matrix_engines.make(b.account)
    await alice.start()
    await bob.start()
    cid, room = await room_created(alice, "three of us", [b.user_id, carol_id])
    await joined(bob, room)
    carol.join(room)
    # bob's cache knows the room by the conversation id alice's create carried (M2).
    assert conversation_of(bob, room) == cid
    from_alice = alice.send(cid, "from alice")
    assert await wait_for(lambda: drained(alice), timeout=SLOW)
    from_bob = bob.send(cid, "from bob")
    assert await wait_for(lambda: drained(bob), timeout=SLOW)
    carol.say(room, "from carol")
    want = ["from alice", "from bob", "from carol"]
    for engine in (alice, bob):
        assert await wait_for(lambda e=engine: bodies(e, cid) == want, timeout=SLOW), \
            bodies(engine, cid)
    # Our own echo came back through /sync onto the same row (M1): the ids are the outbox's.
    assert [m.id for m in cached(alice, cid)][:2] == [from_alice, from_bob]
    assert [m.author for m in cached(bob, cid)] == [a.user_id, b.user_id, carol_id]
    # The plain client sees the same three, each once, with chat-tui's id in ours.
    assert carol.texts(room) == want
    keys = [e["content"].get(MESSAGE_KEY) for e in carol.events(room)
            if e["type"] == "m.room.message"]
    assert keys == [from_alice, from_bob, None]
    title = {c.id: c.title for c in bob.store.list_conversations()}[cid]
    assert title == "three of us"


async def test_send_while_synapse_is_stopped_all_delivered_in_order_exactly_once(
        synapse, matrix_account, matrix_engines, raw) -> None:
    a = matrix_account()
    alice = matrix_engines.make(a.account)
    await alice.start()
    cid, room = await room_created(alice, "outage")
    synapse.stop()
    try:
        sent = [f"while down {n}" for n in range(10)]
        for body in sent:
            alice.send(cid, body)
        assert await wait_for(lambda: alice.connectivity == "offline", timeout=SLOW)
        await asyncio.sleep(1.0)
        assert alice.store.outbox_counts()["queued"] == len(sent)
    finally:
        await asyncio.to_thread(synapse.start)
    assert await wait_for(lambda: drained(alice), timeout=SLOW)
    assert raw(a.localpart, a.password).texts(room) == sent
    assert await wait_for(lambda: bodies(alice, cid) == sent, timeout=SLOW)


async def test_rule_m1_a_lost_answer_to_a_send_makes_no_duplicate(
        synapse, matrix_account, matrix_engines, raw) -> None:
    with FaultProxy(synapse.url) as proxy:
        a = matrix_account(proxy.url)
        alice = matrix_engines.make(a.account)
        await alice.start()
        cid, room = await room_created(alice, "lossy")
        proxy.drop_response(method="PUT", path_contains="/send/m.room.message/")
        mid = alice.send(cid, "exactly once")
        assert await wait_for(lambda: drained(alice), timeout=SLOW)
        sends = proxy.requests("PUT", "/send/m.room.message/")
        assert sends[0][2] == "dropped" and len(sends) >= 2
    assert raw(a.localpart, a.password).texts(room) == ["exactly once"]
    assert await wait_for(lambda: [(m.id, m.body) for m in cached(alice, cid)]
                          == [(mid, "exactly once")], timeout=SLOW)


async def test_rule_m2_a_lost_answer_to_a_room_create_makes_one_room(
        synapse, matrix_account, matrix_engines, raw) -> None:
    with FaultProxy(synapse.url) as proxy:
        a = matrix_account(proxy.url)
        alice = matrix_engines.make(a.account)
        proxy.drop_response(method="POST", path_contains="/createRoom")
        await alice.start()
        cid, room = await room_created(alice, "created once")
        creates = proxy.requests("POST", "/createRoom")
        assert creates[0][2] == "dropped"
    assert raw(a.localpart, a.password).joined_rooms() == [room]
    assert [c.id for c in alice.store.list_conversations()] == [cid]


async def test_rule_3f_a_422_without_errcode_fails_the_send_and_keeps_its_text(
        synapse, matrix_account, matrix_engines, raw) -> None:
    """A proxy's 422 (no Matrix ``errcode``) to a send: the send is ``failed`` with the
    refusal as its reason, the message behind it ``blocked``, both texts kept, nothing on
    Synapse; discarding the first gives its text back and the second then goes out once."""
    with FaultProxy(synapse.url) as proxy:
        a = matrix_account(proxy.url)
        alice = matrix_engines.make(a.account)
        await alice.start()
        cid, room = await room_created(alice, "refused")
        rule = proxy.respond(422, method="PUT", path_contains="/send/m.room.message/",
                             count=None)
        first = alice.send(cid, "first, refused")
        second = alice.send(cid, "second, behind it")

        def states() -> dict:
            return {p.message_id: (p.state, p.reason) for p in alice.store.problems()}

        assert await wait_for(lambda: states().get(first, ("",))[0] == "failed",
                              timeout=SLOW), states()
        assert states()[second][0] == "blocked"
        assert "422" in states()[first][1]
        assert [r[2] for r in proxy.requests("PUT", "/send/m.room.message/")] == ["422"]
        assert {m.id: m.body for m in cached(alice, cid)} == {
            first: "first, refused", second: "second, behind it"}
        assert raw(a.localpart, a.password).texts(room) == []
        rule.count = 0
        assert alice.discard(first) == "first, refused"
        assert await wait_for(lambda: drained(alice) and not alice.store.problems(),
                              timeout=SLOW)
    assert raw(a.localpart, a.password).texts(room) == ["second, behind it"]
    assert await wait_for(lambda: bodies(alice, cid) == ["second, behind it"], timeout=SLOW)


def test_rule_4_kill_9_of_chat_tui_sync_mid_drain_loses_and_duplicates_nothing(
        synapse, matrix_user, raw) -> None:
    user_id, name, password = matrix_user()
    with FaultProxy(synapse.url) as proxy:
        done = cli("login", proxy.url, "--username", name, "--password-stdin",
                   stdin=f"{password}\n")
        assert done.returncode == 0, done.stderr
        [account] = load_accounts()
        assert account.server_url == proxy.url
        cid = cli("new", "crash test").stdout.strip()
        assert cli("sync", "--once").returncode == 0
        sent = [f"message {n}" for n in range(12)]
        for body in sent:
            assert cli("send", "-c", cid, body).returncode == 0
        # Five sends go through; the answer to the sixth is held back, so the process is
        # surely killed while that send is 'sending' and Synapse has committed it.
        proxy.hold(0, method="PUT", path_contains="/send/m.room.message/", count=5)
        proxy.hold(30, method="PUT", path_contains="/send/m.room.message/", count=1)
        proc = subprocess.Popen([sys.executable, "-m", "chat_tui.cli", "sync"],
                                env={**os.environ, **FAST_ENV},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            def in_flight() -> bool:
                con = sqlite3.connect(account.db_path)
                try:
                    return con.execute("SELECT count(*) FROM outbox WHERE state = 'sending'"
                                       ).fetchone()[0] == 1
                finally:
                    con.close()

            assert wait_until(lambda: len(proxy.requests("PUT", "/send/m.room.message/"))
                              >= 6 and in_flight(), timeout=SLOW)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        time.sleep(0.5)  # the held request reaches Synapse
        proxy.clear()
        again = cli("sync", "--once")
        assert again.returncode == 0, again.stderr
    alice = raw(name, password)
    [room] = alice.joined_rooms()
    assert alice.texts(room) == sent
    status = json.loads(cli("status", "--json", "--offline").stdout)
    assert status["outbox"]["queued"] == 0 and status["problems"] == []


async def test_an_edit_and_a_redaction_from_the_other_side_show(
        matrix_account, matrix_engines, matrix_user, raw) -> None:
    a = matrix_account()
    _, bob_name, bob_pw = matrix_user()
    bob = raw(bob_name, bob_pw)
    room = bob.create_room("edits", [a.user_id])
    alice = matrix_engines.make(a.account)
    await alice.start()
    await joined(alice, room)
    kept, gone = bob.say(room, "first draft"), bob.say(room, "to be removed")
    assert await wait_for(lambda: bodies(alice, room) == ["first draft", "to be removed"],
                          timeout=SLOW), bodies(alice, room)
    bob.edit(room, kept, "final text")
    bob.redact(room, gone)
    assert await wait_for(lambda: [(m.id, m.body, m.edited, m.deleted)
                                   for m in cached(alice, room)] == [
        (kept, "final text", True, False), (gone, "", False, True)], timeout=SLOW), \
        [(m.id, m.body, m.edited, m.deleted) for m in cached(alice, room)]


async def test_rule_s4_200_messages_while_offline_make_a_gap_that_backfill_fills(
        matrix_account, matrix_engines, matrix_user, raw) -> None:
    a = matrix_account()
    _, bob_name, bob_pw = matrix_user()
    bob = raw(bob_name, bob_pw)
    room = bob.create_room("busy", [a.user_id])
    await saw_before_then_stopped(matrix_engines, a.account, bob, room)
    offline = [f"offline {n}" for n in range(200)]
    for body in offline:
        bob.say(room, body)
    alice = matrix_engines.make(a.account)
    await alice.start()
    assert await wait_for(lambda: "offline 199" in bodies(alice, room), timeout=SLOW)
    # The delta came back limited: its newest events, and a gap before them.
    assert len(alice.store.gaps(room)) == 1
    shown = bodies(alice, room)
    assert shown[0] == "before" and "offline 0" not in shown and len(shown) < 201
    pages = 0
    while alice.store.gaps(room):
        pages += 1
        assert pages <= 10, "backfill does not close the gap"
        await alice.backfill(room)
    assert pages >= 2
    assert bodies(alice, room) == ["before", *offline]
    assert len({m.id for m in cached(alice, room)}) == 201


async def test_rule_m3_an_encrypted_room_is_shown_as_such_and_nothing_is_sent(
        matrix_account, matrix_engines, matrix_user, raw) -> None:
    a = matrix_account()
    _, bob_name, bob_pw = matrix_user()
    bob = raw(bob_name, bob_pw)
    room = bob.create_room("secret", [a.user_id], encrypted=True)
    alice = matrix_engines.make(a.account)
    await alice.start()
    await joined(alice, room)
    assert await wait_for(lambda: room in alice.encrypted_conversations(), timeout=SLOW)
    bob.send(room, {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEnACgAkLmt",
                    "sender_key": "c2VuZGVy", "session_id": "c2Vzc2lvbg",
                    "device_id": "BOBDEVICE"}, "m.room.encrypted")
    assert await wait_for(lambda: bodies(alice, room) == ["encrypted message"],
                          timeout=SLOW), bodies(alice, room)
    # Sending is refused before anything is queued, with a readable reason ...
    try:
        alice.send(room, "must not leave")
    except StoreError as exc:
        assert "encrypted" in str(exc)
    else:
        raise AssertionError("a send into an encrypted room was queued")
    assert alice.store.outbox_counts()["queued"] == 0
    # ... and a send queued before the room was known encrypted (a short command of an
    # older cache) fails at the drain with the reason, never reaching the room.
    alice.store.enqueue_send(room, "queued earlier")
    assert await wait_for(lambda: alice.store.problems(), timeout=SLOW)
    [problem] = alice.store.problems()
    assert problem.state == "failed" and "encrypted_room" in problem.reason
    assert [e for e in bob.events(room)
            if e["sender"] == a.user_id and e["type"].startswith("m.room.message")] == []


async def test_an_invite_is_shown_and_accepted_or_declined(
        matrix_account, matrix_engines, matrix_user, raw) -> None:
    a = matrix_account()
    bob_id, bob_name, bob_pw = matrix_user()
    bob = raw(bob_name, bob_pw)
    welcome = bob.create_room("accept me", [a.user_id])
    unwanted = bob.create_room("decline me", [a.user_id])
    alice = matrix_engines.make(a.account)
    events: list = []
    alice.subscribe(events.append)
    await alice.start()
    assert await wait_for(lambda: len(alice.invites()) == 2, timeout=SLOW)
    assert sorted((i["room_id"], i["inviter"], i["name"]) for i in alice.invites()) == sorted(
        [(welcome, bob_id, "accept me"), (unwanted, bob_id, "decline me")])
    assert any(isinstance(e, InvitesChanged) and len(e.invites) == 2 for e in events)
    await alice.answer_invite(welcome, True)
    await alice.answer_invite(unwanted, False)
    assert alice.invites() == []
    assert await wait_for(
        lambda: {c.id: c.title for c in alice.store.list_conversations()} == {
            welcome: "accept me"}, timeout=SLOW)
    assert raw(a.localpart, a.password).joined_rooms() == [welcome]


async def test_rule_m4_a_restarted_engine_knows_its_events_from_the_cache(
        matrix_account, matrix_engines, raw) -> None:
    a = matrix_account()
    first = matrix_engines.make(a.account)
    await first.start()
    cid, room = await room_created(first, "ids")
    mid = first.send(cid, "mine, then redacted elsewhere")
    assert await wait_for(lambda: drained(first), timeout=SLOW)
    kept = first.store.remote_event(mid)
    assert kept is not None and kept[:1] == (room,) and kept[1].startswith("$")
    await first.stop()
    # Another device of mine redacts it: the redacted event keeps no content, so only the
    # cache's map says that it is this message.
    raw(a.localpart, a.password).redact(room, kept[1])
    alice = matrix_engines.make(a.account)
    await alice.start()
    assert await wait_for(lambda: [(m.id, m.deleted) for m in cached(alice, cid)]
                          == [(mid, True)], timeout=SLOW), \
        [(m.id, m.deleted) for m in cached(alice, cid)]
    assert alice.store.remote_room(cid) == room


async def test_a_restarted_engine_keeps_its_rooms_conversation_ids_names_and_members(
        matrix_account, matrix_engines, matrix_user, raw) -> None:
    a = matrix_account()
    bob_id, bob_name, bob_pw = matrix_user()
    first = matrix_engines.make(a.account)
    await first.start()
    cid, room = await room_created(first, "kept name", [bob_id])
    raw(bob_name, bob_pw).join(room)
    assert await wait_for(lambda: set(first.store.get_conversation(cid).members)
                          == {a.user_id, bob_id}, timeout=SLOW)
    await first.stop()
    # A delta sync carries only what changed: the room's creation key, name and members
    # are not in it, yet the message from my other device lands in the same conversation.
    raw(a.localpart, a.password).say(room, "from my other device")
    alice = matrix_engines.make(a.account)
    await alice.start()
    assert await wait_for(lambda: bodies(alice, cid) == ["from my other device"],
                          timeout=SLOW), [(c.id, c.title) for c in alice.store.list_conversations()]
    [conv] = alice.store.list_conversations()
    assert (conv.id, conv.title, set(conv.members)) == (cid, "kept name", {a.user_id, bob_id})


async def test_pending_invites_survive_a_restart(matrix_account, matrix_engines, matrix_user,
                                                 raw) -> None:
    a = matrix_account()
    _, bob_name, bob_pw = matrix_user()
    room = raw(bob_name, bob_pw).create_room("later", [a.user_id])
    first = matrix_engines.make(a.account)
    await first.start()
    assert await wait_for(lambda: [i["room_id"] for i in first.invites()] == [room],
                          timeout=SLOW)
    await first.stop()
    # The next run's delta syncs do not name the invite again: it stays pending.
    alice = matrix_engines.make(a.account)
    await alice.start()
    synced = alice._puller.synced
    assert await wait_for(lambda: alice._puller.synced >= synced + 2, timeout=SLOW)
    assert [i["room_id"] for i in alice.invites()] == [room]
    await alice.answer_invite(room, True)
    assert await wait_for(lambda: conversation_of(alice, room), timeout=SLOW)
    assert alice.invites() == []

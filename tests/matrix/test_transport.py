"""The Matrix transport (``chat_tui.api.matrix.MatrixClient``) against a real Synapse:
login, rooms, both directions, exactly-once sends and creates (rules M1, M2), limited
timelines and backfill (S4, S5 on Matrix), edits, redactions, receipts, invites, encrypted
rooms (M3) and error classes."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import quote

import httpx
import pytest

from chat_tui.api.errors import (
    MalformedResponse,
    PermanentError,
    TransientError,
    Unauthorized,
)
from chat_tui.api.matrix import CREATE_KEY, ENCRYPTED_BODY, MESSAGE_KEY, MatrixClient
from tests.support.fault_proxy import FaultProxy
from tests.support.raw_matrix import RawMatrix
from tests.support.servers import find_free_port
from tests.support.synapse import Synapse


async def _room_events(synapse: Synapse, token: str, room: str) -> list[dict]:
    """Every event of ``room`` as a plain client reads it (raw HTTP), oldest first."""
    events: list[dict] = []
    params: dict = {"dir": "b", "limit": 500}
    async with httpx.AsyncClient(base_url=synapse.url, timeout=30,
                                 headers={"authorization": f"Bearer {token}"}) as http:
        while True:
            page = (await http.get(f"/_matrix/client/v3/rooms/{room}/messages",
                                   params=params)).raise_for_status().json()
            events.extend(page["chunk"])
            if not page["chunk"] or "end" not in page:
                return events[::-1]
            params["from"] = page["end"]


def _texts(events: list[dict]) -> list[str]:
    return [e["content"]["body"] for e in events
            if e["type"] == "m.room.message" and "body" in e.get("content", {})]


async def _pair(matrix_user, matrix_client) -> tuple[MatrixClient, MatrixClient, str, str]:
    """alice and bob, logged in, in a room alice created with bob invited and joined;
    returns both clients, the conversation id and the room id."""
    alice_id, alice_name, alice_pw = matrix_user()
    bob_id, bob_name, bob_pw = matrix_user()
    alice = await matrix_client(alice_name, alice_pw)
    bob = await matrix_client(bob_name, bob_pw)
    cid = str(uuid.uuid4())
    await alice.put_conversation(cid, "pair", [bob_id], False)
    room = alice._room_of[cid]
    await bob.sync(None)
    assert room in bob.invites
    await bob.join(room)
    return alice, bob, cid, room


async def test_login_health_and_wrong_password(synapse, matrix_user) -> None:
    user_id, name, password = matrix_user()
    async with MatrixClient(synapse.url) as client:
        assert await client.health() is True
        login = await client.login(name, password, "chat-tui test")
        assert (login.user_id, login.username) == (user_id, user_id)
        assert login.access_token not in repr(login)
        client.set_token(login.access_token)
        assert await client.whoami() == user_id
        with pytest.raises(Unauthorized):
            await client.login(name, "wrong", "chat-tui test")
        client.set_token("not-a-token")
        with pytest.raises(Unauthorized):
            await client.sync(None)


async def test_nothing_listening_is_transient_and_never_reached() -> None:
    async with MatrixClient(f"http://127.0.0.1:{find_free_port()}") as client:
        with pytest.raises(TransientError) as caught:
            await client.health()
    assert caught.value.reached_server is False


async def test_two_clients_talk_in_a_room_both_ways(synapse, matrix_user,
                                                   matrix_client) -> None:
    alice, bob, cid, room = await _pair(matrix_user, matrix_client)
    first = await alice.sync(None)
    cursor_a = first.cursor
    bob_first = await bob.sync(None)
    cursor_b = bob_first.cursor
    conversation = next(c for c in bob_first.conversations if c.conversation.id == cid)
    assert conversation.conversation.title == "pair"
    assert set(conversation.conversation.members) == {alice.user_id, bob.user_id}

    mid_a, mid_b = str(uuid.uuid4()), str(uuid.uuid4())
    sent = await alice.put_message(cid, mid_a, "hello bob")
    assert (sent.id, sent.conversation_id, sent.author, sent.body) == (
        mid_a, cid, alice.user_id, "hello bob")
    delta = await bob.sync(cursor_b, timeout=5)
    got = [m for c in delta.conversations for m in c.messages]
    assert [(m.id, m.author, m.body) for m in got] == [(mid_a, alice.user_id, "hello bob")]

    await bob.put_message(cid, mid_b, "hello alice")
    delta = await alice.sync(cursor_a, timeout=5)
    got = [m for c in delta.conversations for m in c.messages]
    # alice's own echo comes back under its outbox id (one row), then bob's message.
    assert [(m.id, m.body) for m in got] == [(mid_a, "hello bob"), (mid_b, "hello alice")]
    assert got[0].seq <= got[1].seq

    # A plain Matrix client (raw HTTP) reads the same two messages, with our id in them.
    events = await _room_events(synapse, alice._token, room)
    mine = [e for e in events if e["type"] == "m.room.message"]
    assert [(e["content"]["body"], e["content"][MESSAGE_KEY]) for e in mine] == [
        ("hello bob", mid_a), ("hello alice", mid_b)]


async def test_rule_m1_a_resent_txn_id_makes_no_duplicate(synapse, matrix_user,
                                                          matrix_client) -> None:
    alice, bob, cid, room = await _pair(matrix_user, matrix_client)
    mid = str(uuid.uuid4())
    with FaultProxy(synapse.url) as proxy:
        lossy = MatrixClient(proxy.url, alice._token, user_id=alice.user_id)
        try:
            proxy.drop_response(method="PUT", path_contains="/send/m.room.message/")
            with pytest.raises(TransientError):
                await lossy.put_message(cid, mid, "once")
            assert proxy.requests("PUT", "/send/")[0][2] == "dropped"
            again = await lossy.put_message(cid, mid, "once")
        finally:
            await lossy.aclose()
    assert again.id == mid
    assert _texts(await _room_events(synapse, alice._token, room)).count("once") == 1


async def test_rule_m1_a_send_under_another_login_is_looked_up_first(
        synapse, matrix_user, matrix_client) -> None:
    alice_id, name, password = matrix_user()
    alice = await matrix_client(name, password)
    cid = str(uuid.uuid4())
    await alice.put_conversation(cid, "m1", [], False)
    room = alice._room_of[cid]
    mid = str(uuid.uuid4())
    await alice.put_message(cid, mid, "first login")
    # The homeserver remembers transaction ids per access token: a new login that sends
    # the same txn id makes a second event (the fact rule M1 guards against) ...
    second = await matrix_client(name, password)
    other_mid = str(uuid.uuid4())
    await alice.put_message(cid, other_mid, "probe")
    await second.put_message(cid, other_mid, "probe")
    assert _texts(await _room_events(synapse, alice._token, room)).count("probe") == 2
    # ... so a send that may have reached the server under another login is looked up
    # by its content key first, and the one found is the answer.
    third = await matrix_client(name, password)
    found = await third.put_message(cid, mid, "first login", check_first=True)
    assert (found.id, found.body, found.author) == (mid, "first login", alice_id)
    assert _texts(await _room_events(synapse, alice._token, room)).count("first login") == 1


async def test_rule_m2_a_lost_room_create_is_found_by_its_key(synapse, matrix_user,
                                                             matrix_client, raw) -> None:
    alice_id, name, password = matrix_user()
    bob_id, _, _ = matrix_user()
    alice = await matrix_client(name, password)
    cid = str(uuid.uuid4())
    with FaultProxy(synapse.url) as proxy:
        lossy = MatrixClient(proxy.url, alice._token, user_id=alice_id)
        try:
            proxy.drop_response(method="POST", path_contains="/createRoom")
            with pytest.raises(TransientError):
                await lossy.put_conversation(cid, "lost answer", [bob_id], False)
            assert proxy.requests("POST", "/createRoom")[0][2] == "dropped"
        finally:
            await lossy.aclose()
    # A fresh client (nothing in memory, as after a restart) retries the create.
    retry = await matrix_client(name, password)
    conversation = await retry.put_conversation(cid, "lost answer", [bob_id], False)
    assert conversation.id == cid and conversation.title == "lost answer"
    assert _creation_keys(raw(name, password)) == {retry._room_of[cid]: cid}
    # And a repeat with the answer received is the same room too.
    assert (await retry.put_conversation(cid, "lost answer", [bob_id], False)).id == cid


def _creation_keys(client: RawMatrix) -> dict[str, object]:
    """Each room ``client``'s user has joined, with the chat-tui id its ``m.room.create``
    carries (None when it carries none)."""
    return {room: (client.state(room, "m.room.create") or {}).get(CREATE_KEY)
            for room in client.joined_rooms()}


async def _create_until_answered(client: MatrixClient, cid: str, title: str,
                                 members: list[str]) -> object:
    """``put_conversation`` retried after each transient error, as the outbox does."""
    for _ in range(100):
        try:
            return await client.put_conversation(cid, title, members, False)
        except TransientError:
            await asyncio.sleep(0.2)
    raise AssertionError(f"the create of {cid} never answered")


async def test_rule_m2_two_overlapping_creates_of_one_conversation_make_one_room(
        synapse, matrix_user, matrix_client, raw) -> None:
    """Two attempts of one create under way at once (the retry of an attempt the client
    gave up on while the homeserver still builds its room) make one room, and both answer
    it: the homeserver gives the creation alias to one of them."""
    alice_id, name, password = matrix_user()
    bob_id, bob_name, bob_password = matrix_user()
    first = await matrix_client(name, password)
    second = MatrixClient(synapse.url, first._token, user_id=alice_id)
    cid = str(uuid.uuid4())
    try:
        answers = await asyncio.gather(
            _create_until_answered(first, cid, "overlap", [bob_id]),
            _create_until_answered(second, cid, "overlap", [bob_id]))
        room = second._room_of[cid]
    finally:
        await second.aclose()
    assert [a.id for a in answers] == [cid, cid]
    assert _creation_keys(raw(name, password)) == {room: cid}
    assert first._room_of[cid] == room
    bob = await matrix_client(bob_name, bob_password)
    await bob.sync(None)
    assert list(bob.invites) == [room]


async def test_rule_m2_a_create_the_homeserver_cut_off_is_made_again(
        synapse, matrix_user, matrix_client, raw) -> None:
    """A homeserver killed between taking a create's alias and writing the room's first
    event leaves the alias pointing at a room nobody can read. For ``create_grace``
    seconds that is a room still being built (transient); after it, the alias is taken
    back and the room is created."""
    from chat_tui.api.matrix.events import creation_alias

    alice_id, name, password = matrix_user()
    alice = await matrix_client(name, password)
    cid = str(uuid.uuid4())
    alias = creation_alias(cid, alice_id.split(":", 1)[1])
    cut_off = f"!cutoff{uuid.uuid4().hex}:{alice_id.split(':', 1)[1]}"
    synapse.leave_cut_off_create(alias, cut_off, alice_id)
    alice.create_grace = 1.0
    with pytest.raises(TransientError, match="still being created"):
        await alice.put_conversation(cid, "cut off", [], False)
    await asyncio.sleep(1.2)
    conversation = await alice.put_conversation(cid, "cut off", [], False)
    room = alice._room_of[cid]
    assert (conversation.id, conversation.title) == (cid, "cut off") and room != cut_off
    plain = raw(name, password)
    assert _creation_keys(plain) == {room: cid}
    resolved = plain.http.get(f"/_matrix/client/v3/directory/room/{quote(alias)}")
    assert resolved.json()["room_id"] == room


async def test_rule_s4_limited_timeline_and_backfill_fill_the_gap_exactly(
        matrix_user, matrix_client) -> None:
    alice, bob, cid, room = await _pair(matrix_user, matrix_client)
    before = str(uuid.uuid4())
    await alice.put_message(cid, before, "before the gap")
    cursor = (await bob.sync(None)).cursor
    held = {m.id for c in (await bob.sync(cursor)).conversations for m in c.messages}
    # bob is "offline" (no sync) while alice sends 200 messages.
    sent = []
    for n in range(200):
        mid = str(uuid.uuid4())
        await alice.put_message(cid, mid, f"offline {n}")
        sent.append(mid)
    delta = await bob.sync(cursor)
    item = next(c for c in delta.conversations if c.conversation.id == cid)
    assert item.limited is True
    assert [m.id for m in item.messages] == sent[-50:]
    # Backfill page by page before the oldest message held, until a held one comes.
    got = [m.id for m in item.messages]
    oldest = got[0]
    for _ in range(20):
        page = await bob.messages(cid, before=oldest, limit=50)
        ids = [m.id for m in page.messages]
        got = ids + got
        if before in ids or not page.has_more:
            break
        oldest = ids[0]
    after_gap = got[got.index(before) + 1:]
    assert after_gap == sent  # every message once, in order, nothing else
    assert before in held or before in got


async def test_an_edit_and_a_redaction_from_the_other_side_arrive_through_sync(
        matrix_user, matrix_client) -> None:
    alice, bob, cid, room = await _pair(matrix_user, matrix_client)
    keep, drop = str(uuid.uuid4()), str(uuid.uuid4())
    sent = await alice.put_message(cid, keep, "draft text")
    await alice.put_message(cid, drop, "oops")
    cursor = (await bob.sync(None)).cursor
    edited = await alice.patch_message(keep, "final text", sent.version, conversation_id=cid)
    assert (edited.id, edited.body) == (keep, "final text") and edited.version > sent.version
    gone = await alice.delete_message(drop, conversation_id=cid)
    assert gone.deleted and gone.body == "" and gone.id == drop
    delta = await bob.sync(cursor, timeout=5)
    got = {m.id: m for c in delta.conversations for m in c.messages}
    assert got[keep].body == "final text" and got[keep].edited_at is not None
    assert got[keep].version > sent.version
    assert got[drop].deleted and got[drop].body == ""
    # A fresh client backfilling sees the edit bundled and the redaction applied.
    page = await bob.messages(cid)
    shown = {m.id: m for m in page.messages}
    assert shown[keep].body == "final text"
    assert any(m.deleted for m in page.messages)


async def test_read_receipts_become_read_markers(matrix_user, matrix_client) -> None:
    alice, bob, cid, room = await _pair(matrix_user, matrix_client)
    mid = str(uuid.uuid4())
    await alice.put_message(cid, mid, "read me")
    cursor = (await alice.sync(None)).cursor
    await bob.sync(None)
    marker = await bob.mark_read(cid, mid)
    assert (marker.conversation_id, marker.username, marker.message_id) == (
        cid, bob.user_id, mid)
    delta = await alice.sync(cursor, timeout=5)
    assert any((m.username, m.message_id) == (bob.user_id, mid) for m in delta.read_markers)


async def test_formatted_body_is_never_read(synapse, matrix_user, matrix_client) -> None:
    alice, bob, cid, room = await _pair(matrix_user, matrix_client)
    cursor = (await bob.sync(None)).cursor
    async with httpx.AsyncClient(base_url=synapse.url, timeout=10) as http:
        (await http.put(f"/_matrix/client/v3/rooms/{room}/send/m.room.message/raw1",
                        headers={"authorization": f"Bearer {alice._token}"},
                        json={"msgtype": "m.text", "body": "[b]plain[/b] *x*",
                              "format": "org.matrix.custom.html",
                              "formatted_body": "<b>bold</b>"})).raise_for_status()
    delta = await bob.sync(cursor, timeout=5)
    bodies = [m.body for c in delta.conversations for m in c.messages]
    assert bodies == ["[b]plain[/b] *x*"]


async def test_an_invite_is_shown_accepted_and_another_declined(matrix_user,
                                                                matrix_client) -> None:
    alice_id, alice_name, alice_pw = matrix_user()
    bob_id, bob_name, bob_pw = matrix_user()
    alice = await matrix_client(alice_name, alice_pw)
    bob = await matrix_client(bob_name, bob_pw)
    yes, no = str(uuid.uuid4()), str(uuid.uuid4())
    await alice.put_conversation(yes, "come in", [bob_id], False)
    await alice.put_conversation(no, "stay out", [bob_id], False)
    first = await bob.sync(None)
    assert first.conversations == ()
    invites = {i.name: i for i in bob.invites.values()}
    assert set(invites) == {"come in", "stay out"}
    assert invites["come in"].inviter == alice_id
    await bob.join(invites["come in"].room_id)
    await bob.decline(invites["stay out"].room_id)
    delta = await bob.sync(first.cursor)
    titles = {c.conversation.id: c.conversation.title for c in delta.conversations
              if not c.removed}
    assert titles == {yes: "come in"}
    assert bob.invites == {}


async def test_rule_m3_an_encrypted_room_is_marked_and_its_events_shown_as_such(
        synapse, matrix_user, matrix_client) -> None:
    alice_id, alice_name, alice_pw = matrix_user()
    bob_id, bob_name, bob_pw = matrix_user()
    alice = await matrix_client(alice_name, alice_pw)
    bob = await matrix_client(bob_name, bob_pw)
    headers = {"authorization": f"Bearer {alice._token}"}
    async with httpx.AsyncClient(base_url=synapse.url, timeout=10, headers=headers) as http:
        room = (await http.post("/_matrix/client/v3/createRoom", json={
            "name": "secret", "invite": [bob_id], "initial_state": [{
                "type": "m.room.encryption", "state_key": "",
                "content": {"algorithm": "m.megolm.v1.aes-sha2"}}]})).json()["room_id"]
        await bob.join(room)
        (await http.put(f"/_matrix/client/v3/rooms/{room}/send/m.room.encrypted/e1", json={
            "algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEn...",
            "sender_key": "k", "device_id": "D", "session_id": "s"})).raise_for_status()
    answer = await bob.sync(None)
    item = next(c for c in answer.conversations if c.conversation.id == room)
    assert bob.encrypted(room) is True
    assert item.conversation.title == "secret"
    assert [m.body for m in item.messages] == [ENCRYPTED_BODY]
    assert not any(bob.encrypted(c.conversation.id) for c in answer.conversations
                   if c.conversation.id != room)
    with pytest.raises(PermanentError):
        await bob.put_message(room, str(uuid.uuid4()), "plain text into an encrypted room")


async def test_m_limit_exceeded_is_transient_with_retry_after(synapse, matrix_user,
                                                              matrix_client) -> None:
    alice, bob, cid, room = await _pair(matrix_user, matrix_client)
    body = b'{"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many Requests", "retry_after_ms": 2500}'
    with FaultProxy(synapse.url) as proxy:
        client = MatrixClient(proxy.url, alice._token, user_id=alice.user_id)
        try:
            proxy.respond(429, body=body, path_contains="/send/")
            with pytest.raises(TransientError) as caught:
                await client.put_message(cid, str(uuid.uuid4()), "slow down")
            proxy.respond(503, path_contains="/sync")
            with pytest.raises(TransientError):
                await client.sync(None)
            with pytest.raises(PermanentError) as refused:
                await client.put_message("!nowhere:localhost", str(uuid.uuid4()), "x")
        finally:
            await client.aclose()
    assert (caught.value.code, caught.value.retry_after) == ("M_LIMIT_EXCEEDED", 2.5)
    assert refused.value.status == 403


async def test_rule_3b_a_4xx_without_errcode_is_permanent_a_2xx_without_event_id_malformed(
        synapse, matrix_user, matrix_client) -> None:
    """A 422 with a body that is no Matrix error (the proxy's, chat-tui shaped) is a
    permanent refusal that names what the body said; a 200 without ``event_id`` is a malformed, transient answer
    (a KeyError would crash the send instead); neither reached Synapse, and the send
    then goes through once."""
    alice, bob, cid, room = await _pair(matrix_user, matrix_client)
    mid = str(uuid.uuid4())
    with FaultProxy(synapse.url) as proxy:
        client = MatrixClient(proxy.url, alice._token, user_id=alice.user_id)
        try:
            proxy.respond(422, method="PUT", path_contains=f"/send/m.room.message/{mid}")
            with pytest.raises(PermanentError) as refused:
                await client.put_message(cid, mid, "kept")
            for body in (b"{}", b'{"event_id": ""}', b'{"event_id": 7}'):
                proxy.respond(200, method="PUT", path_contains=f"/send/m.room.message/{mid}",
                              body=body)
                with pytest.raises(MalformedResponse) as malformed:
                    await client.put_message(cid, mid, "kept", attempted=True)
                assert "event_id" in malformed.value.reason
                assert malformed.value.status == 200
            proxy.respond(200, method="POST", path_contains="/createRoom", body=b"{}")
            with pytest.raises(MalformedResponse):
                await client.put_conversation(str(uuid.uuid4()), "no answer", [], False)
            sent = await client.put_message(cid, mid, "kept", attempted=True)
        finally:
            await client.aclose()
    assert (refused.value.status, refused.value.code) == (422, "")
    assert "injected by the test proxy" in refused.value.reason
    assert isinstance(malformed.value, TransientError)
    assert sent.id == mid and sent.body == "kept"
    assert _texts(await _room_events(synapse, alice._token, room)).count("kept") == 1


async def test_a_room_without_a_name_is_titled_by_its_members(synapse, matrix_user,
                                                              matrix_client) -> None:
    alice_id, alice_name, alice_pw = matrix_user()
    bob_id, bob_name, bob_pw = matrix_user()
    alice = await matrix_client(alice_name, alice_pw)
    bob = await matrix_client(bob_name, bob_pw)
    headers = {"authorization": f"Bearer {alice._token}"}
    async with httpx.AsyncClient(base_url=synapse.url, timeout=10, headers=headers) as http:
        (await http.put(f"/_matrix/client/v3/profile/{alice_id}/displayname",
                        json={"displayname": "Alice A."})).raise_for_status()
        room = (await http.post("/_matrix/client/v3/createRoom",
                                json={"invite": [bob_id]})).json()["room_id"]
    await bob.join(room)
    answer = await bob.sync(None)
    item = next(c for c in answer.conversations if c.conversation.id == room)
    assert item.conversation.title == "Alice A."
    assert item.conversation.creator == alice_id
    assert set(item.conversation.members) == {alice_id, bob_id}

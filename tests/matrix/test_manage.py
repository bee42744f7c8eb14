"""Managing a Matrix conversation through the outbox against a real Synapse (docs/sync.md,
rules 9 and 11 on Matrix): rename (``m.room.name``), leave (leave and forget), invite and
kick, each with its answer lost on purpose once, so the retry must change nothing more."""

from __future__ import annotations

from tests.matrix.test_flows import SLOW, room_created
from tests.support.engine import drained
from tests.support.fault_proxy import FaultProxy
from tests.support.waiting import wait_for


async def started_alice(proxy: FaultProxy, matrix_account, matrix_engines) -> tuple:
    """alice's new account, reached through ``proxy``, and her started engine; returns
    ``(account, engine)``."""
    a = matrix_account(proxy.url)
    alice = matrix_engines.make(a.account)
    await alice.start()
    return a, alice


async def joined_by_bob(alice, matrix_user, raw, title: str) -> tuple:
    """A new user bob, the room ``title`` alice's engine creates with him, and bob joined
    to it; returns ``(bob's raw client, conversation id, room id)``."""
    _, bob_name, bob_pw = matrix_user()
    bob = raw(bob_name, bob_pw)
    cid, room = await room_created(alice, title, [bob.user_id])
    bob.join(room)
    return bob, cid, room


async def test_rule_9_a_matrix_rename_is_the_rooms_name_once_after_a_lost_answer(
        synapse, matrix_account, matrix_engines, matrix_user, raw) -> None:
    with FaultProxy(synapse.url) as proxy:
        a, alice = await started_alice(proxy, matrix_account, matrix_engines)
        bob, cid, room = await joined_by_bob(alice, matrix_user, raw, "old name")
        proxy.drop_response(method="PUT", path_contains="/state/m.room.name/")
        assert alice.update_conversation(cid, title="new name")
        assert alice.store.get_conversation(cid).title == "new name"  # shown at once
        assert await wait_for(lambda: drained(alice), timeout=SLOW)
        puts = proxy.requests("PUT", "/state/m.room.name/")
        assert puts[0][2] == "dropped" and len(puts) >= 2
    assert bob.state(room, "m.room.name") == {"name": "new name"}
    names = [e for e in bob.events(room) if e["type"] == "m.room.name"]
    assert [e["content"]["name"] for e in names] == ["old name", "new name"]
    assert alice.store.get_conversation(cid).title == "new name"
    assert await wait_for(lambda: {c.id: c.title for c in alice.store.list_conversations()}
                          == {cid: "new name"}, timeout=SLOW)


async def test_rule_11_leaving_a_matrix_room_leaves_and_forgets_it_after_a_lost_answer(
        synapse, matrix_account, matrix_engines, matrix_user, raw) -> None:
    with FaultProxy(synapse.url) as proxy:
        a, alice = await started_alice(proxy, matrix_account, matrix_engines)
        bob, cid, room = await joined_by_bob(alice, matrix_user, raw, "goodbye")
        alice.send(cid, "before I go")
        assert await wait_for(lambda: drained(alice), timeout=SLOW)
        proxy.drop_response(method="POST", path_contains="/leave")
        alice.leave_conversation(cid)
        assert alice.store.list_conversations() == []  # gone from my list at once
        assert await wait_for(lambda: drained(alice), timeout=SLOW)
        leaves = proxy.requests("POST", "/leave")
        assert leaves[0][2] == "dropped" and len(leaves) >= 2
        assert proxy.requests("POST", "/forget")
        assert bob.membership(room, a.user_id) == "leave"
        assert raw(a.localpart, a.password).joined_rooms() == []
        assert alice.store.messages_before(cid, limit=10) == []
        assert alice.store.problems() == []
        # Nothing brings it back: later syncs keep it out of the list.
        synced = alice._puller.synced
        bob.say(room, "still here")
        assert await wait_for(lambda: alice._puller.synced >= synced + 2, timeout=SLOW)
        assert alice.store.list_conversations() == []


async def test_rule_11_invite_and_kick_on_matrix_each_once_after_a_lost_answer(
        synapse, matrix_account, matrix_engines, matrix_user, raw) -> None:
    bob_id, bob_name, bob_pw = matrix_user()
    with FaultProxy(synapse.url) as proxy:
        a, alice = await started_alice(proxy, matrix_account, matrix_engines)
        cid, room = await room_created(alice, "members")
        proxy.drop_response(method="POST", path_contains="/invite")
        assert alice.add_member(cid, bob_name)  # a localpart of my homeserver
        assert bob_id in alice.store.get_conversation(cid).members
        assert await wait_for(lambda: drained(alice), timeout=SLOW)
        invites = proxy.requests("POST", "/invite")
        assert invites[0][2] == "dropped" and len(invites) >= 2
        me = raw(a.localpart, a.password)  # a plain client of mine beside the engine
        assert me.membership(room, bob_id) == "invite"
        raw(bob_name, bob_pw).join(room)
        assert await wait_for(lambda: bob_id in alice.store.get_conversation(cid).members,
                              timeout=SLOW)
        proxy.drop_response(method="POST", path_contains="/kick")
        assert alice.remove_member(cid, bob_id)
        assert bob_id not in alice.store.get_conversation(cid).members
        assert await wait_for(lambda: drained(alice), timeout=SLOW)
        kicks = proxy.requests("POST", "/kick")
        assert kicks[0][2] == "dropped" and len(kicks) >= 2
        assert me.membership(room, bob_id) == "leave"
        members = [e for e in me.events(room) if e["type"] == "m.room.member"
                   and e["state_key"] == bob_id]
        assert [e["content"]["membership"] for e in members] == ["invite", "join", "leave"]
        assert alice.store.problems() == []
        synced = alice._puller.synced
        assert await wait_for(lambda: alice._puller.synced >= synced + 2, timeout=SLOW)
        assert set(alice.store.get_conversation(cid).members) == {a.user_id}

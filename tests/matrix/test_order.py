"""Rule M5 against a real Synapse: a Matrix message's place in the cache is the room
timeline's order, not its ``origin_server_ts`` (the sending server's clock claim). The
timestamps are made to disagree with the order honestly: an application service may claim
an event's timestamp (``/send?ts=``), as a bridge does when it relays old messages."""

from __future__ import annotations

import time
from contextlib import asynccontextmanager

from tests.matrix.test_flows import SLOW, bodies, cached, joined, saw_before_then_stopped
from tests.support.engine import drained
from tests.support.fault_proxy import FaultProxy
from tests.support.raw_matrix import RawMatrix
from tests.support.waiting import wait_for


@asynccontextmanager
async def bob_first_while_a_sync_is_held(synapse, matrix_account, matrix_engines,
                                         matrix_user, raw, title: str, hold: float):
    """alice's engine (her account reached through a :class:`FaultProxy`) joined to bob's
    new room ``title``; then the next long-poll's answer is held back ``hold`` seconds
    and, once that poll is under way, bob says "bob first": it reaches the homeserver
    before anything alice sends next, but alice learns of it only when the held poll
    answers. Yields ``(proxy, a, bob, room, alice)``: ``a`` her account, ``bob`` his
    raw client."""
    _, bob_name, bob_pw = matrix_user()
    bob = raw(bob_name, bob_pw)
    with FaultProxy(synapse.url) as proxy:
        a = matrix_account(proxy.url)
        room = bob.create_room(title, [a.user_id])
        alice = matrix_engines.make(a.account)
        await alice.start()
        await joined(alice, room)
        proxy.hold(hold, method="GET", path_contains="/sync", count=1)
        polls = len(proxy.requests("GET", "/sync"))
        assert await wait_for(lambda: len(proxy.requests("GET", "/sync")) > polls,
                              timeout=SLOW)
        bob.say(room, "bob first")
        yield proxy, a, bob, room, alice


async def shown_in_the_rooms_order(engine, room: str, mine: str) -> None:
    """The cache of ``engine`` comes to show ``room`` as bob's "bob first", then alice's
    message reading ``mine``, the room's order; their ``seq`` values rise and differ."""
    assert await wait_for(lambda: bodies(engine, room) == ["bob first", mine],
                          timeout=SLOW), bodies(engine, room)
    seqs = [m.seq for m in cached(engine, room)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 2


@asynccontextmanager
async def relayed_room(synapse, matrix_account, matrix_engines, matrix_user, raw,
                       title: str):
    """bob's new room ``title`` with alice and a bridge (the application service, which
    may claim its events' timestamps) in it; alice's engine saw bob's "before" and
    stopped. Yields ``(a, bob, bridge, room)``: ``a`` alice's account, ``bob`` his raw
    client, ``bridge`` the application service's; the bridge is closed after."""
    a = matrix_account()
    _, bob_name, bob_pw = matrix_user()
    bob = raw(bob_name, bob_pw)
    bridge = RawMatrix.appservice(synapse.url, synapse.as_user, synapse.as_token)
    try:
        room = bob.create_room(title, [a.user_id, bridge.user_id])
        bridge.join(room)
        await saw_before_then_stopped(matrix_engines, a.account, bob, room)
        yield a, bob, bridge, room
    finally:
        bridge.close()


def now_ms() -> int:
    return int(time.time() * 1000)


async def test_rule_m5_a_sync_batch_keeps_the_timeline_order_whatever_the_timestamps(
        synapse, matrix_account, matrix_engines, matrix_user, raw) -> None:
    async with relayed_room(synapse, matrix_account, matrix_engines, matrix_user, raw,
                            "clocks") as (a, bob, bridge, room):
        # One batch: a timestamp an hour ahead, a true one, one an hour back, and two equal.
        t = now_ms()
        bridge.say_at(room, "one", t + 3_600_000)
        bob.say(room, "two")
        bridge.say_at(room, "three", t - 3_600_000)
        bridge.say_at(room, "four", t - 7_200_000)
        bridge.say_at(room, "five", t - 7_200_000)
        want = ["before", "one", "two", "three", "four", "five"]
        assert [e["content"]["body"] for e in bob.events(room)
                if e["type"] == "m.room.message"] == want
        alice = matrix_engines.make(a.account)
        await alice.start()
        assert await wait_for(lambda: len(bodies(alice, room)) == 6, timeout=SLOW)
        assert bodies(alice, room) == want
        # A restarted engine's next batch goes after all of them (its place is read back
        # from the cache), even with a timestamp older than every one of them.
        await alice.stop()
        bridge.say_at(room, "six", t - 9_000_000)
        again = matrix_engines.make(a.account)
        await again.start()
        assert await wait_for(lambda: len(bodies(again, room)) == 7, timeout=SLOW)
        assert bodies(again, room) == [*want, "six"]
        seqs = [m.seq for m in cached(again, room)]
        assert seqs == sorted(seqs) and len(set(seqs)) == 7


async def test_rule_m5_backfilled_pages_slot_before_what_is_there(
        synapse, matrix_account, matrix_engines, matrix_user, raw) -> None:
    async with relayed_room(synapse, matrix_account, matrix_engines, matrix_user, raw,
                            "history") as (a, bob, bridge, room):
        # 80 relayed messages whose timestamps run backwards (each a second older than the
        # one before it, all still after "before"): the sync returns the newest 50 as a
        # limited timeline, backfill brings the rest.
        t = now_ms() + 3_600_000
        relayed = [f"relayed {n}" for n in range(80)]
        for n, body in enumerate(relayed):
            bridge.say_at(room, body, t - n * 1000)
        alice = matrix_engines.make(a.account)
        await alice.start()
        assert await wait_for(lambda: "relayed 79" in bodies(alice, room), timeout=SLOW)
        assert len(alice.store.gaps(room)) == 1
        shown = bodies(alice, room)
        assert shown[0] == "before" and shown[-1] == "relayed 79"
        assert shown[1:] == relayed[-(len(shown) - 1):]
        pages = 0
        while alice.store.gaps(room):
            pages += 1
            assert pages <= 10, "backfill does not close the gap"
            await alice.backfill(room)
        assert bodies(alice, room) == ["before", *relayed]
        assert len({m.id for m in cached(alice, room)}) == 81


async def test_rule_m5_my_send_answered_before_an_earlier_event_is_synced_goes_after_it(
        synapse, matrix_account, matrix_engines, matrix_user, raw) -> None:
    # The next long-poll's answer is held back: bob's message reaches the homeserver
    # first, but alice learns of it only after her own send is answered.
    async with bob_first_while_a_sync_is_held(
            synapse, matrix_account, matrix_engines, matrix_user, raw, "race", 4) as (
            proxy, a, bob, room, alice):
        alice.send(room, "alice second")
        assert await wait_for(lambda: drained(alice), timeout=SLOW)
        assert bob.texts(room) == ["bob first", "alice second"]
        assert await wait_for(lambda: bodies(alice, room) == ["bob first", "alice second"],
                              timeout=SLOW), bodies(alice, room)


async def test_rule_m5_a_provisional_place_kept_over_a_restart_still_yields_to_the_echo(
        synapse, matrix_account, matrix_engines, matrix_user, raw) -> None:
    # Bob's message reaches the homeserver first; the poll that brings it is held
    # back until after alice's engine stops, so her send is answered (a provisional
    # place, kept in the cache) and its echo comes only to the next engine.
    async with bob_first_while_a_sync_is_held(
            synapse, matrix_account, matrix_engines, matrix_user, raw, "restart", 30) as (
            proxy, a, bob, room, alice):
        alice.send(room, "alice second")
        assert await wait_for(lambda: drained(alice), timeout=SLOW)
        assert bodies(alice, room) == ["alice second"]
        await alice.stop()
        assert bob.texts(room) == ["bob first", "alice second"]
        again = matrix_engines.make(a.account)
        await again.start()
        await shown_in_the_rooms_order(again, room, "alice second")


async def test_rule_m5_a_retried_send_read_back_still_yields_to_the_echo(
        synapse, matrix_account, matrix_engines, matrix_user, raw) -> None:
    # Bob's message reaches the homeserver first and its poll is held back; alice's
    # send loses its first answer, so the retry reads its event back (rule M1)
    # before alice learns of bob's message.
    async with bob_first_while_a_sync_is_held(
            synapse, matrix_account, matrix_engines, matrix_user, raw, "retried", 10) as (
            proxy, a, bob, room, alice):
        proxy.drop_response(method="PUT", path_contains="/send/m.room.message/", count=1)
        alice.send(room, "alice second")
        assert await wait_for(lambda: drained(alice), timeout=SLOW)
        sends = proxy.requests("PUT", "/send/m.room.message/")
        assert sends[0][2] == "dropped" and len(sends) >= 2
        assert proxy.requests("GET", "/event/")
        assert bodies(alice, room) == ["alice second"]  # bob's poll is still held
        assert bob.texts(room) == ["bob first", "alice second"]
        await shown_in_the_rooms_order(alice, room, "alice second")


async def test_rule_m5_an_edit_answered_before_the_echo_keeps_no_provisional_place(
        synapse, matrix_account, matrix_engines, matrix_user, raw) -> None:
    # Bob's message reaches the homeserver first and its poll is held back; alice
    # sends and edits before she learns of it, so the edit's answer comes while her
    # message has only its provisional place: the synced edit still places it.
    async with bob_first_while_a_sync_is_held(
            synapse, matrix_account, matrix_engines, matrix_user, raw, "edited", 8) as (
            proxy, a, bob, room, alice):
        mid = alice.send(room, "alice second")
        assert await wait_for(lambda: drained(alice), timeout=SLOW)
        alice.edit(mid, "alice edited")
        assert await wait_for(lambda: drained(alice), timeout=SLOW)
        assert bodies(alice, room) == ["alice edited"]  # bob's poll is still held
        assert bob.texts(room) == ["bob first", "alice second"]  # the room's order
        await shown_in_the_rooms_order(alice, room, "alice edited")


async def test_rule_s5_a_matrix_gap_closes_only_at_a_message_held_before_it(
        synapse, matrix_account, matrix_engines, matrix_user, raw) -> None:
    # A bridge relays 130 old messages (timestamps a day before "before"): the sync brings
    # the newest 50 after "before" (rule M5), a gap below them. Their backfilled places
    # come from those old timestamps, below the gap's lower bound, so a page's places do
    # not tell whether it reached "before": only "before" itself in a page does.
    async with relayed_room(synapse, matrix_account, matrix_engines, matrix_user, raw,
                            "old relay") as (a, bob, bridge, room):
        t = now_ms() - 86_400_000
        relayed = [f"old {n}" for n in range(130)]
        for n, body in enumerate(relayed):
            bridge.say_at(room, body, t + n * 1000)
        alice = matrix_engines.make(a.account)
        await alice.start()
        assert await wait_for(lambda: "old 129" in bodies(alice, room), timeout=SLOW)
        assert len(alice.store.gaps(room)) == 1
        pages = 0
        while alice.store.gaps(room):
            pages += 1
            assert pages <= 10, "backfill does not close the gap"
            await alice.backfill(room)
        shown = bodies(alice, room)
        assert sorted(shown) == sorted(["before", *relayed]), (
            f"missing: {sorted(set(relayed) - set(shown))[:5]}...")
        assert len({m.id for m in cached(alice, room)}) == 131

"""Delta sync, backfill, connectivity and retention rules against the real server."""

from __future__ import annotations

import uuid

from chat_tui.api import ApiClient
from chat_tui.config import load_token
from chat_tui.sync.events import ConnectivityChanged, SyncProgress
from chat_tui.sync.retry import Schedule, retry_delay
from tests.support.waiting import wait_for


def drained(engine) -> bool:
    counts = engine.store.outbox_counts()
    return counts["queued"] == 0 and counts["sending"] == 0


async def bob_conversation(bob: ApiClient, n: int, title="From bob") -> tuple[str, list[str]]:
    cid = str(uuid.uuid4())
    await bob.put_conversation(cid, title, ["alice"], False)
    mids = []
    for i in range(n):
        mid = str(uuid.uuid4())
        await bob.put_message(cid, mid, f"bob {i}")
        mids.append(mid)
    return cid, mids


async def away_while_bob_posts(alice, bob: ApiClient, count: int,
                               text: str) -> tuple[str, list[str], list[str]]:
    """Bob's conversation of 3 messages reaches alice's engine, then alice works offline
    while bob posts ``count`` more (``"<text> <i>"``). Returns ``(conversation id, the
    first 3 message ids, the later ids)``; alice is left offline."""
    cid, first = await bob_conversation(bob, 3)
    assert await wait_for(lambda: len(alice.store.messages_before(cid)) == 3, timeout=10)
    alice.set_work_offline(True)
    later = []
    for i in range(count):
        mid = str(uuid.uuid4())
        await bob.put_message(cid, mid, f"{text} {i}")
        later.append(mid)
    return cid, first, later


async def backfill_gaps(engine, cid: str, rounds: int = 10) -> int:
    """Backfill ``cid`` until its cache has no gap left, ``rounds`` pages at most; returns
    the messages the pages added."""
    added = 0
    for _ in range(rounds):
        added += await engine.backfill(cid)
        if not engine.store.gaps(cid):
            break
    return added


async def test_rule_s1_long_poll_delivers_new_messages_and_events(server, login_account, engines,
                                                                  server_api):
    alice = engines.make(login_account("alice"))
    await alice.start()
    bob = server_api("bob")
    cid, mids = await bob_conversation(bob, 3)
    assert await wait_for(lambda: len(alice.store.messages_before(cid)) == 3, timeout=10)
    assert [m.id for m in alice.store.messages_before(cid)] == mids
    [conv] = alice.store.list_conversations()
    assert (conv.title, conv.unread_count) == ("From bob", 3)
    events = engines.events_of(alice)
    assert any(isinstance(e, SyncProgress) and e.phase == "delta" for e in events)
    assert any(isinstance(e, ConnectivityChanged) and e.last_synced_at for e in events)
    alice.mark_read(cid, mids[-1])
    assert alice.store.list_conversations()[0].unread_count == 0
    assert await wait_for(lambda: drained(alice))
    assert (await bob.list_conversations())[0].unread_count == 0  # bob's count is his own
    marker_seen = await wait_for(
        lambda: alice.store.m.ReadMarker.select().where(
            alice.store.m.ReadMarker.username == "alice").exists(), timeout=5)
    assert marker_seen


async def test_rule_s2_replaying_a_real_sync_response_changes_nothing(server, login_account,
                                                                      engines, server_api):
    alice = engines.make(login_account("alice"))
    await alice.open()
    bob = server_api("bob")
    cid, _ = await bob_conversation(bob, 5)
    api = ApiClient(server.url, load_token(login_account("alice")))
    try:
        response = await api.sync(None)
    finally:
        await api.aclose()
    first = alice.store.apply_sync(response)
    before = [(m.id, m.body, m.version, m.sort_key) for m in alice.store.messages_before(cid)]
    again = alice.store.apply_sync(response)
    assert first.added == 5 and again.added == 0 and not again.messages
    after = [(m.id, m.body, m.version, m.sort_key) for m in alice.store.messages_before(cid)]
    assert after == before and alice.store.get_cursor() == response.cursor


async def test_rule_s4_and_s5_a_limited_gap_is_filled_exactly_by_backfill(
        server, login_account, engines, server_api):
    alice = engines.make(login_account("alice"))
    await alice.start()
    cid, first, later = await away_while_bob_posts(alice, server_api("bob"), 130, "later")
    alice.set_work_offline(False)
    assert await wait_for(lambda: alice.store.gaps(cid), timeout=10)
    [gap] = alice.store.gaps(cid)
    assert gap.after_seq is not None
    cached = alice.store.messages_before(cid, limit=500)
    assert len(cached) == 3 + 50  # the newest 50 created after the cursor
    assert alice.store.has_older(cid)
    added = await backfill_gaps(alice, cid)
    assert alice.store.gaps(cid) == []
    assert added == 80
    ids = [m.id for m in alice.store.messages_before(cid, limit=500)]
    assert ids == first + later  # exactly once each, in server order
    # Everything is served offline afterwards.
    alice.set_work_offline(True)
    server.stop()
    assert [m.id for m in alice.store.messages_before(cid, limit=500)] == first + later
    assert await alice.backfill(cid) == 0


async def test_rule_s4_a_limited_delta_after_my_send_was_acknowledged_still_marks_the_gap(
        login_account, engines, proxy, server_api):
    """Bob sends 80 while I am away; my queued send is acknowledged (seq above all of
    bob's) before the limited delta is applied: the 30 messages the delta leaves out are
    still a gap, and backfill brings every one of them."""
    alice = engines.make(login_account("alice", url=proxy.url))
    await alice.start()
    cid, first, later = await away_while_bob_posts(alice, server_api("bob"), 80, "while away")
    mine = alice.send(cid, "back online")
    # The delta's answer is held back until my send has been acknowledged.
    proxy.hold(2.0, method="GET", path_contains="/v1/sync", count=1)
    alice.set_work_offline(False)
    assert await wait_for(lambda: drained(alice), timeout=10)
    assert alice.store.get_message(mine).seq is not None
    assert await wait_for(lambda: alice.store.gaps(cid), timeout=10)
    await backfill_gaps(alice, cid)
    assert [m.id for m in alice.store.messages_before(cid, limit=500)] == first + later + [mine]


async def test_rule_s5_backfill_of_older_history_remembers_has_more(server, login_account,
                                                                     engines, server_api,
                                                                     fast_settings):
    bob = server_api("bob")
    cid, mids = await bob_conversation(bob, 75)
    alice = engines.make(login_account("alice"), settings=fast_settings.replace(page_size=20))
    await alice.start()
    assert await wait_for(lambda: len(alice.store.messages_before(cid, limit=500)) == 50,
                          timeout=10)
    assert alice.store.has_older(cid) and alice.store.gaps(cid) == []
    assert await alice.backfill(cid) == 20
    assert await alice.backfill(cid) == 5
    assert not alice.store.has_older(cid)
    assert await alice.backfill(cid) == 0
    assert [m.id for m in alice.store.messages_before(cid, limit=500)] == mids


async def test_rule_s6_cursor_expired_resyncs_and_keeps_the_outbox(server, login_account,
                                                                    engines, server_api):
    alice = engines.make(login_account("alice"))
    await alice.start()
    bob = server_api("bob")
    cid, _ = await bob_conversation(bob, 2)
    assert await wait_for(lambda: len(alice.store.messages_before(cid)) == 2, timeout=10)
    alice.set_work_offline(True)
    mid = alice.send(cid, "kept through the resync")
    alice.store.save_draft(cid, "draft survives")
    with alice.store.db.atomic():
        alice.store._set_meta("cursor", "987654321")  # a cursor the server never issued
    alice.set_work_offline(False)
    assert await wait_for(lambda: drained(alice), timeout=15)
    page = await bob.messages(cid)
    assert [m.body for m in page.messages][-1] == "kept through the resync"
    assert await wait_for(lambda: alice.store.get_cursor() not in (None, "987654321"))
    assert [m.id for m in alice.store.messages_before(cid)][-1] == mid
    assert alice.store.get_draft(cid).text == "draft survives"


async def test_rule_c1_connectivity_follows_real_reachability(server, login_account, engines,
                                                              proxy):
    alice = engines.make(login_account("alice", url=proxy.url))
    await alice.start()
    assert await wait_for(lambda: alice.connectivity == "online")
    proxy.refuse()
    assert await wait_for(lambda: alice.connectivity == "offline", timeout=10)
    proxy.accept()
    assert await wait_for(lambda: alice.connectivity == "online", timeout=10)

    def states() -> list[str]:
        return [e.state for e in engines.events_of(alice) if isinstance(e, ConnectivityChanged)]

    # Events reach subscribers on the loop's next turns, after the state they report.
    assert await wait_for(lambda: states()[-1:] == ["online"], timeout=10)
    assert "offline" in states()


def test_rule_c2_backoff_is_exponential_with_full_jitter_and_capped():
    for n in range(12):
        bound = min(300.0, 1.0 * 2 ** n)
        delays = [retry_delay(n, 1.0, 300.0) for _ in range(50)]
        assert all(0.0 <= d <= bound for d in delays)
        assert max(delays) > bound / 4  # jittered over the whole range, not fixed
    schedule = Schedule(0.1, 0.4)
    assert all(0 <= schedule.next_delay() <= 0.4 for _ in range(20))


async def test_rule_c3_work_offline_stops_all_network_use(server, login_account, engines,
                                                          proxy, server_api):
    alice = engines.make(login_account("alice", url=proxy.url))
    await alice.start()
    assert await wait_for(lambda: alice.connectivity == "online")
    cid = alice.create_conversation("Quiet", ["bob"])
    assert await wait_for(lambda: drained(alice))
    alice.set_work_offline(True)
    await wait_for(lambda: False, timeout=0.3)
    seen = len(proxy.log)
    mid = alice.send(cid, "held back")
    await wait_for(lambda: False, timeout=1.5)
    assert len(proxy.log) == seen
    assert alice.connectivity == "offline" and alice.work_offline
    assert alice.store.get_message(mid).state == "queued"
    alice.set_work_offline(False)
    assert await wait_for(lambda: drained(alice), timeout=10)
    assert [m.body for m in (await server_api("bob").messages(cid)).messages] == ["held back"]


async def test_rule_r1_retention_runs_at_start(server, login_account, engines, fast_settings,
                                               tmp_path):
    account = login_account("alice")
    engine = engines.make(account, settings=fast_settings.replace(retention_days=1))
    await engine.open()
    store = engine.store
    import time as _time

    with store.db.atomic():
        key = store.m.Conversation.insert(id="c-old", title="Old", creator="bob").execute()
        store.m.Message.insert(id="m-old", conv=key, author="bob", body="ancient",
                               created_at=_time.time() - 5 * 86400, seq=1, version=1,
                               sort_key=1).execute()
    await engine.start()
    assert await wait_for(lambda: store.get_message("m-old") is None, timeout=10)
    assert store.last_retention_at() is not None


async def test_rule_d3_big_sync_work_never_stalls_the_event_loop(server, login_account, engines,
                                                                 server_api):
    """A large initial sync is applied on the worker thread: a ticker on the engine's loop
    keeps running and does a user action (saving a draft: a write transaction) every tick
    while the sync is applied; neither the loop nor the writes stall (generous bound: no
    gap and no write over 0.5 s)."""
    import asyncio
    import time as _time

    bob = server_api("bob")
    for n in range(4):
        cid = str(uuid.uuid4())
        await bob.put_conversation(cid, f"Big {n}", ["alice"], False)
        for i in range(50):
            await bob.put_message(cid, str(uuid.uuid4()), f"{n}/{i} " + "lorem ipsum " * 40)
    alice = engines.make(login_account("alice"))
    gaps: list[float] = []
    stop = asyncio.Event()

    writes: list[float] = []

    async def ticker():
        last = _time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = _time.monotonic()
            gaps.append(now - last)
            if alice.store.is_open:
                alice.store.save_draft("draft-while-syncing", f"typed at {now:.3f}")
                writes.append(_time.monotonic() - now)
            last = _time.monotonic()

    tick = asyncio.create_task(ticker())
    await alice.start()
    writes_before_sync = len(writes)
    assert await wait_for(lambda: len(alice.store.list_conversations()) == 4, timeout=20)
    stop.set()
    await tick
    assert len(writes) > writes_before_sync  # user actions ran while the sync was applied
    assert max(writes) < 0.5
    assert sum(len(alice.store.messages_before(c.id)) for c in alice.store.list_conversations()) == 200
    assert max(gaps) < 0.5

"""The soak's oracle must be able to fail: break the promise behind the engine's back on the
real server and check that :meth:`soak.harness.World.check` names what broke."""

from __future__ import annotations

import uuid

import pytest

from tests.soak.harness import Sent, World


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path / "world").start()
    try:
        yield w
    finally:
        w.close()


def test_oracle_passes_a_clean_run_then_catches_lost_duplicated_and_stale(world):
    first = world.send(0)
    second = world.send(0)
    world.edit(1)
    assert world.check() == {}
    assert world.stats.messages_sent == 2 and world.stats.edits == 1
    # Behind the client's back: tombstone one message, send a copy of another under a new id,
    # and change the body of the second.
    api = world.checker
    assert api.delete(f"/v1/messages/{first.mid}").status_code == 200
    r = api.put(f"/v1/conversations/{first.cid}/messages/{uuid.uuid4()}",
                json={"body": second.body})
    assert r.status_code == 201
    problems = world.check()
    assert {"lost", "duplicated", "phantom"} <= set(problems), problems
    assert any(first.mid in p for p in problems["lost"])
    assert world.stats.problems["lost"] >= 1


def test_oracle_catches_a_cache_that_disagrees_with_the_server(world):
    msg = world.send(0)
    assert world.check() == {}
    world.client.stop()
    import sqlite3

    con = sqlite3.connect(world.db_path)
    con.execute("UPDATE message SET body = 'tampered' WHERE id = ?", (msg.mid,))
    con.commit()
    con.close()
    problems = world.check(cache_wait=1.0)
    assert "cache" in problems and msg.mid in problems["cache"][0], problems


def test_a_stuck_item_neither_ends_the_settling_nor_hides_a_loss(world):
    """A poisoned message whose refusal is lifted behind the harness's back is sent, so it
    never shows as failed: the check reports it stuck, with where it is (on the server),
    and still settles the rest and runs the loss check, which names a message the model
    expects and nobody sent. The next check no longer waits for the stuck one."""
    world.settle_timeout = 3.0
    stuck = world.send(0, poison=True, discard_on_fail=True)
    world.send(0)
    assert stuck.poison is not None
    stuck.poison.count = 0
    ghost = Sent(str(uuid.uuid4()), stuck.cid, 10_000, "never sent")
    world.sent.append(ghost)
    problems = world.check()
    assert set(problems) == {"stuck", "lost"}, problems
    assert len(problems["stuck"]) == 1 and stuck.mid in problems["stuck"][0]
    assert "on the server 1x" in problems["stuck"][0]
    assert [ghost.mid in p for p in problems["lost"]] == [True]
    world.sent.remove(ghost)
    assert world.check() == {}
    assert not stuck.discarded and stuck.poison is None

"""The soak's oracle must be able to fail: break the promise behind the engine's back on the
real server and check that :meth:`soak.harness.World.check` names what broke."""

from __future__ import annotations

import uuid

import pytest

from tests.soak.harness import World


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

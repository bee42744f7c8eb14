"""Sync rule D1a: the engine's worker commits with synchronous=NORMAL, user actions FULL."""

from __future__ import annotations

from tests.support.waiting import wait_for


async def test_rule_d1a_worker_commits_normal_user_actions_stay_full(engines, login_account):
    engine = engines.make(login_account("alice"))
    await engine.start()

    def pragma() -> int:
        return engine.store.db.execute_sql("PRAGMA synchronous").fetchone()[0]

    assert await engine._db(pragma) == 1  # NORMAL on the database worker's connection
    assert pragma() == 2  # FULL on the connection user actions use (outbox rule 1)
    cid = engine.create_conversation("durability", ["bob"])
    mid = engine.send(cid, "still delivered")
    await wait_for(lambda: (m := engine.store.get_message(mid)) and m.state == "sent")
    assert engine.store.outbox_counts() == dict.fromkeys(engine.store.outbox_counts(), 0)

"""The server on PostgreSQL, against a real throwaway PostgreSQL cluster.

The main route tests run on both databases: they carry the ``also_postgres`` marker and run
as ``[sqlite]`` and ``[postgres]`` (``tests/support/fixtures.py``). This module holds the
checks that only make sense on PostgreSQL. Every test here gets a fresh database in the
cluster of ``tests/support/postgres.py``; without the PostgreSQL binaries the tests skip,
and fail when the environment variable ``CI`` is set.
"""

from __future__ import annotations

import time
import uuid

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("postgres")]


@pytest.fixture
def db_backend() -> str:
    """Every ``server`` of this module runs on PostgreSQL."""
    return "postgres"


def test_server_really_uses_postgresql(server, pg_url, alice):
    import psycopg2

    cid = alice.create_conversation([])
    alice.send(cid, "stored in postgres")
    con = psycopg2.connect(pg_url)
    try:
        cur = con.cursor()
        cur.execute("SELECT body FROM message")
        assert cur.fetchall() == [("stored in postgres",)]
        cur.execute("SELECT version FROM schema_version")
        assert cur.fetchone()[0] >= 2
    finally:
        con.close()


def test_read_transaction_is_one_snapshot_on_postgresql(pg_url):
    """``ServerDB`` sync reads the cursor and then the rows up to it inside one
    ``read_transaction``: a write committed in between must stay invisible (REPEATABLE READ),
    or the delta would skip it. Here a writer on another connection (another thread) bumps
    the change counter between two reads of one read transaction."""
    import threading

    from chat_tui.server import db as server_db

    database = server_db.open_and_migrate(pg_url)

    def writer() -> None:
        with server_db.write_transaction(database):
            server_db.bump_counter()
        database.close()

    with server_db.read_transaction(database):
        before = server_db.current_cursor()
        thread = threading.Thread(target=writer)
        thread.start()
        thread.join()
        assert server_db.current_cursor() == before  # the same snapshot
    with server_db.read_transaction(database):
        assert server_db.current_cursor() == before + 1  # committed, seen by the next one
    database.close()



def test_sends_waiting_for_the_write_lock_leave_the_reads_their_threads(server, pg_url,
                                                                         alice, bob):
    """Writes queue on PostgreSQL's one write lock (the change counter's row) on threads
    of their own: while another connection holds that lock, six sends wait for it, and a
    sync and a page still answer at once. Once the lock is released every send is
    written, and a long-poll held meanwhile gets them."""
    import threading

    import httpx
    import psycopg2

    cid = alice.create_conversation(["bob"])
    since = bob.sync().json()["cursor"]
    as_bob = {"Authorization": f"Bearer {bob.token}"}
    answers: list[int] = []
    woken: list[httpx.Response] = []

    def send(i: int) -> None:
        r = httpx.put(f"{server.url}/v1/conversations/{cid}/messages/{uuid.uuid4()}",
                      json={"body": f"waiting {i}"}, timeout=30,
                      headers={"Authorization": f"Bearer {alice.token}"})
        answers.append(r.status_code)

    def poll() -> None:
        woken.append(httpx.get(f"{server.url}/v1/sync", params={"since": since, "timeout": 20},
                               headers=as_bob, timeout=30))

    holder = psycopg2.connect(pg_url)
    threads = [threading.Thread(target=send, args=(i,)) for i in range(6)]
    threads.append(threading.Thread(target=poll))
    try:
        holder.cursor().execute("SELECT 1 FROM counter WHERE name = 'change' FOR UPDATE")
        for t in threads:
            t.start()
        time.sleep(0.5)  # the sends reach the lock
        quick = httpx.get(f"{server.url}/v1/sync", params={"since": since}, headers=as_bob,
                          timeout=5)
        assert quick.status_code == 200 and quick.json()["conversations"] == []
        page = httpx.get(f"{server.url}/v1/conversations/{cid}/messages", headers=as_bob,
                         timeout=5)
        assert page.status_code == 200 and page.json()["messages"] == []
        assert answers == []  # the sends still wait for the lock
    finally:
        holder.rollback()
        holder.close()
    for t in threads:
        t.join(30)
    assert answers == [201] * 6
    [entry] = woken[0].json()["conversations"]
    assert entry["conversation"]["id"] == cid and entry["messages"]

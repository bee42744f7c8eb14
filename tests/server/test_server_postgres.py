"""The server on PostgreSQL, against a real throwaway PostgreSQL cluster.

The main route tests run on both databases: they carry the ``also_postgres`` marker and run
as ``[sqlite]`` and ``[postgres]`` (``tests/support/fixtures.py``). This module holds the
checks that only make sense on PostgreSQL. Every test here gets a fresh database in the
cluster of ``tests/support/postgres.py``; without the PostgreSQL binaries the tests skip,
and fail when the environment variable ``CI`` is set.
"""

from __future__ import annotations

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

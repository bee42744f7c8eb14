"""The server on PostgreSQL: the main route tests again, against a real PostgreSQL cluster.

A throwaway cluster is created under the test's temp dir with ``initdb`` and ``pg_ctl``
(found on PATH or under ``/usr/lib/postgresql/*/bin``), listening on a free loopback port,
and each test gets a fresh database. The module is **skipped only when the PostgreSQL server
binaries are absent** (Debian: ``apt-get install postgresql``). PostgreSQL refuses to run as
root, so under root the cluster runs as the ``postgres`` (or ``nobody``) user via ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# The same tests, collected again here with the PostgreSQL `server` fixture below.
from test_server_api import (  # noqa: F401
    test_auth_isolation_404_for_other_users_data,
    test_edit_and_delete_bump_version_and_are_idempotent,
    test_initial_and_delta_sync_with_edits_and_tombstones,
    test_limited_sync_and_backfill,
    test_long_poll_wakes_every_device_of_every_member,
    test_message_put_is_idempotent,
    test_pagination_three_pages_no_overlap_no_gap,
    test_read_marker_moves_forward_only_and_syncs,
)
from test_server_assistant import test_echo_replies_in_order_for_three_quick_messages  # noqa: F401
from test_server_import import test_import_keeps_timestamps_and_reimport_changes_nothing  # noqa: F401


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _run_as() -> list[str]:
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["runuser", "-u", user, "--"]
    pytest.skip("running as root without a postgres/nobody user to run PostgreSQL")


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[tuple[str, list[str], int]]:
    """A running throwaway cluster: ``(bin dir, command prefix, port)``."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    prefix = _run_as()
    # Outside pytest's temp root: pytest keeps that root private (mode 0700), which the
    # cluster's own user could not traverse.
    base = Path(tempfile.mkdtemp(prefix="chat-tui-pg-"))
    data = base / "data"
    if prefix:
        shutil.chown(base, user=prefix[2])
    subprocess.run(
        [*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "chat"],
        check=True,
        capture_output=True,
    )
    with socket.socket() as probe:  # a free loopback port (like conftest.find_free_port)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*prefix, pg_ctl, "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield str(Path(pg_ctl).parent), prefix, port
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_url(pg_cluster) -> Iterator[str]:
    """A fresh, empty database in the cluster, as a ``postgresql://`` URL."""
    import psycopg2

    _, _, port = pg_cluster
    name = "t_" + uuid.uuid4().hex[:12]
    admin = psycopg2.connect(host="127.0.0.1", port=port, user="chat", dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://chat@127.0.0.1:{port}/{name}"
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.fixture
def server(server_factory, pg_url):
    """The usual `server` fixture, on PostgreSQL."""
    return server_factory.start(users={"alice": "alice-pw", "bob": "bob-pw"}, db=pg_url)


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
    """``Store.sync`` reads the cursor and then the rows up to it inside one
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

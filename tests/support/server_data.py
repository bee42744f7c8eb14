"""The server's data layer opened inside the test process: :func:`open_server_data` (a
migrated database as a :class:`~chat_tui.server.data.ServerDB`) and :func:`user` (a
caller as the routes see it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chat_tui.server.data import Principal, ServerDB
from chat_tui.server.db import open_and_migrate


@contextmanager
def open_server_data(target: str | Path) -> Iterator[ServerDB]:
    """The server database at ``target`` (a SQLite file path or a PostgreSQL URL), migrated
    and opened in this process; closed on exit."""
    database = open_and_migrate(target)
    try:
        yield ServerDB(database)
    finally:
        database.close()


def user(data: ServerDB, name: str) -> Principal:
    """A new user ``name`` (password ``<name>-pw``) logged in on a new device, as the
    routes see the caller."""
    data.users.create(name, f"{name}-pw")
    login = data.users.login(name, f"{name}-pw", "test")
    return data.users.authenticate(login.access_token)

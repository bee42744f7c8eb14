"""A throwaway PostgreSQL cluster for tests: :class:`Cluster` and :func:`find_binary`.

The cluster lives in a fresh directory outside pytest's temp root (pytest keeps that root
private, mode 0700, which the cluster's own user could not traverse), listens on a free
loopback port with ``trust`` authentication for the user ``chat``, and runs without fsync.
PostgreSQL refuses to run as root, so under root it runs as the ``postgres`` (or ``nobody``)
user through ``runuser``. The binaries are found on ``PATH`` or under
``/usr/lib/postgresql/*/bin`` (Debian: ``apt-get install postgresql``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from tests.support.servers import find_free_port


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries, or a user to run them as, are missing."""


def find_binary(name: str) -> str | None:
    """Path of the PostgreSQL program ``name`` (``initdb``, ``pg_ctl``), or None."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _run_as() -> list[str]:
    """The command prefix that runs the cluster as a non-root user ([] when not root)."""
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["runuser", "-u", user, "--"]
    raise PostgresUnavailable("running as root without a postgres/nobody user to run PostgreSQL")


class Cluster:
    """A running throwaway cluster: ``port`` (int), :meth:`create_database`, :meth:`stop`.

    Raises :class:`PostgresUnavailable` when the binaries are missing and
    ``subprocess.CalledProcessError`` when ``initdb`` or ``pg_ctl start`` fails.
    """

    def __init__(self) -> None:
        initdb, pg_ctl = find_binary("initdb"), find_binary("pg_ctl")
        if not initdb or not pg_ctl:
            raise PostgresUnavailable(
                "PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.prefix = _run_as()
        self.pg_ctl = pg_ctl
        self.base = Path(tempfile.mkdtemp(prefix="chat-tui-pg-"))
        self.data = self.base / "data"
        if self.prefix:
            shutil.chown(self.base, user=self.prefix[2])
        subprocess.run([*self.prefix, initdb, "-D", str(self.data), "-A", "trust", "-U", "chat"],
                       check=True, capture_output=True)
        self.port = find_free_port()
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run([*self.prefix, pg_ctl, "-D", str(self.data), "-o", options,
                        "-l", str(self.base / "log"), "-w", "start"],
                       check=True, capture_output=True)

    def _admin(self):
        import psycopg2

        admin = psycopg2.connect(host="127.0.0.1", port=self.port, user="chat",
                                 dbname="postgres")
        admin.autocommit = True
        return admin

    def create_database(self) -> str:
        """A fresh, empty database; returns its ``postgresql://`` URL."""
        name = "t_" + uuid.uuid4().hex[:12]
        admin = self._admin()
        try:
            admin.cursor().execute(f"CREATE DATABASE {name}")
        finally:
            admin.close()
        return f"postgresql://chat@127.0.0.1:{self.port}/{name}"

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url`` (made by :meth:`create_database`), even in use."""
        name = url.rsplit("/", 1)[1]
        admin = self._admin()
        try:
            admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            admin.close()

    def stop(self) -> None:
        """Stop the cluster at once and delete its files."""
        subprocess.run([*self.prefix, self.pg_ctl, "-D", str(self.data), "-m", "immediate",
                        "-w", "stop"], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)

"""The verified-token cache of one server process: :class:`TokenCache`.

A token checked against the database is trusted for :data:`TOKEN_CACHE_SECONDS` without
asking again. A revocation empties the entries it names at once: a logout through this
process drops its token; on PostgreSQL every logout and password reset, through any
process or ``chat-tui-server add-user``, reaches every process as a notice
(:mod:`chat_tui.server.pgbus`) that drops the revoked devices' or users' entries. While a
process cannot hear those notices (its listening connection is down) it caches nothing,
so a revoked token is refused by every process as soon as the revocation commits (docs/api.md,
``POST /v1/logout``). On SQLite (one serving process, no notices) a password reset made by
another process (``chat-tui-server add-user``) touches the database's revocation marker
file (:func:`revocation_marker`), which :func:`watch_revocations` looks at every
:data:`REVOCATION_POLL_SECONDS` (a file stat, no query: an idle server runs no SQL) and
empties the cache when it changed.

Event loop only (not thread safe).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

from chat_tui.server.data import Principal

log = logging.getLogger(__name__)

#: How long a verified token is trusted without asking the database again (seconds).
TOKEN_CACHE_SECONDS = 30.0
#: The cache is emptied when it holds more tokens than this.
TOKEN_CACHE_MAX = 50_000
#: Seconds between two reads of the devices' revocations on SQLite (:func:`watch_revocations`).
REVOCATION_POLL_SECONDS = 0.5


class TokenCache:
    """``token hash -> (Principal, monotonic expiry)``.

    ``enabled``: whether entries are kept at all (False on PostgreSQL while the process
    does not hear revocations). ``generation`` grows with every revocation: a lookup that
    started before one must not be cached (:meth:`put` gets the generation read before the
    database was asked).
    """

    def __init__(self, seconds: float = TOKEN_CACHE_SECONDS, limit: int = TOKEN_CACHE_MAX,
                 enabled: bool = True) -> None:
        self.seconds = seconds
        self.limit = limit
        self.enabled = enabled
        self.generation = 0
        self._entries: dict[str, tuple[Principal, float]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Principal | None:
        """The principal of token hash ``key`` when cached and not expired, else None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= time.monotonic():
            del self._entries[key]
            return None
        return entry[0]

    def put(self, key: str, principal: Principal, generation: int) -> None:
        """Cache ``principal`` for token hash ``key``, unless the cache is disabled or a
        revocation arrived since ``generation`` was read (the answer may be stale)."""
        if not self.enabled or generation != self.generation:
            return
        if len(self._entries) >= self.limit:
            self._entries.clear()
        self._entries[key] = (principal, time.monotonic() + self.seconds)

    def drop(self, key: str) -> None:
        """Forget token hash ``key`` (a logout through this process)."""
        self.generation += 1
        self._entries.pop(key, None)

    def drop_devices(self, device_ids: Iterable[str]) -> None:
        """Forget the tokens of ``device_ids`` (revoked by a logout in any process)."""
        self._drop_where(lambda p, ids=set(device_ids): p.device_id in ids)

    def drop_users(self, user_ids: Iterable[str]) -> None:
        """Forget every token of ``user_ids`` (a password reset)."""
        self._drop_where(lambda p, ids=set(user_ids): p.user_id in ids)

    def clear(self) -> None:
        """Forget everything (revocations may have been missed)."""
        self.generation += 1
        self._entries.clear()

    def _drop_where(self, match) -> None:
        self.generation += 1
        for key in [k for k, (p, _) in self._entries.items() if match(p)]:
            del self._entries[key]


def revocation_marker(db_file: str | Path) -> Path:
    """The revocation marker of the SQLite database file ``db_file``: ``<db>-revocations``
    beside it, touched by ``chat-tui-server add-user`` after a reset that revoked tokens
    (:func:`mark_revoked`)."""
    return Path(f"{db_file}-revocations")


def mark_revoked(db_file: str | Path) -> None:
    """Tell a server running on the SQLite database ``db_file`` that tokens were revoked
    (rule P2): touch its :func:`revocation_marker`. Failing to (a read-only directory) is
    logged: the server then refuses them when its cache entries expire."""
    marker = revocation_marker(db_file)
    try:
        marker.write_text(str(time.time_ns()), encoding="utf-8")
    except OSError:
        log.warning("could not write %s", marker, exc_info=True)


def _marker_stamp(marker: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(marker)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


async def watch_revocations(marker: Path, cache: TokenCache,
                            every: float = REVOCATION_POLL_SECONDS) -> None:
    """Empty ``cache`` whenever the revocation ``marker`` file (:func:`revocation_marker`)
    changes, looking every ``every`` seconds until cancelled: rule P2 on SQLite, a reset
    committed by another process is refused within ``every`` seconds."""
    last = _marker_stamp(marker)
    while True:
        await asyncio.sleep(every)
        stamp = _marker_stamp(marker)
        if stamp != last:
            cache.clear()
            last = stamp

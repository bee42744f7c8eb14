"""The login throttle (docs/api.md, ``POST /v1/login``, Throttling): failed logins counted
per username and per client address in the ``login_failure`` table, so every server
process on one database counts them together."""

from __future__ import annotations

import datetime as dt

from chat_tui.server.data.base import Repository
from chat_tui.server.db import utcnow, write_transaction
from chat_tui.server.models import LoginFailure
from chat_tui.server.settings import LoginLimits


def account_key(username: str) -> str:
    """The throttle key of a login name as sent (case-folded, trimmed, at most 64
    characters counted): known and unknown names are counted alike."""
    return "u:" + username.strip().lower()[:64]


def address_key(address: str) -> str:
    """The throttle key of a client address (the TCP peer: behind a reverse proxy, the
    proxy's address)."""
    return "a:" + address[:100]


class LoginThrottle(Repository):
    """Counts failed logins and tells how long a key must wait."""

    def wait(self, limits: LoginLimits, keys: list[tuple[str, int]],
             now: dt.datetime | None = None) -> float:
        """Seconds until a login under every ``(key, limit)`` of ``keys`` is allowed again
        (0.0: allowed now). A key is blocked while it has ``limit`` failures or more in the
        last ``limits.window`` seconds; it is free again when enough of them leave the
        window. A ``limit`` of 0 never blocks."""
        now = now or utcnow()
        since = now - dt.timedelta(seconds=limits.window)
        self.db.connect(reuse_if_open=True)
        longest = 0.0
        for key, limit in keys:
            if limit <= 0:
                continue
            rows = (
                LoginFailure.select(LoginFailure.at)
                .where((LoginFailure.key == key) & (LoginFailure.at > since))
                .order_by(LoginFailure.at.desc())
                .limit(limit)
                .tuples()
            )
            times = [at for (at,) in rows]
            if len(times) >= limit:
                free_at = times[-1] + dt.timedelta(seconds=limits.window)
                longest = max(longest, (free_at - now).total_seconds())
        return longest

    def failed(self, limits: LoginLimits, keys: list[str], now: dt.datetime | None = None) -> None:
        """Count one failed login against each of ``keys``; drop failures older than the
        window (of every key)."""
        now = now or utcnow()
        with write_transaction(self.db):
            LoginFailure.delete().where(
                LoginFailure.at <= now - dt.timedelta(seconds=limits.window)
            ).execute()
            LoginFailure.insert_many([{"key": k, "at": now} for k in keys]).execute()

    def succeeded(self, key: str) -> None:
        """Forget the failures of ``key`` (the account, after a successful login)."""
        with write_transaction(self.db):
            LoginFailure.delete().where(LoginFailure.key == key).execute()

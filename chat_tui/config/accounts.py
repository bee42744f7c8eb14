"""Accounts: one logged-in user on one server, kept in ``<config dir>/accounts.json``.

The token is not in this file (see :mod:`chat_tui.config.secrets`). Each account has its own
cache file ``<user data dir>/chat-tui/<server host[_port]>/<user id>.db``, so another user or
another server means another file.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from chat_tui.config.paths import config_dir, data_dir
from chat_tui.config.settings import load_account_defaults


class AccountError(Exception):
    """No account matches, or several do and the choice is ambiguous. ``str()`` is readable."""


def normalize_url(url: str) -> str:
    """Return ``url`` without a trailing slash; raises ValueError unless http(s)://host."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not a server URL (want http://host[:port]): {url!r}")
    return url.strip().rstrip("/")


def server_slug(url: str) -> str:
    """Folder name of a server: its lower-case host, plus ``_<port>`` when the URL names one.

    >>> server_slug("http://127.0.0.1:8000")
    '127.0.0.1_8000'
    """
    parts = urlsplit(normalize_url(url))
    host = (parts.hostname or "").lower()
    return f"{host}_{parts.port}" if parts.port else host


#: The kinds of server an account logs in to: chat-tui's own API v1, or a Matrix homeserver
#: (``chat_tui.api.detect``).
KIND_CHAT_TUI, KIND_MATRIX = "chat-tui", "matrix"


@dataclass(frozen=True)
class Account:
    """One login: ``server_url`` (no trailing slash), ``username``, server-chosen ``user_id``
    and ``device_id`` (docs/api.md, POST /v1/login), and ``kind``: :data:`KIND_CHAT_TUI`
    or :data:`KIND_MATRIX` (then ``username`` and ``user_id`` are the Matrix user id,
    ``@name:server``, and ``server_url`` the homeserver's client API URL)."""

    server_url: str
    username: str
    user_id: str
    device_id: str = ""
    kind: str = KIND_CHAT_TUI

    @property
    def is_matrix(self) -> bool:
        """True for a Matrix account."""
        return self.kind == KIND_MATRIX

    @property
    def key(self) -> str:
        """``"<server_url>|<username>"``: the name of this account's secret."""
        return f"{self.server_url}|{self.username}"

    @property
    def db_path(self) -> Path:
        """The account's cache file (the folder is created on demand)."""
        return data_dir() / server_slug(self.server_url) / f"{self.user_id}.db"


def _accounts_file() -> Path:
    return config_dir() / "accounts.json"


def load_accounts() -> list[Account]:
    """All saved accounts, most recently logged in last. A corrupt file reads as empty."""
    path = _accounts_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [Account(**row) for row in data.get("accounts", [])]
    except FileNotFoundError:
        return []
    except (ValueError, TypeError, AttributeError):
        return []


def _write(accounts: list[Account]) -> None:
    path = _accounts_file()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"accounts": [asdict(a) for a in accounts]}, indent=2))
    os.replace(tmp, path)


def save_account(account: Account) -> None:
    """Add or replace ``account`` (same server and username) and make it the most recent."""
    rest = [a for a in load_accounts() if a.key != account.key]
    _write([*rest, account])


def remove_account(account: Account) -> None:
    """Forget ``account`` (no error when it is not saved)."""
    _write([a for a in load_accounts() if a.key != account.key])


def account_choice(user: str | None = None,
                   server: str | None = None) -> tuple[str | None, str | None]:
    """``(user, server)`` as asked: ``--user`` / ``--server`` where given, each missing one
    from the config file's ``[account]`` table (:func:`load_account_defaults`), else None.

    Raises:
        ValueError: the config file is invalid.
    """
    default_user, default_server = load_account_defaults()
    return user or default_user, server or default_server


def pick_account(user: str | None = None, server: str | None = None) -> Account:
    """The account named by ``--user`` / ``--server`` or, for what they leave open, by the
    config file's ``[account]`` table (:func:`account_choice`); with neither, the most recent
    login.

    Raises:
        AccountError: nobody is logged in, none matches, or several match.
        ValueError: a server that is not a URL, or an invalid config file.
    """
    user, server = account_choice(user, server)
    server = normalize_url(server) if server else None
    hint = f"run `chat-tui login {server or 'URL'}" + (f" --username {user}" if user else "")
    accounts = load_accounts()
    if not accounts:
        raise AccountError(f"not logged in: {hint}` first")
    matches = accounts
    if server:
        matches = [a for a in matches if a.server_url == server]
    if user:
        wanted = user.lower()
        matches = [a for a in matches if a.username == wanted
                   or (a.is_matrix and a.username.split(":")[0].lstrip("@") == wanted)]
    if not matches:
        raise AccountError(
            "no saved account matches "
            + " ".join(f"{k}={v}" for k, v in (("user", user), ("server", server)) if v)
            + f": {hint}` first"
        )
    if user and not server and len({a.server_url for a in matches}) > 1:
        raise AccountError(f"user {user!r} is logged in on several servers: add --server")
    return matches[-1]

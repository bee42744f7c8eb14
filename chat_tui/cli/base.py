"""What every headless command shares: exit statuses, :class:`CliError`, and opening the
chosen account's engine and cache.

Imports beyond the standard library happen inside the functions, so the app's start
(``chat-tui`` alone) never pays for them.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.config import Account
    from chat_tui.store import Cache
    from chat_tui.sync.engine import Engine

#: Exit statuses of ``chat-tui``: success, a usage or local error, the server unreachable,
#: a login needed.
EXIT_OK, EXIT_ERROR, EXIT_UNREACHABLE, EXIT_AUTH = 0, 1, 2, 3


class CliError(Exception):
    """A readable error: ``main`` prints ``chat-tui: <message>`` on stderr and exits with
    ``code`` (an ``EXIT_*`` status, ``EXIT_ERROR`` by default)."""

    def __init__(self, message: str, code: int = EXIT_ERROR):
        super().__init__(message)
        self.code = code


def account_of(args: argparse.Namespace) -> Account:
    """The saved account chosen by ``args.user`` / ``args.server`` (else the ``[account]``
    table of ``config.toml``, else the most recent login; ``chat_tui.config.pick_account``).

    Raises:
        CliError: no saved account matches, or the config file is invalid.
    """
    from chat_tui.config import AccountError, pick_account

    try:
        return pick_account(args.user, args.server)
    except (AccountError, ValueError) as exc:
        raise CliError(str(exc)) from exc


def engine_of(args: argparse.Namespace) -> Engine:
    """The sync engine of the chosen account (:func:`account_of`) with the settings of
    ``config.toml`` and ``CHAT_TUI_*`` overrides; its cache is not opened yet.

    Raises:
        CliError: an invalid config file (``config: ...``) or no matching account.
    """
    from chat_tui.config import load_settings
    from chat_tui.sync.engine import Engine

    try:
        settings = load_settings()
    except ValueError as exc:
        raise CliError(f"config: {exc}") from exc
    return Engine.for_account(account_of(args), settings)


def open_store(engine: Engine) -> None:
    """Open the engine's cache and report a recovered one (:func:`report_recovery`).

    Raises:
        CliError: the cache was written by a newer chat-tui (``SchemaTooNew``), or it is
            encrypted and its key is missing or wrong (``CacheLocked``, sync rule D8).
    """
    from chat_tui.store import CacheLocked, SchemaTooNew

    try:
        engine.store.ensure_open()
    except (SchemaTooNew, CacheLocked) as exc:
        raise CliError(str(exc)) from exc
    report_recovery(engine.store)


def report_recovery(store: Cache) -> None:
    """Tell the user on stderr when an unreadable cache was moved aside (sync rule D4)."""
    if store.recovery is not None:
        print(f"chat-tui: {store.recovery.message}", file=sys.stderr)

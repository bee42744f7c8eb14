"""What every headless command shares: exit statuses, :class:`CliError`, the account a
command acts on (:func:`target_of`: a saved login, or the default local account), and
opening its engine and cache (:func:`engine_of` without network, :func:`network_engine`
with it: for the local account that starts the embedded server for the command).

Imports beyond the standard library happen inside the functions, so the app's start
(``chat-tui`` alone) never pays for them.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.config import Account, Settings
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


def uses_local_account(args: argparse.Namespace) -> bool:
    """Whether the command acts on the default local account: the same choice as the app
    (``chat_tui.launch.launch``): no ``--user``/``--server``, no ``[account]`` table in
    ``config.toml`` and no saved login.

    Raises:
        CliError: an invalid config file.
    """
    from chat_tui.config import account_choice, load_accounts

    try:
        user, server = account_choice(args.user, args.server)
    except ValueError as exc:
        raise CliError(f"config: {exc}") from exc
    return not (user or server or load_accounts())


@dataclass(frozen=True)
class Target:
    """The account a command acts on: ``username``, its cache file ``db_path``, ``label``
    (how messages name it: ``alice on http://host:port``, or ``me (local account)``) and
    ``account`` (the saved login, or None for the local account of the app's embedded
    server, whose files are in ``directory``)."""

    username: str
    db_path: Path
    label: str
    account: Account | None
    directory: Path | None = None

    @property
    def local(self) -> bool:
        """True for the default local account (no login; the embedded server)."""
        return self.account is None


def target_of(args: argparse.Namespace) -> Target:
    """The account chosen by ``args`` (:func:`uses_local_account`, else :func:`account_of`).

    Raises:
        CliError: an invalid config file, or no saved account matches ``--user``/``--server``.
    """
    if uses_local_account(args):
        from chat_tui.launch import local_dir, local_username

        directory = local_dir()
        name = local_username()
        return Target(name, directory / "cache.db", f"{name} (local account)", None, directory)
    account = account_of(args)
    return Target(account.username, account.db_path,
                  f"{account.username} on {account.server_url}", account)


def login_command(target: Target) -> str:
    """What to run when the server refuses the saved login (sync rule 3l), as the app's
    login banner says it: ``chat-tui login URL --username NAME`` for a saved account; for
    the local account, whose embedded server logs it in at each start, just
    ``chat-tui``."""
    if target.account is None:
        return "chat-tui"
    return f"chat-tui login {target.account.server_url} --username {target.username}"


def settings_of() -> Settings:
    """The settings of ``config.toml`` with ``CHAT_TUI_*`` overrides.

    Raises:
        CliError: an invalid config file (``config: ...``).
    """
    from chat_tui.config import load_settings

    try:
        return load_settings()
    except ValueError as exc:
        raise CliError(f"config: {exc}") from exc


#: The server URL an engine of the local account has while no embedded server runs: such
#: an engine only writes and reads the cache (``new``, ``send``, ``export``), never connects.
LOCAL_OFFLINE_URL = "http://127.0.0.1:9"


def engine_of(args: argparse.Namespace) -> Engine:
    """The sync engine of the chosen account (:func:`target_of`) with :func:`settings_of`,
    for the commands that use only the cache; its cache is not opened yet. For the local
    account no server runs: the engine has no token and must not be started
    (:func:`network_engine` gives one that can).

    Raises:
        CliError: an invalid config file (``config: ...``) or no matching account.
    """
    from chat_tui.sync.engine import Engine

    settings = settings_of()
    target = target_of(args)
    if target.account is not None:
        return Engine.for_account(target.account, settings)
    from chat_tui.store import Cache

    return Engine(Cache(target.db_path, target.username), LOCAL_OFFLINE_URL, None, settings)


@contextlib.asynccontextmanager
async def network_engine(args: argparse.Namespace) -> AsyncIterator[Engine]:
    """The engine of the chosen account, ready to use the network, on the running loop.

    For a saved login this is :func:`engine_of`. For the local account the embedded
    server is started for the command over ``<data dir>/local/server.db`` and the local
    user logs in as the app does (``chat_tui.launch.local_factory``: the device token in
    ``local/token`` is reused); the server stops when the block ends.

    Raises:
        CliError: the embedded server cannot start or refuses the local login
        (``EXIT_UNREACHABLE``).
    """
    target = target_of(args)
    if target.account is not None:
        yield engine_of(args)
        return
    from chat_tui.api import ApiError
    from chat_tui.launch import local_factory
    from chat_tui.store import Cache

    started: list = []
    assert target.directory is not None
    factory = local_factory(settings_of(), target.username, target.directory, started.append)
    try:
        try:
            engine = await factory(Cache(target.db_path, target.username))
        except (RuntimeError, OSError, ValueError, ApiError) as exc:
            raise CliError(f"the local server did not start ({exc}); see the server log",
                           EXIT_UNREACHABLE) from exc
        yield engine
    finally:
        for server in started:
            await _stop_server(server)


async def _stop_server(server) -> None:
    import asyncio

    await asyncio.to_thread(server.stop)


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


def stdin_is_terminal() -> bool:
    """Whether stdin is an open terminal a prompt may read (not closed, piped or
    ``/dev/null``)."""
    try:
        return sys.stdin is not None and not sys.stdin.closed and sys.stdin.isatty()
    except (OSError, ValueError):
        return False


def read_stdin() -> str:
    """All of stdin (for ``send -``).

    Raises:
        CliError: stdin is closed (no file descriptor 0).
    """
    if sys.stdin is None or sys.stdin.closed:
        raise CliError("nothing to read: stdin is closed")
    return sys.stdin.read()


def confirm(question: str, flag: str) -> bool:
    """Ask ``question`` (it ends in ``[y/N]``) on the terminal and return True for y/yes.

    A prompt never reads a closed or piped stdin: without a terminal on stdin the command
    refuses instead of guessing.

    Raises:
        CliError: stdin is not a terminal (the message names ``flag``, which confirms
        without asking).
    """
    if not stdin_is_terminal():
        raise CliError(f"{question.removesuffix(' [y/N] ').rstrip('?')}: not confirmed "
                       f"(stdin is not a terminal to ask on); add {flag} to confirm")
    try:
        answer = input(question)
    except EOFError:
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def pick_conversation(store: Cache, given: str | None) -> str:
    """The conversation a command acts on: ``given`` (an id or a title), else the last one
    open, else the only one in the cache. Returns its id.

    Raises:
        CliError: none was given and the cache has no last or single conversation.
        StoreError: ``given`` matches no conversation, or several.
    """
    if given:
        return store.find_conversation(given).id
    cid = store.get_ui_state().last_conversation_id
    if cid is None:
        convs = store.list_conversations()
        if len(convs) != 1:
            raise CliError("which conversation? add --conversation ID|TITLE")
        cid = convs[0].id
    return cid


def unsent_actions_text(store: Cache) -> str:
    """Why a cache with unsent actions is kept, and how to resolve each one, for ``cache
    clear`` and ``logout --flush`` (sync rule R2): one line per action (``#id kind state``
    and its reason), then only the advice that helps: ``chat-tui sync --once`` while
    some action can still be delivered, ``chat-tui outbox retry|discard ID`` for a failed
    or expired one, and ``--force`` to delete them all."""
    actions = store.outbox_list()
    lines = [f"{len(actions)} unsent action(s) wait in the outbox:"]
    for a in actions:
        what = a.body_preview and f" {a.body_preview!r}"
        reason = a.reason and f" -- {a.reason}"
        lines.append(f"  #{a.outbox_id} {a.kind} {a.state}{what}{reason}")
    waiting = [a for a in actions if a.state in ("failed", "expired")]
    deliverable = [a for a in actions if a.state in ("queued", "sending")]
    if deliverable:
        lines.append("run `chat-tui sync --once` to deliver the queued ones")
    for a in waiting:
        lines.append(f"#{a.outbox_id} needs you: `chat-tui outbox retry {a.outbox_id}` or "
                     f"`chat-tui outbox discard {a.outbox_id}`")
    lines.append("or add --force to delete them with the cache")
    return "\n".join(lines)


def report_recovery(store: Cache) -> None:
    """Tell the user on stderr when an unreadable cache was moved aside (sync rule D4)."""
    if store.recovery is not None:
        print(f"chat-tui: {store.recovery.message}", file=sys.stderr)

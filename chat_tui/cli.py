"""Command line of the ``chat-tui`` client.

``chat-tui`` alone opens the Textual app (``chat_tui.launch:launch``). The subcommands are
headless and useful on their own, for scripts, cron or a systemd timer::

    chat-tui login URL [--username NAME] [--password-stdin]
    chat-tui logout [--flush] [--force]
    chat-tui new TITLE [--assistant] [--member NAME ...]
    chat-tui send [--conversation ID|TITLE] TEXT|-
    chat-tui sync [--once]
    chat-tui status [--json]
    chat-tui export [--conversation ID|TITLE ...] --format md|json
    chat-tui cache clear [--yes] [--force]

``--user NAME`` / ``--server URL`` pick the account when several are logged in. Imports
are lazy so ``import chat_tui.cli`` stays fast (no httpx, no Textual). Exit status: 0 on
success, 1 on a usage or local error, 2 when the server is unreachable, 3 when a login is
needed. Logs go to ``<user log dir>/chat-tui/chat-tui.log``, never to the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_ERROR, EXIT_UNREACHABLE, EXIT_AUTH = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used by ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="chat-tui", description="Offline-first terminal chat client.")
    parser.add_argument("--user", help="account to use (username) when several are logged in")
    parser.add_argument("--server", help="server URL of the account to use")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("login", help="log in and store the token (keyring or 0600 file)")
    p.add_argument("url", help="server URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--username", help="username (asked when missing)")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of stdin")

    p = sub.add_parser("logout", help="revoke the token and forget the account")
    p.add_argument("--flush", action="store_true", help="also delete the account's cache")
    p.add_argument("--force", action="store_true",
                   help="with --flush: delete even while unsent messages exist")

    p = sub.add_parser("new", help="create a conversation (queued; works offline)")
    p.add_argument("title")
    p.add_argument("--assistant", action="store_true", help="add the assistant")
    p.add_argument("--member", action="append", default=[], metavar="NAME",
                   help="a member username (repeatable)")

    p = sub.add_parser("send", help="queue a message and return at once (works offline)")
    p.add_argument("--conversation", "-c", metavar="ID|TITLE",
                   help="conversation id or title (default: the last one used)")
    p.add_argument("text", help="the message, or - to read it from stdin")

    p = sub.add_parser("sync", help="drain the outbox and pull changes")
    p.add_argument("--once", action="store_true", help="exit when done instead of running on")

    p = sub.add_parser("status", help="connectivity, last sync, outbox and its problems")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--offline", action="store_true", help="do not probe the server")

    p = sub.add_parser("export", help="export cached conversations (offline)")
    p.add_argument("--conversation", "-c", action="append", default=[], metavar="ID|TITLE")
    p.add_argument("--format", choices=("md", "json"), required=True)

    p = sub.add_parser("cache", help="manage the local cache")
    cache_sub = p.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    c = cache_sub.add_parser("clear", help="delete the account's cache file")
    c.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    c.add_argument("--force", action="store_true", help="delete even with unsent messages")
    return parser


class CliError(Exception):
    """A readable error; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_ERROR):
        super().__init__(message)
        self.code = code


def _account(args: argparse.Namespace):
    from chat_tui.config import AccountError, pick_account

    try:
        return pick_account(args.user, args.server)
    except (AccountError, ValueError) as exc:
        raise CliError(str(exc)) from exc


def _engine(args: argparse.Namespace):
    from chat_tui.config import load_settings
    from chat_tui.sync.engine import Engine

    try:
        settings = load_settings()
    except ValueError as exc:
        raise CliError(f"config: {exc}") from exc
    return Engine.for_account(_account(args), settings)


def _open_store(engine) -> None:
    from chat_tui.store import SchemaTooNew

    try:
        engine.store.ensure_open()
    except SchemaTooNew as exc:
        raise CliError(str(exc)) from exc
    _report_recovery(engine.store)


def _report_recovery(store) -> None:
    """Tell the user when an unreadable cache was moved aside (sync rule D4)."""
    if store.recovery is not None:
        print(f"chat-tui: {store.recovery.message}", file=sys.stderr)


# ---------------------------------------------------------------------- commands


def cmd_login(args: argparse.Namespace) -> int:
    """``chat-tui login URL [--username NAME] [--password-stdin]``: ``POST /v1/login`` and
    store the token in the OS keyring, else in a 0600 file (docs/api.md, login); clears a
    remembered 401 pause in an existing cache.

    Returns:
        ``EXIT_OK``.

    Raises:
        CliError: malformed URL, empty username/password, wrong credentials (``EXIT_AUTH``),
        server unreachable (``EXIT_UNREACHABLE``), or another refusal (``EXIT_ERROR``).
    """
    import asyncio
    import getpass
    import socket

    from chat_tui.api import ApiClient, ApiError, TransientError, Unauthorized
    from chat_tui.config import Account, save_account, store_token
    from chat_tui.config.accounts import normalize_url

    try:
        url = normalize_url(args.url)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    username = args.username or input("username: ").strip()
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
    if not username or not password:
        raise CliError("a username and a password are needed")

    async def go():
        async with ApiClient(url) as api:
            return await api.login(username, password, f"chat-tui on {socket.gethostname()}")

    try:
        result = asyncio.run(go())
    except Unauthorized as exc:
        raise CliError("wrong username or password", EXIT_AUTH) from exc
    except TransientError as exc:
        raise CliError(f"server unreachable: {exc.reason}", EXIT_UNREACHABLE) from exc
    except ApiError as exc:
        raise CliError(f"login refused: {exc.reason}") from exc
    account = Account(url, result.username, result.user_id, result.device_id)
    where = store_token(account, result.access_token)
    save_account(account)
    if account.db_path.exists():
        from chat_tui.store import Store

        store = Store(account.db_path, account.username)
        try:
            store.open()
            store.set_auth_failed(False)
        finally:
            store.close()
    print(f"logged in as {account.username} on {url} (token stored in the {where})")
    return EXIT_OK


@contextlib.contextmanager
def _cache_unused(path: Path) -> Iterator[None]:
    """Hold the account's engine lock (``<cache>.lock``, sync rule D5) while the cache file is
    checked and deleted, so no running app or ``chat-tui sync`` has it open (sync rule R2).

    Raises:
        CliError: another process runs the engine of this account (its pid in the text).
    """
    from chat_tui.sync.lock import AnotherEngineRunning, EngineLock

    lock = EngineLock(path.with_name(path.name + ".lock"))
    try:
        lock.acquire()
    except AnotherEngineRunning as exc:
        raise CliError(f"{exc}; the cache is in use and was not deleted") from exc
    try:
        yield
    finally:
        lock.release()


def cmd_logout(args: argparse.Namespace) -> int:
    """``chat-tui logout [--flush [--force]]``: revoke the token on the server (a failure to
    reach it only warns), forget it and the account; with ``--flush`` also delete the cache
    (sync rule R2).

    Returns:
        ``EXIT_OK``.

    Raises:
        CliError: no such account; ``--flush`` while unsent actions wait (without
        ``--force``) or while another process runs the account's engine (nothing is
        changed then).
    """
    account = _account(args)
    if not args.flush:
        return _logout(args, account)
    with _cache_unused(account.db_path):
        return _logout(args, account)


def _logout(args: argparse.Namespace, account) -> int:
    import asyncio

    from chat_tui.api import ApiClient, ApiError
    from chat_tui.config import delete_token, load_token, remove_account
    from chat_tui.store import Store, delete_cache_file

    if args.flush and account.db_path.exists() and not args.force:
        store = Store(account.db_path, account.username)
        try:
            store.open()
            unsent = store.has_unsent()
        finally:
            store.close()
        if unsent:
            raise CliError("unsent messages are waiting in the outbox: run `chat-tui sync` "
                           "first, or add --force to delete them")
    token = load_token(account)
    if token:
        async def go():
            async with ApiClient(account.server_url, token) as api:
                await api.logout()

        try:
            asyncio.run(go())
        except ApiError as exc:
            print(f"warning: could not revoke the token on the server ({exc.reason}); "
                  "it is forgotten locally", file=sys.stderr)
    delete_token(account)
    remove_account(account)
    if args.flush:
        delete_cache_file(account.db_path)
        print(f"logged out {account.username}; cache deleted")
    else:
        print(f"logged out {account.username}")
    return EXIT_OK


def cmd_new(args: argparse.Namespace) -> int:
    """``chat-tui new TITLE [--assistant] [--member NAME ...]``: create a conversation
    locally and queue its create (outbox rule 2); prints its id; works offline.

    Returns:
        ``EXIT_OK``.

    Raises:
        CliError: no account, a title of 0 or over 200 characters, a cache from a newer
        chat-tui.
    """
    from chat_tui.store import StoreError

    engine = _engine(args)
    _open_store(engine)
    try:
        cid = engine.create_conversation(args.title, args.member, args.assistant)
        engine.store.set_last_conversation(cid)
    except StoreError as exc:
        raise CliError(str(exc)) from exc
    finally:
        engine.store.close()
    print(cid)
    return EXIT_OK


def cmd_send(args: argparse.Namespace) -> int:
    """``chat-tui send [--conversation ID|TITLE] TEXT|-``: queue a message (outbox rule 1;
    ``-`` reads the text from stdin) and print its id at once; works offline. Without
    ``--conversation`` the last used (or only) conversation is meant.

    Returns:
        ``EXIT_OK``.

    Raises:
        CliError: no account, unknown or ambiguous conversation, empty text or over 65,536
        bytes (nothing is queued then).
    """
    from chat_tui.store import StoreError

    text = sys.stdin.read() if args.text == "-" else args.text
    if args.text == "-":
        text = text.rstrip("\n")
    engine = _engine(args)
    _open_store(engine)
    store = engine.store
    try:
        if args.conversation:
            cid = store.find_conversation(args.conversation).id
        else:
            cid = store.get_ui_state().last_conversation_id
            if cid is None:
                convs = store.list_conversations()
                if len(convs) != 1:
                    raise CliError("which conversation? add --conversation ID|TITLE")
                cid = convs[0].id
        mid = engine.send(cid, text)
        store.set_last_conversation(cid)
    except StoreError as exc:
        raise CliError(str(exc)) from exc
    finally:
        store.close()
    print(mid)
    return EXIT_OK


def cmd_sync(args: argparse.Namespace) -> int:
    """``chat-tui sync [--once]``: run the engine (drain the outbox and pull changes);
    with ``--once`` until everything due is sent and one sync response is applied
    (``Engine.sync_once``), otherwise until SIGINT/SIGTERM.

    Returns:
        ``EXIT_OK``; ``EXIT_AUTH`` after a 401 (login again); ``EXIT_UNREACHABLE`` when the
        server could not be reached (everything stays queued).

    Raises:
        CliError: another process runs this account's engine (sync rule D5), or the cache
        comes from a newer chat-tui.
    """
    import asyncio
    import signal

    engine = _engine(args)
    if args.once:
        try:
            report = asyncio.run(engine.sync_once())
        except Exception as exc:
            from chat_tui.store import SchemaTooNew
            from chat_tui.sync.engine import AnotherEngineRunning

            if isinstance(exc, SchemaTooNew | AnotherEngineRunning):
                raise CliError(str(exc)) from exc
            raise
        _report_recovery(engine.store)
        counts = ", ".join(f"{k} {v}" for k, v in report.counts.items() if v) or "empty"
        print(f"sent {report.sent}; {'synced' if report.synced else 'not synced'}; "
              f"outbox: {counts}")
        if report.auth_failed:
            print("login required: run `chat-tui login URL`", file=sys.stderr)
            return EXIT_AUTH
        if not report.reachable:
            print("server unreachable; everything stays queued", file=sys.stderr)
            return EXIT_UNREACHABLE
        return EXIT_OK

    async def run_forever() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await engine.start()
        _report_recovery(engine.store)
        try:
            await stop.wait()
        finally:
            await engine.stop()

    from chat_tui.store import SchemaTooNew
    from chat_tui.sync.engine import AnotherEngineRunning

    try:
        asyncio.run(run_forever())
    except (SchemaTooNew, AnotherEngineRunning) as exc:
        raise CliError(str(exc)) from exc
    return EXIT_OK


def _status_data(args: argparse.Namespace) -> dict[str, Any]:
    import asyncio

    from chat_tui.config import token_backend

    engine = _engine(args)
    account = _account(args)
    _open_store(engine)
    store = engine.store
    try:
        connectivity = "unknown"
        if not args.offline:
            from chat_tui.api import ApiClient, ApiError

            async def probe() -> bool:
                async with ApiClient(account.server_url,
                                     probe_timeout=engine.settings.probe_timeout) as api:
                    return await api.health()

            try:
                connectivity = "online" if asyncio.run(probe()) else "offline"
            except ApiError:
                connectivity = "offline"
        last = store.last_synced_at()
        return {
            "account": {"username": account.username, "server": account.server_url,
                        "token": token_backend(account)},
            "connectivity": connectivity,
            "work_offline": store.get_ui_state().work_offline,
            "login_required": store.auth_failed() or token_backend(account) == "none",
            "last_synced_at": last.isoformat().replace("+00:00", "Z") if last else None,
            "outbox": store.outbox_counts(),
            "problems": [
                {"message_id": p.message_id, "conversation_id": p.conversation_id,
                 "state": p.state, "reason": p.reason, "preview": p.body_preview,
                 "kind": p.kind, "outbox_id": p.outbox_id}
                for p in store.problems()
            ],
        }
    finally:
        store.close()


def cmd_status(args: argparse.Namespace) -> int:
    """``chat-tui status [--json]``: account, connectivity, whether the app's "work offline"
    switch is on (sync rule C3), last sync time, outbox counts by state and every failed,
    blocked or expired action with its reason (docs/sync.md).

    Returns:
        ``EXIT_OK``.

    Raises:
        CliError: no account, or a cache from a newer chat-tui.
    """
    data = _status_data(args)
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    acc = data["account"]
    print(f"account:      {acc['username']} on {acc['server']} (token: {acc['token']})")
    print(f"connectivity: {data['connectivity']}"
          + ("  -- login required: run `chat-tui login`" if data["login_required"] else "")
          + ("  -- work offline is on in the app (ctrl+o there turns it off)"
             if data["work_offline"] else ""))
    print(f"last sync:    {data['last_synced_at'] or 'never'}")
    print("outbox:       " + ", ".join(f"{k} {v}" for k, v in data["outbox"].items()))
    for p in data["problems"]:
        what = p["message_id"] or f"{p['kind']} #{p['outbox_id']}"
        print(f"  {p['state']:8} {what}  {p['preview']!r}\n           {p['reason']}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """``chat-tui export [--conversation ID|TITLE ...] --format md|json``: print cached
    conversations and their messages, oldest first, from the cache only (offline).

    Returns:
        ``EXIT_OK``.

    Raises:
        CliError: no account, or an unknown/ambiguous conversation.
    """
    from chat_tui.store import StoreError

    engine = _engine(args)
    _open_store(engine)
    store = engine.store
    try:
        ids = [store.find_conversation(c).id for c in args.conversation] or None
        data = store.export(ids)
    except StoreError as exc:
        raise CliError(str(exc)) from exc
    finally:
        store.close()
    if args.format == "json":
        print(json.dumps({"conversations": data}, indent=2, ensure_ascii=False))
        return EXIT_OK
    for conv in data:
        print(f"# {conv['title']}\n\nMembers: {', '.join(conv['members'])}\n")
        for m in conv["messages"]:
            body = "*(deleted)*" if m["deleted"] else m["body"]
            flag = f" ({m['state']})" if m["state"] not in (None, "sent", "read") else ""
            edited = " (edited)" if m["edited"] else ""
            print(f"**{m['author']}** {m['created_at']}{edited}{flag}\n\n{body}\n")
    return EXIT_OK


def cmd_cache(args: argparse.Namespace) -> int:
    """``chat-tui cache clear [--yes] [--force]``: delete the account's cache file after a
    confirmation (sync rule R2).

    Returns:
        ``EXIT_OK`` (deleted, or nothing to delete) or ``EXIT_ERROR`` (not confirmed).

    Raises:
        CliError: unsent actions wait (without ``--force``), or another process runs the
        account's engine (the file is in use); nothing is deleted then.
    """
    account = _account(args)
    path = account.db_path
    if not path.exists():
        print("no cache to clear")
        return EXIT_OK
    with _cache_unused(path):
        return _clear_cache(args, account, path)


def _clear_cache(args: argparse.Namespace, account, path: Path) -> int:
    from chat_tui.store import Store, delete_cache_file

    store = Store(path, account.username)
    try:
        store.open()
        unsent = store.has_unsent()
    finally:
        store.close()
    if unsent and not args.force:
        raise CliError("unsent messages are waiting in the outbox: run `chat-tui sync` "
                       "first, or add --force to delete them")
    if not args.yes:
        answer = input(f"delete the cache of {account.username} on {account.server_url} "
                       f"({path})? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("kept")
            return EXIT_ERROR
    delete_cache_file(path)
    print(f"deleted {path}")
    return EXIT_OK


COMMANDS = {"login": cmd_login, "logout": cmd_logout, "new": cmd_new, "send": cmd_send,
            "sync": cmd_sync, "status": cmd_status, "export": cmd_export, "cache": cmd_cache}


def run_app(args: argparse.Namespace) -> int:
    """``chat-tui`` with no subcommand: the Textual app, imported lazily."""
    from chat_tui.launch import launch

    return launch(args)


_APP_OPTIONS = ("--user", "--server")


def _app_args(argv: list[str]) -> argparse.Namespace | None:
    """The arguments of ``chat-tui`` with no subcommand, when ``argv`` holds nothing but
    ``--user NAME`` / ``--server URL`` (also ``--user=NAME``), each at most once; None
    for anything else (the full parser then reports help, errors and subcommands).

    Building the full parser (every subcommand) costs ~8 ms of every start of the app
    (benchmarks/NOTES.md, fix 21); these two options need none of it."""
    values: dict[str, str | None] = {"user": None, "server": None}
    rest = list(argv)
    while rest:
        token = rest.pop(0)
        name, eq, value = token.partition("=")
        if name not in _APP_OPTIONS or values[name[2:]] is not None:
            return None
        if not eq:
            if not rest or rest[0].startswith("-"):
                return None
            value = rest.pop(0)
        if not value:
            return None
        values[name[2:]] = value
    return argparse.Namespace(command=None, **values)


def main(argv: list[str] | None = None) -> int:
    """Run ``chat-tui``. Returns the process exit status (int)."""
    app_args = _app_args(sys.argv[1:] if argv is None else argv)
    if app_args is not None:
        return run_app(app_args)
    args = build_parser().parse_args(argv)
    if args.command is None:
        return run_app(args)
    from chat_tui.config.logfile import setup_logging

    setup_logging()
    try:
        return COMMANDS[args.command](args)
    except CliError as exc:
        print(f"chat-tui: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

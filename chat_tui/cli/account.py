"""The account commands: ``chat-tui login``, ``chat-tui logout`` and ``chat-tui status``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from chat_tui.cli.base import (
    EXIT_AUTH,
    EXIT_OK,
    EXIT_UNREACHABLE,
    CliError,
    Target,
    engine_of,
    login_command,
    network_engine,
    open_store,
    stdin_is_terminal,
    target_of,
    unsent_actions_text,
)
from chat_tui.cli.cache import cache_unused

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.config import Account


def cmd_login(args: argparse.Namespace) -> int:
    """``chat-tui login URL [--username NAME] [--password-stdin]``: detect the kind of
    server first (:func:`_detect`: chat-tui, or a Matrix homeserver, also by its server
    name through ``.well-known``), then log in (``POST /v1/login``, or Matrix's ``POST
    /login`` with a password: the account's username is then its Matrix user id) and
    store the token in the OS keyring, else in a 0600 file (docs/api.md, login). The
    account gets its own cache file; a remembered 401 pause in an existing one is
    cleared.

    Returns:
        ``EXIT_OK``.

    Raises:
        CliError: malformed URL, neither kind of server, empty username/password, wrong
        credentials (``EXIT_AUTH``), server unreachable (``EXIT_UNREACHABLE``), or
        another refusal (``EXIT_ERROR``).
    """
    import asyncio
    import getpass
    import socket

    from chat_tui.api import ApiError, TransientError, Unauthorized
    from chat_tui.api.backends import make_backend
    from chat_tui.config import Account, save_account, store_token
    from chat_tui.config.accounts import normalize_url

    found = _detect(args.url)
    try:
        url = normalize_url(found.base_url)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    tty = stdin_is_terminal()
    if not args.username and not tty:
        raise CliError("no username: add --username NAME (stdin is not a terminal to ask on)")
    if not args.password_stdin and not tty:
        raise CliError("no password: pipe it with --password-stdin (stdin is not a terminal "
                       "to ask on)")
    username = args.username or input("username: ").strip()
    if args.password_stdin:
        if sys.stdin is None:
            raise CliError("--password-stdin: stdin is closed")
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("password: ")
    if not username or not password:
        raise CliError("a username and a password are needed")

    async def go():
        async with make_backend(found.kind, url) as api:
            return await api.login(username, password, f"chat-tui on {socket.gethostname()}")

    try:
        result = asyncio.run(go())
    except Unauthorized as exc:
        raise CliError("wrong username or password", EXIT_AUTH) from exc
    except TransientError as exc:
        raise CliError(f"server unreachable: {exc.reason}", EXIT_UNREACHABLE) from exc
    except ApiError as exc:
        raise CliError(f"login refused: {exc.reason}") from exc
    account = Account(url, result.username, result.user_id, result.device_id, found.kind)
    where = store_token(account, result.access_token)
    save_account(account)
    if account.db_path.exists():
        from chat_tui.store import Cache

        store = Cache(account.db_path, account.username)
        try:
            store.open()
            store.set_auth_failed(False)
        finally:
            store.close()
    print(f"logged in as {account.username} on {url}"
          + (" (Matrix; end-to-end encrypted rooms and media are not supported yet)"
             if account.is_matrix else "")
          + f" (token stored in the {_token_place(account, where)})")
    return EXIT_OK


def _detect(url: str) -> Any:
    """The kind of server at ``url`` (:func:`chat_tui.api.detect.detect`: a chat-tui
    server, a Matrix homeserver, or a Matrix server name whose ``.well-known`` names its
    homeserver), asked before any password.

    Raises:
        CliError: unreachable (``EXIT_UNREACHABLE``), neither kind of server or not a URL
        (``EXIT_ERROR``).
    """
    import asyncio

    from chat_tui.api import PermanentError, TransientError
    from chat_tui.api.detect import detect

    try:
        return asyncio.run(detect(url))
    except TransientError as exc:
        raise CliError(f"server unreachable: {exc.reason}", EXIT_UNREACHABLE) from exc
    except PermanentError as exc:
        raise CliError(exc.reason) from exc


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
    target = target_of(args)
    if not args.flush:
        return _logout(args, target)
    with cache_unused(target.db_path):
        return _logout(args, target)


def _logout(args: argparse.Namespace, target: Target) -> int:
    import asyncio

    from chat_tui.api import ApiError
    from chat_tui.store import Cache, delete_cache_file

    if args.flush and target.db_path.exists() and not args.force:
        from chat_tui.store import CacheLocked

        store = Cache(target.db_path, target.username)
        try:
            store.open()
            unsent = unsent_actions_text(store) if store.has_unsent() else ""
        except CacheLocked as exc:
            raise CliError(f"{exc}; `logout --flush --force` deletes it unread") from exc
        finally:
            store.close()
        if unsent:
            raise CliError(f"the cache is kept: {unsent}")
    if target.account is None:
        return _logout_local(args, target)
    account = target.account
    from chat_tui.config import delete_token, load_token, remove_account, token_backend

    where = _token_place(account, token_backend(account))
    token = load_token(account)
    if token:
        async def go():
            from chat_tui.api.backends import make_backend

            async with make_backend(account.kind, account.server_url,
                                    token) as api:
                await api.logout()

        try:
            asyncio.run(go())
        except ApiError as exc:
            print(f"warning: could not revoke the token on the server ({exc.reason}); "
                  "it is forgotten locally", file=sys.stderr)
    delete_token(account)
    remove_account(account)
    if args.flush:
        from chat_tui.config.cachekeys import delete_cache_key

        delete_cache_file(account.db_path)
        delete_cache_key(account.db_path)
        print(f"logged out {target.label}; token removed from the {where}; "
              f"cache {account.db_path} deleted")
    else:
        print(f"logged out {target.label}; token removed from the {where}")
    return EXIT_OK


def _token_place(account: Account, backend: str) -> str:
    """Where the token of ``account`` is, for messages: ``keyring entry "chat-tui" /
    "<key>"``, ``file <path>`` or ``nowhere``."""
    from chat_tui.config.secrets import SERVICE, _token_file

    if backend == "keyring":
        return f'keyring (service "{SERVICE}", entry "{account.key}")'
    if backend == "file":
        return f"file {_token_file(account)}"
    return "nowhere (there was none)"


def _logout_local(args: argparse.Namespace, target: Target) -> int:
    """Logout of the local account: the embedded server is started to revoke the device
    token, which ``local/token`` then forgets (the app logs in afresh on its next start);
    with ``--flush`` the local cache goes too. The server's database stays."""
    import asyncio

    from chat_tui.api import ApiClient, ApiError
    from chat_tui.store import delete_cache_file

    assert target.directory is not None
    token_file = target.directory / "token"

    async def revoke() -> None:
        async with network_engine(args) as engine:
            # the start checked the kept token (or logged in afresh and kept the new one)
            token = token_file.read_text(encoding="utf-8").strip()
            async with ApiClient(engine.base_url, token) as api:
                await api.logout()

    if token_file.exists():
        try:
            asyncio.run(revoke())
        except (CliError, ApiError, OSError) as exc:
            print(f"warning: could not revoke the token on the local server ({exc}); "
                  "it is forgotten locally", file=sys.stderr)
    token_file.unlink(missing_ok=True)
    done = f"logged out {target.label}; token file {token_file} deleted"
    if args.flush:
        from chat_tui.config.cachekeys import delete_cache_key

        delete_cache_file(target.db_path)
        delete_cache_key(target.db_path)
        done += f"; cache {target.db_path} deleted"
    print(done)
    return EXIT_OK


def status_data(args: argparse.Namespace) -> dict[str, Any]:
    """What ``chat-tui status --json`` prints: ``account`` (``username``, ``server``,
    ``token`` backend, ``local``: True for the default local account, ``cache``: the cache
    file), ``connectivity`` (``online``/``offline``, ``unknown`` with ``--offline``; for the
    local account the embedded server is started to answer the probe), ``work_offline``, ``login_required``, ``last_synced_at`` (ISO 8601 UTC
    with ``Z``, or None), ``outbox`` (count by state) and ``problems`` (one dict per failed,
    blocked or expired action).

    Raises:
        CliError: no account, or a cache from a newer chat-tui.
    """
    import asyncio

    from chat_tui.config import token_backend
    from chat_tui.config.cachekeys import key_location

    target = target_of(args)
    account = target.account
    connectivity = "unknown"
    if not args.offline:
        from chat_tui.api import ApiError
        from chat_tui.api.backends import make_backend

        async def probe() -> bool:
            async with network_engine(args) as net:
                async with make_backend(
                        net.kind, net.base_url,
                        probe_timeout=net.settings.probe_timeout) as api:
                    return await api.health()

        try:
            connectivity = "online" if asyncio.run(probe()) else "offline"
        except (ApiError, CliError):
            connectivity = "offline"
    engine = engine_of(args)
    open_store(engine)
    store = engine.store
    try:
        if account is None:
            assert target.directory is not None
            server = f"local (embedded, {target.directory / 'server.db'})"
            token = "file" if (target.directory / "token").exists() else "none"
            login_required = False  # the local account logs in by itself
        else:
            server, token = account.server_url, token_backend(account)
            login_required = store.auth_failed() or token == "none"
        last = store.last_synced_at()
        return {
            "account": {"username": target.username, "server": server, "token": token,
                        "local": account is None, "cache": str(target.db_path)},
            "connectivity": connectivity,
            "cache": {"path": str(target.db_path), **key_location(target.db_path)},
            "work_offline": store.get_ui_state().work_offline,
            "login_required": login_required,
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
    """``chat-tui status [--json] [--offline]``: account, connectivity, whether the app's
    "work offline" switch is on (sync rule C3), last sync time, outbox counts by state and
    every failed, blocked or expired action with its reason (docs/sync.md).

    Returns:
        ``EXIT_OK``.

    Raises:
        CliError: no account, or a cache from a newer chat-tui.
    """
    data = status_data(args)
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    acc = data["account"]
    print(f"account:      {acc['username']} on {acc['server']} (token: {acc['token']})")
    print(f"connectivity: {data['connectivity']}"
          + (f"  -- login required: run `{login_command(target_of(args))}`"
             if data["login_required"] else "")
          + ("  -- work offline is on in the app (ctrl+o there turns it off)"
             if data["work_offline"] else ""))
    cache = data["cache"]
    where = {"keyring": "in the OS keyring", "passphrase": "derived from a passphrase",
             "file": f"in the key file {cache['key_file']}"}.get(cache["key"] or "", "")
    print(f"cache:        {cache['path']} "
          + (f"(encrypted, key {where})" if cache["encrypted"] else
             "(not encrypted: `chat-tui cache encrypt` encrypts it)"))
    print(f"last sync:    {data['last_synced_at'] or 'never'}")
    print("outbox:       " + ", ".join(f"{k} {v}" for k, v in data["outbox"].items()))
    for p in data["problems"]:
        what = p["message_id"] or f"{p['kind']} #{p['outbox_id']}"
        print(f"  {p['state']:8} {what}  {p['preview']!r}\n           {p['reason']}")
    return EXIT_OK

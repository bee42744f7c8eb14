"""``chat-tui-server``: serve, add-user, import.

Every subcommand takes ``--db PATH|URL`` (default: ``server.db`` in the user data dir).
Exit status: 0 on success, 1 on a reported failure (bad input, import errors), 2 on usage.
"""

from __future__ import annotations

import argparse
import getpass
import os
import socket
import sys
from pathlib import Path

from chat_tui.server import __version__
from chat_tui.server.paths import default_db_path


def _db_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--db",
        default=None,
        metavar="PATH|URL",
        help="SQLite file or database URL (postgresql://user:pass@host/db); "
        "default: server.db in the user data directory",
    )
    return parent


#: ``serve``'s limits, in their ``--help`` order: (flag, type, default, metavar, help).
_SERVE_LIMITS: tuple[tuple[str, type, float, str, str], ...] = (
    ("--rate-limit", float, 20.0, "N",
     "sends per second per token (burst 3N); 0 disables (default: 20)"),
    ("--login-failures-per-account", int, 10, "N",
     "failed logins of one username within --login-window before logins of it "
     "answer 429; 0 disables (default: 10)"),
    ("--login-failures-per-address", int, 100, "N",
     "failed logins from one client address within --login-window before logins "
     "from it answer 429; 0 disables (default: 100)"),
    ("--login-window", float, 900.0, "SECONDS",
     "how long a failed login counts (default: 900)"),
    ("--header-timeout", float, 10.0, "SECONDS",
     "seconds a client has to send a whole request head (default: 10)"),
    ("--body-timeout", float, 30.0, "SECONDS",
     "seconds a client has to send a whole request body (default: 30)"),
    ("--keep-alive", int, 5, "SECONDS",
     "seconds an idle connection stays open between requests (default: 5)"),
    ("--max-connections", int, 1000, "N",
     "open connections at most; more are closed at once (default: 1000)"),
    ("--workers", int, 1, "N",
     "server processes sharing the port (default: 1); above 1 needs PostgreSQL "
     "(--db postgresql://...), through which the processes share wake-ups, token "
     "revocations and the assistant's work; a SQLite database is served by one process"),
)

#: ``serve``'s assistant times, after its other assistant options (as ``_SERVE_LIMITS``).
_SERVE_ASSISTANT_TIMES: tuple[tuple[str, type, float, str, str], ...] = (
    ("--assistant-lease", float, 10.0, "SECONDS",
     "how long a server process keeps a conversation's assistant replies without "
     "renewing; another process takes over a crashed one's after this (default: 10)"),
    ("--assistant-timeout", float, 60.0, "SECONDS",
     "longest an assistant reply may take before it ends as an error (default: 60)"),
)


def _add_numbers(parser: argparse.ArgumentParser,
                 options: tuple[tuple[str, type, float, str, str], ...]) -> None:
    """Add each numeric option of ``options`` (flag, type, default, metavar, help) to
    ``parser``, in that order."""
    for flag, kind, default, metavar, text in options:
        parser.add_argument(flag, type=kind, default=default, metavar=metavar, help=text)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``chat-tui-server``."""
    parser = argparse.ArgumentParser(
        prog="chat-tui-server", description="Reference server of chat-tui (wire API v1)."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True)
    parent = _db_parent()

    serve = sub.add_parser("serve", parents=[parent], help="run the HTTP server")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    serve.add_argument("--port", type=int, default=8765, help="port; 0 picks a free one")
    _add_numbers(serve, _SERVE_LIMITS)
    serve.add_argument(
        "--log-sql",
        action="store_true",
        help="log every SQL statement to the log file (debugging; slow)",
    )
    serve.add_argument("--assistant", choices=["echo", "openai"], default="echo",
                       help="who answers in conversations with the assistant: echo (built "
                       "in, repeats the text) or openai (an OpenAI-compatible endpoint; "
                       "needs OPENAI_API_KEY) (default: echo)")
    serve.add_argument(
        "--providers",
        type=Path,
        default=None,
        metavar="FILE.toml",
        help="the assistant's OpenAI-compatible providers and default model "
        "(implies --assistant openai; see README)",
    )
    serve.add_argument("--assistant-base-url", default=None, metavar="URL",
                       help="base URL of the OpenAI-compatible endpoint "
                       "(default: the OpenAI API)")
    serve.add_argument("--assistant-model", default="gpt-4o-mini", metavar="NAME",
                       help="model name sent to that endpoint (default: gpt-4o-mini)")
    _add_numbers(serve, _SERVE_ASSISTANT_TIMES)

    add_user = sub.add_parser(
        "add-user", parents=[parent], help="create a user, or set the password of one"
    )
    add_user.add_argument("name", help="the username ([a-z0-9_.-], 1 to 64 characters)")
    add_user.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of stdin",
    )
    add_user.add_argument(
        "--keep-tokens",
        action="store_true",
        help="when resetting a password, keep the user's device tokens valid "
        "(default: a reset revokes them all)",
    )

    imp = sub.add_parser("import", parents=[parent], help="import conversations from JSON Lines")
    imp.add_argument("file", type=Path, metavar="FILE.jsonl",
                     help="one conversation per line (docs/api.md describes the format)")
    return parser


def _db_target(value: str | None) -> str | Path:
    return value if value else default_db_path()


def _fail(message: str) -> int:
    print(f"chat-tui-server: {message}", file=sys.stderr)
    return 1


def cmd_serve(args: argparse.Namespace) -> int:
    """Run uvicorn (``--workers N``: N processes on one socket, PostgreSQL only; exit
    status 2 on SQLite); print ``chat-tui-server listening on http://HOST:PORT`` once
    ready."""
    import uvicorn

    from chat_tui.server.app import create_app
    from chat_tui.server.db import SchemaError, database_url, open_and_migrate
    from chat_tui.server.logsetup import configure_logging
    from chat_tui.server.net import listen_socket
    from chat_tui.server.protocol import uvicorn_options
    from chat_tui.server.settings import (
        AssistantSettings,
        ConnectionLimits,
        LoginLimits,
        Settings,
        load_providers_file,
    )
    from chat_tui.server.workers import database_allows_workers, run_workers

    if args.providers is not None:
        try:
            assistant = load_providers_file(args.providers)
        except ValueError as exc:
            return _fail(str(exc))
    elif args.assistant == "openai" and not os.environ.get("OPENAI_API_KEY"):
        return _fail("--assistant openai needs the OPENAI_API_KEY environment variable")
    else:
        assistant = AssistantSettings(
            kind=args.assistant,
            base_url=args.assistant_base_url,
            model=args.assistant_model,
            timeout=args.assistant_timeout,
        )
    if args.assistant_lease <= 0:
        return _fail("--assistant-lease must be more than 0 seconds")
    assistant.lease = args.assistant_lease
    log_path = configure_logging(sql=args.log_sql)
    settings = Settings(
        db=_db_target(args.db),
        rate_limit=args.rate_limit,
        logins=LoginLimits(
            per_account=args.login_failures_per_account,
            per_address=args.login_failures_per_address,
            window=args.login_window,
        ),
        connections=ConnectionLimits(
            header_timeout=args.header_timeout,
            body_timeout=args.body_timeout,
            keep_alive=args.keep_alive,
            max_connections=args.max_connections,
        ),
        assistant=assistant,
    )
    workers = args.workers
    if workers < 1:
        return _fail("--workers must be at least 1")
    if workers > 1 and not database_allows_workers(database_url(settings.db)):
        print(
            "chat-tui-server: --workers above 1 needs PostgreSQL (--db postgresql://...): "
            "a SQLite database is served by one process, which serialises its writes "
            "itself and holds the long-polls, the token cache and the assistant's work",
            file=sys.stderr,
        )
        return 2
    if workers > 1:
        try:  # schema errors and an unreachable database show before listening
            open_and_migrate(settings.db).close()
        except SchemaError as exc:
            return _fail(str(exc))
        except Exception as exc:
            return _fail(f"cannot open the database: {exc}")
        app = None
    else:
        try:
            app = create_app(settings)
        except SchemaError as exc:
            return _fail(str(exc))
        except Exception as exc:  # cannot open the database: say so before listening
            return _fail(f"cannot open the database: {exc}")

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    try:
        sock = listen_socket(args.host, args.port, 2048, inheritable=True)
    except OSError as exc:
        return _fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror}")
    port = sock.getsockname()[1]
    shown_host = f"[{args.host}]" if family == socket.AF_INET6 else args.host

    def announce_listening() -> None:
        print(f"chat-tui-server listening on http://{shown_host}:{port}", flush=True)
        print(f"chat-tui-server log file: {log_path}", file=sys.stderr, flush=True)

    def serve(app, started) -> None:
        notifier = app.state.context.notifier

        class Server(uvicorn.Server):
            async def startup(self, sockets=None):  # type: ignore[override]
                await super().startup(sockets=sockets)
                if self.started and not self.should_exit:
                    started()

            async def shutdown(self, sockets=None):  # type: ignore[override]
                notifier.close()  # answer held long-polls now instead of after their timeout
                await super().shutdown(sockets=sockets)

        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
            backlog=2048,
            **uvicorn_options(settings.connections),
        )
        Server(config).run(sockets=[sock])

    if app is not None:
        serve(app, announce_listening)
        return 0
    status = run_workers(workers, lambda announce: serve(create_app(settings), announce),
                         announce_listening)
    if status != 0:
        return _fail(f"a server worker could not start; the log file says why: {log_path}")
    return 0


def _read_password(from_stdin: bool) -> str | None:
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    first = getpass.getpass("Password: ")
    second = getpass.getpass("Password (again): ")
    if first != second:
        print("chat-tui-server: the passwords differ", file=sys.stderr)
        return None
    return first


def cmd_add_user(args: argparse.Namespace) -> int:
    """Create user NAME with a password, or reset the password of an existing user (which
    revokes every token of that user unless ``--keep-tokens``)."""
    from chat_tui.server.data import ServerDB, normalize_username
    from chat_tui.server.db import SchemaError, is_sqlite, open_and_migrate

    try:
        name = normalize_username(args.name)
    except ValueError as exc:
        return _fail(str(exc))
    password = _read_password(args.password_stdin)
    if password is None:
        return 1
    if not password:
        return _fail("the password must not be empty")
    try:
        db = open_and_migrate(_db_target(args.db))
        ServerDB(db).users.set_password(name, password, keep_tokens=args.keep_tokens)
    except (SchemaError, ValueError) as exc:
        return _fail(str(exc))
    if not args.keep_tokens and is_sqlite(db):
        from chat_tui.server.tokens import mark_revoked

        mark_revoked(db.database)  # a server running on this file drops them (rule P2)
    print(f"user {name} is ready")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Import FILE.jsonl; prints a summary, and one line per rejected input line."""
    from chat_tui.server.data import ServerDB
    from chat_tui.server.db import SchemaError, open_and_migrate
    from chat_tui.server.importer import import_file

    if not args.file.is_file():
        return _fail(f"{args.file}: no such file")
    try:
        data = ServerDB(open_and_migrate(_db_target(args.db)))
    except SchemaError as exc:
        return _fail(str(exc))
    report = import_file(data.imports, args.file)
    for number, reason in report.errors:
        print(f"{args.file}:{number}: {reason}", file=sys.stderr)
    print(
        f"imported {report.lines - len(report.errors)} of {report.lines} conversations: "
        f"{report.messages_added} new messages in {report.conversations_changed} conversations"
    )
    return 1 if report.errors else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``chat-tui-server``; returns the exit status."""
    args = build_parser().parse_args(argv)
    handler = {"serve": cmd_serve, "add-user": cmd_add_user, "import": cmd_import}[args.command]
    return handler(args)


if __name__ == "__main__":
    raise SystemExit(main())

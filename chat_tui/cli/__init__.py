"""Command line of the ``chat-tui`` client (entry point :func:`main`).

``chat-tui`` alone opens the Textual app (:func:`chat_tui.launch.launch`). The subcommands
are headless and useful on their own, for scripts, cron or a systemd timer::

    chat-tui login URL [--username NAME] [--password-stdin]
    chat-tui logout [--flush] [--force]
    chat-tui new TITLE [--assistant [--model M] [--system TEXT|-]] [--member NAME ...]
    chat-tui set [--conversation ID|TITLE] [--title T] [--model M] [--system TEXT|-]
    chat-tui rename [--conversation ID|TITLE] TITLE
    chat-tui delete [--conversation ID|TITLE] [--yes]
    chat-tui members [--conversation ID|TITLE] [add|remove NAME]
    chat-tui send [--conversation ID|TITLE] TEXT|-
    chat-tui sync [--once]
    chat-tui status [--json] [--offline]
    chat-tui export [--conversation ID|TITLE ...] --format md|json
    chat-tui outbox [--json] | outbox retry ID | outbox discard ID [--yes]
    chat-tui stop [--conversation ID|TITLE]
    chat-tui regenerate [--conversation ID|TITLE] [--reply ID]
    chat-tui models [--json] | --use-local | --set-key ENTRY
    chat-tui cache clear [--yes] [--force]

``--user NAME`` / ``--server URL`` pick the account when several are logged in. Modules:
``parser`` (the argument parser), ``account`` (login, logout, status), ``messages`` (new,
send, sync, export), ``conversations`` (set, rename, delete, members), ``outbox`` (list, retry, discard), ``replies`` (stop, regenerate), ``models`` (the
model list, a local model server, provider keys), ``cache`` (cache clear), ``base`` (exit
statuses, errors, the chosen
account's engine). Imports are lazy so ``import chat_tui.cli`` stays fast (no httpx, no
Textual, no Peewee). Exit status: 0 on success, 1 on a usage or local error (argparse's own
usage errors: 2), 2 when the server is unreachable, 3 when a login is needed. Logs go to
``<user log dir>/chat-tui/chat-tui.log``, never to the terminal
(:func:`chat_tui.config.logfile.setup_logging`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import argparse

#: Subcommand -> module of ``chat_tui.cli`` holding its ``cmd_<name>(args) -> int``.
COMMANDS = {"login": "account", "logout": "account", "status": "account",
            "new": "messages", "set": "conversations", "rename": "conversations",
            "delete": "conversations", "members": "conversations",
            "send": "messages", "sync": "messages", "export": "messages",
            "outbox": "outbox", "stop": "replies", "regenerate": "replies", "models": "models", "cache": "cache"}


def command(name: str) -> Callable[[argparse.Namespace], int]:
    """The handler of subcommand ``name`` (a key of :data:`COMMANDS`), imported on demand.

    Raises:
        KeyError: an unknown subcommand.
    """
    module = importlib.import_module(f"chat_tui.cli.{COMMANDS[name]}")
    return getattr(module, f"cmd_{name}")


def run_app(args: argparse.Namespace | Any) -> int:
    """``chat-tui`` with no subcommand: the Textual app (:func:`chat_tui.launch.launch`);
    ``args`` has ``user`` and ``server`` (str or None)."""
    from chat_tui.launch import launch

    return launch(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``chat-tui`` with ``argv`` (default ``sys.argv[1:]``).

    Returns:
        The process exit status (see the module doc); 130 after Ctrl+C in a subcommand.
        ``--help`` and usage errors exit through ``SystemExit`` (argparse: 0 and 2).

    ``chat-tui`` with no argument at all runs the app without building the parser
    (argparse and the parser cost ~5 ms of CPU before the first frame).
    """
    import sys

    if not (sys.argv[1:] if argv is None else argv):
        from types import SimpleNamespace

        return run_app(SimpleNamespace(command=None, user=None, server=None))
    from chat_tui.cli.parser import build_parser

    args = build_parser().parse_args(argv)
    if args.command is None:
        return run_app(args)

    from chat_tui.cli.base import CliError
    from chat_tui.config.logfile import setup_logging

    setup_logging()
    try:
        return command(args.command)(args)
    except CliError as exc:
        print(f"chat-tui: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130

"""The one argument parser of ``chat-tui``, its options and every subcommand's arguments.

``chat-tui`` alone (optionally ``--user NAME`` / ``--server URL``) starts the app, so the
parser is built on every start of it. Building the parsers of all subcommands costs ~3 ms
(argparse creates a help formatter for every parser and every argument), so each subcommand
is a choice from the start, listed by ``--help`` and checked like any argparse choice, but
its parser is built only when the command line picks it (:class:`LazySubcommands`). Help
texts, usage lines and error messages are argparse's own.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

Filler = Callable[[argparse.ArgumentParser], None]


def _login(p: argparse.ArgumentParser) -> None:
    p.add_argument("url", help="server URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--username", help="username (asked on the terminal when missing)")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of stdin (without it the "
                   "password is asked on the terminal)")


def _logout(p: argparse.ArgumentParser) -> None:
    p.add_argument("--flush", action="store_true", help="also delete the account's cache")
    p.add_argument("--force", action="store_true",
                   help="with --flush: delete even while unsent messages exist")


def _new(p: argparse.ArgumentParser) -> None:
    p.add_argument("title", help="the conversation's title (1 to 200 characters)")
    p.add_argument("--assistant", action="store_true", help="add the assistant")
    p.add_argument("--member", action="append", default=[], metavar="NAME",
                   help="a member username (repeatable)")
    p.add_argument("--members", action="append", default=[], metavar="A,B",
                   help="member usernames, comma-separated (with --member: all of them)")
    p.add_argument("--no-check", action="store_true",
                   help="do not ask the server whether the members exist")
    p.add_argument("--model", metavar="MODEL",
                   help="with --assistant: the model of its replies (default: the server's; "
                        "chat-tui models lists them)")
    p.add_argument("--system", metavar="TEXT",
                   help="with --assistant: its system prompt, or - to read it from stdin")


def _set(p: argparse.ArgumentParser) -> None:
    p.add_argument("--conversation", "-c", metavar="ID|TITLE",
                   help="conversation id or title (default: the last one used)")
    p.add_argument("--title", help="a new title (1 to 200 characters)")
    p.add_argument("--model", metavar="MODEL",
                   help='the model of the assistant\'s replies ("" for the server\'s default)')
    p.add_argument("--system", metavar="TEXT",
                   help='the assistant\'s system prompt, - to read it from stdin ("" for the '
                        "server's own)")


def _rename(p: argparse.ArgumentParser) -> None:
    p.add_argument("--conversation", "-c", metavar="ID|TITLE",
                   help="conversation id or title (default: the last one used)")
    p.add_argument("title", help="the new title (1 to 200 characters)")


def _send(p: argparse.ArgumentParser) -> None:
    p.add_argument("--conversation", "-c", metavar="ID|TITLE",
                   help="conversation id or title (default: the last one used)")
    p.add_argument("text", help="the message, or - to read it from stdin")


def _sync(p: argparse.ArgumentParser) -> None:
    p.add_argument("--once", action="store_true", help="exit when done instead of running on")


def _status(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--offline", action="store_true", help="do not probe the server")


def _export(p: argparse.ArgumentParser) -> None:
    p.add_argument("--conversation", "-c", action="append", default=[], metavar="ID|TITLE",
                   help="conversation id or title to export (repeatable; default: all)")
    p.add_argument("--format", choices=("md", "json"), required=True,
                   help="md (Markdown, for reading) or json (for programs)")


def _stop(p: argparse.ArgumentParser) -> None:
    p.add_argument("--conversation", "-c", metavar="ID|TITLE",
                   help="conversation id or title (default: the last one used)")


def _delete(p: argparse.ArgumentParser) -> None:
    p.add_argument("--conversation", "-c", metavar="ID|TITLE",
                   help="conversation id or title (default: the last one used)")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")


def _members(p: argparse.ArgumentParser) -> None:
    p.add_argument("--conversation", "-c", metavar="ID|TITLE",
                   help="conversation id or title (default: the last one used)")
    actions = p.add_subparsers(dest="members_command", metavar="ACTION")
    for name, text in (("add", "add a member (the creator only; queued)"),
                       ("remove", "remove a member (the creator only; queued)")):
        a = actions.add_parser(name, help=text)
        a.add_argument("username", help="the member's username")


def _regenerate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--conversation", "-c", metavar="ID|TITLE",
                   help="conversation id or title (default: the last one used)")
    p.add_argument("--reply", metavar="ID",
                   help="the assistant reply to replace (default: the conversation's last)")


def _models(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--use-local", action="store_true",
                      help="add the local model server (Ollama) to config.toml")
    what.add_argument("--set-key", metavar="ENTRY",
                      help="store a provider's API key (read from stdin) in the keyring "
                           "entry ENTRY")


def _cache(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    c = actions.add_parser("clear", help="delete the account's cache file")
    c.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    c.add_argument("--force", action="store_true", help="delete even with unsent messages")
    r = actions.add_parser("reset", help="set aside a cache that cannot be opened (lost or "
                           "wrong key) and start a fresh one")
    r.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    for name, text in (("encrypt", "encrypt the cache in place"),
                       ("rekey", "give the encrypted cache a new key")):
        e = actions.add_parser(name, help=text)
        e.add_argument("--key-in", choices=("keyring", "file", "passphrase"), default=None,
                       help="where the key lives (default: [cache] key of config.toml, "
                       "else the keyring)")
    actions.add_parser("decrypt", help="write the cache back unencrypted and forget its key")


def _outbox(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true",
                   help="list the actions as JSON ({\"actions\": [...]})")
    actions = p.add_subparsers(dest="outbox_command", metavar="ACTION")
    r = actions.add_parser("retry", help="put a failed or expired action back in the queue")
    r.add_argument("id", type=int, metavar="ID", help="the action's id (chat-tui outbox lists it)")
    d = actions.add_parser("discard", help="discard an action (says what goes first)")
    d.add_argument("id", type=int, metavar="ID", help="the action's id (chat-tui outbox lists it)")
    d.add_argument("--yes", "-y", action="store_true",
                   help="discard a conversation create without asking")


#: ``name -> (help, filler)``, in the order ``chat-tui --help`` lists them. The filler adds
#: the subcommand's arguments to its (empty) parser.
SUBCOMMANDS: dict[str, tuple[str, Filler]] = {
    "login": ("log in and store the token (keyring or 0600 file)", _login),
    "logout": ("revoke the token and forget the account", _logout),
    "new": ("create a conversation (queued; works offline)", _new),
    "set": ("change a conversation's title, model or system prompt (queued; works offline)",
            _set),
    "rename": ("rename a conversation (queued; works offline)", _rename),
    "delete": ("leave a conversation and drop it from the cache; with no one else in it, "
               "it is gone for everyone (queued; works offline)", _delete),
    "members": ("list the members; members add|remove NAME (the creator only; queued)",
                _members),
    "send": ("queue a message and return at once (works offline)", _send),
    "sync": ("drain the outbox and pull changes", _sync),
    "status": ("connectivity, last sync, outbox and its problems", _status),
    "export": ("export cached conversations (offline)", _export),
    "outbox": ("list unsent actions; retry or discard one by id", _outbox),
    "stop": ("stop the assistant reply being written (needs the server)", _stop),
    "regenerate": ("ask the assistant again: a new last reply, or a retry of a failed one "
                   "(queued; works offline)", _regenerate),
    "models": ("the models the server offers (saved for offline); --use-local, --set-key",
               _models),
    "cache": ("manage the local cache", _cache),
}


class LazySubcommands(argparse._SubParsersAction):
    """The ``COMMAND`` positional of :func:`build_parser`, with parsers built on demand.

    :meth:`add_lazy` registers a subcommand as a choice (its name and help are all that
    ``--help`` and the "invalid choice" error use) without building its parser;
    :meth:`__call__` builds the parser of the subcommand the command line names, as
    ``add_parser`` would (``prog`` "chat-tui NAME"), adds its arguments, then lets argparse
    hand it the remaining arguments. Relies on argparse's ``_SubParsersAction`` internals
    (``_name_parser_map``, ``_choices_actions``), unchanged since Python 3.2.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fillers: dict[str, Filler] = {}
        self.built: list[str] = []

    def add_lazy(self, name: str, help: str, fill: Filler) -> None:
        """Register subcommand ``name`` (listed with ``help``); ``fill(parser)`` adds its
        arguments when the command line chooses it."""
        self._name_parser_map[name] = None  # a valid choice; the parser comes later
        self._choices_actions.append(self._ChoicesPseudoAction(name, (), help))
        self._fillers[name] = fill

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        name = values[0]
        if self._name_parser_map.get(name) is None and name in self._fillers:
            sub = self._parser_class(prog=f"{self._prog_prefix} {name}")
            self._fillers.pop(name)(sub)
            self._name_parser_map[name] = sub
            self.built.append(name)
        super().__call__(parser, namespace, values, option_string)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``chat-tui [--user NAME] [--server URL] [COMMAND ...]``.

    ``parse_args`` gives a namespace with ``command`` (a key of :data:`SUBCOMMANDS`, or
    None for the app), ``user``, ``server`` and the chosen subcommand's own arguments
    (``cache_command`` for ``cache``). Usage errors exit with status 2, ``--help`` with 0
    (argparse).
    """
    parser = argparse.ArgumentParser(
        prog="chat-tui", description="Offline-first terminal chat client.")
    parser.add_argument("--user", help="account to use (username) when several are logged in")
    parser.add_argument("--server", help="server URL of the account to use")
    from chat_tui import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", action=LazySubcommands)
    for name, (help_text, fill) in SUBCOMMANDS.items():
        sub.add_lazy(name, help_text, fill)
    return parser


def subcommands_built(parser: argparse.ArgumentParser) -> Sequence[str]:
    """Names of the subcommands of ``parser`` (from :func:`build_parser`) whose arguments
    were added so far, in order: empty after parsing the app's own options."""
    for action in parser._actions:
        if isinstance(action, LazySubcommands):
            return tuple(action.built)
    return ()

"""The conversation commands: ``chat-tui new``, ``send``, ``sync`` and ``export``.

``new`` and ``send`` only write the cache and its outbox (they work offline); ``sync`` runs
the engine that delivers them; ``export`` reads the cache.
"""

from __future__ import annotations

import argparse
import json
import sys

from chat_tui.cli.base import (
    EXIT_AUTH,
    EXIT_OK,
    EXIT_UNREACHABLE,
    CliError,
    engine_of,
    open_store,
    pick_conversation,
    read_stdin,
    report_recovery,
)


def member_names(args: argparse.Namespace) -> list[str]:
    """The member usernames of ``chat-tui new``: every ``--member`` and every
    comma-separated name of ``--members``, stripped, blanks dropped, in order."""
    names = [*args.member, *(n for chunk in args.members for n in chunk.split(","))]
    return [n.strip() for n in names if n.strip()]


def unknown_members(args: argparse.Namespace, names: list[str]) -> list[str] | None:
    """Sync rule 3o: the names the server does not know (``Engine.unknown_members``;
    the local account's embedded server is started for it), or None when the server
    could not be asked (offline, a login needed, ...): then a note goes to stderr."""
    import asyncio

    from chat_tui.api import ApiError
    from chat_tui.cli.base import network_engine

    async def ask() -> list[str]:
        async with network_engine(args) as engine:
            return await engine.unknown_members(names)

    try:
        return asyncio.run(ask())
    except (ApiError, CliError) as exc:
        print(f"chat-tui: member names not checked ({exc}); the conversation is queued and "
              "a refusal shows in `chat-tui outbox`", file=sys.stderr)
        return None


def cmd_new(args: argparse.Namespace) -> int:
    """``chat-tui new TITLE [--assistant [--model M] [--system TEXT|-]] [--member NAME ...]
    [--members A,B] [--no-check]``: create a conversation locally and queue its create
    (outbox rule 2), with the assistant's model and system prompt (``-``: read from stdin);
    prints its id; works offline. Member names are first checked against the server when it can be
    reached (sync rule 3o); unknown ones stop the command before anything is created.

    Returns:
        ``EXIT_OK``.

    Raises:
        CliError: no account, unknown member names (each named; nothing created), a title
        of 0 or over 200 characters, a model or system prompt without ``--assistant`` or
        out of its limits, a cache from a newer chat-tui.
    """
    from chat_tui.store import StoreError

    members = member_names(args)
    if not args.title.strip() or len(args.title.strip()) > 200:
        raise CliError("a title has 1 to 200 characters")
    engine = engine_of(args)
    if args.assistant and engine.is_matrix:
        raise CliError("a Matrix account has no assistant (it needs a chat-tui server); "
                       "nothing was created")
    if members and not args.no_check:
        unknown = unknown_members(args, members)
        if unknown:
            raise CliError(f"unknown member{'s' if len(unknown) > 1 else ''}: "
                           f"{', '.join(unknown)}; nothing was created")
    open_store(engine)
    try:
        system = read_stdin().rstrip("\n") if args.system == "-" else args.system
        cid = engine.create_conversation(args.title, members, args.assistant, args.model,
                                         system)
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

    text = read_stdin() if args.text == "-" else args.text
    if args.text == "-":
        text = text.rstrip("\n")
    engine = engine_of(args)
    open_store(engine)
    store = engine.store
    try:
        cid = pick_conversation(store, args.conversation)
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
        server could not be reached or the local server did not start (everything stays
        queued).

    Raises:
        CliError: another process runs this account's engine (sync rule D5), or the cache
        comes from a newer chat-tui.
    """
    import asyncio
    import signal

    from chat_tui.cli.base import network_engine

    if args.once:
        async def once():
            async with network_engine(args) as engine:
                return engine, await engine.sync_once()

        try:
            engine, report = asyncio.run(once())
        except Exception as exc:
            from chat_tui.store import CacheLocked, SchemaTooNew
            from chat_tui.sync.engine import AnotherEngineRunning

            if isinstance(exc, SchemaTooNew | CacheLocked | AnotherEngineRunning):
                raise CliError(str(exc)) from exc
            raise
        report_recovery(engine.store)
        counts = ", ".join(f"{k} {v}" for k, v in report.counts.items() if v) or "empty"
        print(f"sent {report.sent}; {'synced' if report.synced else 'not synced'}; "
              f"outbox: {counts}")
        if report.auth_failed:
            from chat_tui.cli.base import login_command, target_of

            print(f"login required: run `{login_command(target_of(args))}`", file=sys.stderr)
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
        async with network_engine(args) as engine:
            await engine.start()
            report_recovery(engine.store)
            try:
                await stop.wait()
            finally:
                await engine.stop()

    from chat_tui.store import CacheLocked, SchemaTooNew
    from chat_tui.sync.engine import AnotherEngineRunning

    try:
        asyncio.run(run_forever())
    except (SchemaTooNew, CacheLocked, AnotherEngineRunning) as exc:
        raise CliError(str(exc)) from exc
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

    engine = engine_of(args)
    open_store(engine)
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
    from chat_tui.store.export_md import conversations_markdown

    sys.stdout.write(conversations_markdown(data))
    return EXIT_OK

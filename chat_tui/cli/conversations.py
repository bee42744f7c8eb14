"""The commands that change a conversation as a whole: ``chat-tui set`` (title, the
assistant's model and system prompt) and ``chat-tui rename``. Like ``send`` they only
write the cache and its outbox (sync rule 9): they work offline and the change goes out
in order with the conversation's messages (``chat-tui sync``, or a running app)."""

from __future__ import annotations

import argparse

from chat_tui.cli.base import (
    EXIT_OK,
    CliError,
    engine_of,
    open_store,
    pick_conversation,
    read_stdin,
)


def _update(args: argparse.Namespace, **changes: str | None) -> int:
    """Queue ``changes`` of the conversation ``args.conversation`` (default: the last used,
    or the only one) and say what was queued, or that nothing changes."""
    from chat_tui.store import StoreError

    engine = engine_of(args)
    open_store(engine)
    store = engine.store
    try:
        cid = pick_conversation(store, args.conversation)
        changed = engine.update_conversation(cid, **changes)
        store.set_last_conversation(cid)
    except StoreError as exc:
        raise CliError(str(exc)) from exc
    finally:
        store.close()
    if changed:
        print(f"{cid}: queued")
    else:
        print(f"{cid}: already so, nothing to change")
    return EXIT_OK


def cmd_set(args: argparse.Namespace) -> int:
    """``chat-tui set [--conversation ID|TITLE] [--title T] [--model M] [--system TEXT|-]``:
    queue a change of the conversation's title, the assistant's model (``""``: the
    server's default) and its system prompt (``-`` reads it from stdin; ``""``: the
    server's own); prints ``<id>: queued``, or that nothing changes. Works offline.

    Returns:
        ``EXIT_OK``.

    Raises:
        CliError: no account, nothing to set, unknown or ambiguous conversation, a value
        out of its limits, a model or prompt for a conversation without the assistant
        (nothing is queued then).
    """
    changes: dict[str, str | None] = {}
    if args.title is not None:
        changes["title"] = args.title
    if args.model is not None:
        changes["model"] = args.model or None
    if args.system is not None:
        system = read_stdin().rstrip("\n") if args.system == "-" else args.system
        changes["system_prompt"] = system or None
    if not changes:
        raise CliError("nothing to set: give --title, --model or --system")
    return _update(args, **changes)


def cmd_rename(args: argparse.Namespace) -> int:
    """``chat-tui rename [--conversation ID|TITLE] TITLE``: queue the conversation's new
    title (``chat-tui set --title``). Works offline.

    Returns:
        ``EXIT_OK``.

    Raises:
        CliError: no account, unknown or ambiguous conversation, a title of 0 or over 200
        characters.
    """
    return _update(args, title=args.title)

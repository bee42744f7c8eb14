"""The commands that change a conversation as a whole: ``chat-tui set`` (title, the
assistant's model and system prompt), ``chat-tui rename``, ``chat-tui delete`` (leave) and
``chat-tui members``. Like ``send`` they only write the cache and its outbox (sync rules 9
and 11): they work offline and the change goes out in order with the conversation's
messages (``chat-tui sync``, or a running app)."""

from __future__ import annotations

import argparse

from chat_tui.cli.base import (
    EXIT_OK,
    CliError,
    confirm,
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


def cmd_delete(args: argparse.Namespace) -> int:
    """``chat-tui delete [--conversation ID|TITLE] [--yes]``: leave the conversation (sync
    rule 11): it leaves the list and, once the server has it, the cache (drafts stay); with
    no one else in it (a conversation with the assistant) it is gone for everyone. Asks
    first on a terminal (``--yes`` does not). Prints ``<id>: queued``. Works offline.

    Returns:
        ``EXIT_OK``.

    Raises:
        CliError: no account, unknown or ambiguous conversation, not confirmed.
    """
    from chat_tui.store import StoreError

    engine = engine_of(args)
    open_store(engine)
    store = engine.store
    try:
        cid = pick_conversation(store, args.conversation)
        view = store.get_conversation(cid)
        others = [m for m in (view.members if view else ()) if m not in (store.me, "assistant")]
        what = (f"leave {view.title!r} (it stays for {', '.join(others)})" if others and view
                else f"delete {view.title if view else cid!r} for good")
        if not args.yes and not confirm(f"{what[0].upper()}{what[1:]}? [y/N] ", "--yes"):
            print("nothing changed")
            return EXIT_OK
        engine.leave_conversation(cid)
    except StoreError as exc:
        raise CliError(str(exc)) from exc
    finally:
        store.close()
    print(f"{cid}: queued")
    return EXIT_OK


def cmd_members(args: argparse.Namespace) -> int:
    """``chat-tui members [--conversation ID|TITLE] [add|remove NAME]``: without an action,
    print the members, one per line (as cached, my queued changes included); ``add`` or
    ``remove`` queues a change of the members of a conversation I created (sync rule 11)
    and prints ``<id>: queued``, or that nothing changes. Works offline.

    Returns:
        ``EXIT_OK``.

    Raises:
        CliError: no account, unknown or ambiguous conversation, not its creator, a
        malformed username, the assistant, or removing myself.
    """
    from chat_tui.store import StoreError

    engine = engine_of(args)
    open_store(engine)
    store = engine.store
    try:
        cid = pick_conversation(store, args.conversation)
        if args.members_command is None:
            view = store.get_conversation(cid)
            for name in view.members if view else ():
                print(name)
            return EXIT_OK
        change = engine.add_member if args.members_command == "add" else engine.remove_member
        changed = change(cid, args.username)
    except StoreError as exc:
        raise CliError(str(exc)) from exc
    finally:
        store.close()
    print(f"{cid}: queued" if changed else f"{cid}: already so, nothing to change")
    return EXIT_OK

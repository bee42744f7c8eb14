"""The outbox command: ``chat-tui outbox [--json]``, ``chat-tui outbox retry ID`` and
``chat-tui outbox discard ID [--yes]`` (sync rule 3n).

One model of a pending action whatever its kind (``create_conversation``, ``send``,
``edit``, ``delete``, ``read``): each has an id (its outbox sequence), a state (``queued``,
``sending``, ``failed``, ``blocked``, ``expired``) and a reason; retry and discard act on
any of them by id. All of it reads and writes the cache only (works offline); ``chat-tui
sync`` or the app delivers what a retry puts back in the queue.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from chat_tui.cli.base import EXIT_ERROR, EXIT_OK, CliError, confirm, engine_of, open_store


def outbox_data(engine: Any) -> list[dict[str, Any]]:
    """What ``chat-tui outbox --json`` prints under ``actions``: one dict per action in
    outbox order with ``id`` (int), ``kind``, ``state``, ``reason`` (the server's reason,
    the expiry or what it waits behind; "" when none), ``conversation_id``,
    ``conversation`` (its title, or None when not cached), ``message_id`` (or None) and
    ``preview`` (the text, title or marked message, shortened)."""
    titles = {c.id: c.title for c in engine.store.list_conversations()}
    return [{"id": a.outbox_id, "kind": a.kind, "state": a.state, "reason": a.reason,
             "conversation_id": a.conversation_id,
             "conversation": titles.get(a.conversation_id), "message_id": a.message_id,
             "preview": a.body_preview}
            for a in engine.outbox_list()]


def cmd_outbox(args: argparse.Namespace) -> int:
    """``chat-tui outbox [--json] | retry ID | discard ID [--yes]``.

    Without an action: list every pending action (``--json``: ``{"actions": [...]}`` as
    :func:`outbox_data`), each failed or expired one followed by how to resolve it.
    ``retry ID``: a failed or expired action goes back to the queue. ``discard ID``: says
    what goes, then discards it (``Engine.discard_action``); a conversation create, whose
    discard removes the local conversation and what is queued behind it, asks first
    (``--yes`` confirms; without a terminal on stdin and without ``--yes`` it refuses).

    Returns:
        ``EXIT_OK``; ``EXIT_ERROR`` when a discard was not confirmed.

    Raises:
        CliError: no account, no such action, an action that cannot be retried (not failed
        or expired) or discarded (being sent right now), or no terminal to confirm on.
    """
    from chat_tui.store import StoreError

    engine = engine_of(args)
    open_store(engine)
    try:
        action = getattr(args, "outbox_command", None)
        if action == "retry":
            engine.retry_action(args.id)
            print(f"#{args.id} is queued again; `chat-tui sync --once` (or the app) sends it")
            return EXIT_OK
        if action == "discard":
            return _discard(engine, args)
        return _list(engine, args)
    except StoreError as exc:
        raise CliError(str(exc)) from exc
    finally:
        engine.store.close()


def _list(engine: Any, args: argparse.Namespace) -> int:
    actions = outbox_data(engine)
    if args.json:
        print(json.dumps({"actions": actions}, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not actions:
        print("the outbox is empty")
        return EXIT_OK
    for a in actions:
        where = a["conversation"] or a["conversation_id"]
        print(f"#{a['id']:<5} {a['kind']:19} {a['state']:8} {where}: {a['preview']!r}")
        if a["reason"]:
            print(f"       {a['reason']}")
        if a["state"] in ("failed", "expired"):
            print(f"       resolve: chat-tui outbox retry {a['id']}  |  "
                  f"chat-tui outbox discard {a['id']}")
    return EXIT_OK


def _discard(engine: Any, args: argparse.Namespace) -> int:
    plan = engine.discard_plan(args.id)
    row = engine.store.outbox_row(args.id) or {}
    for line in plan:
        print(line)
    if row.get("kind") == "create_conversation" and not args.yes and not confirm(
            "discard all of this? [y/N] ", "--yes"):
        print("kept")
        return EXIT_ERROR
    text = engine.discard_action(args.id)
    if row.get("kind") == "create_conversation":
        print(f"discarded #{args.id}" + (f"; what was typed in it:\n{text}" if text else ""))
    else:
        print(f"discarded #{args.id}" + ("; its text is back in the draft" if text else ""))
    return EXIT_OK

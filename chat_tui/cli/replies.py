"""The reply commands: ``chat-tui stop [--conversation ID|TITLE]`` stops the assistant
reply being written in a conversation (``POST /v1/messages/{mid}/stop``, docs/api.md);
``chat-tui regenerate`` queues a new reply (sync rule 10)."""

from __future__ import annotations

import argparse
import sys

from chat_tui.cli.base import (
    EXIT_AUTH,
    EXIT_OK,
    EXIT_UNREACHABLE,
    CliError,
    engine_of,
    login_command,
    open_store,
    pick_conversation,
)


def cmd_stop(args: argparse.Namespace) -> int:
    """``chat-tui stop [--conversation ID|TITLE]``: ask the server to stop every assistant
    reply of the conversation (default: the last used, or the only one) that is still
    streaming among its newest 50 messages; prints the id of each reply stopped, or says
    on stderr that none was being written. Needs the server (a stop is not queued): for
    the default local account the embedded server is started for the command
    (:func:`~chat_tui.cli.base.network_engine`).

    Returns:
        ``EXIT_OK``.

    Raises:
        CliError: an unknown or ambiguous conversation, the local server not starting
        (``EXIT_UNREACHABLE``), the server unreachable (``EXIT_UNREACHABLE``) or refusing
        the login (``EXIT_AUTH``).
    """
    import asyncio

    from chat_tui.api import ApiClient, ApiError, TransientError, Unauthorized
    from chat_tui.cli.base import network_engine, target_of
    from chat_tui.config import load_token
    from chat_tui.store import StoreError

    target = target_of(args)
    engine = engine_of(args)
    if target.account is not None and target.account.is_matrix:
        raise CliError("a Matrix account has no assistant: models, stop and regenerate "
                       "need a chat-tui server")
    open_store(engine)
    store = engine.store
    try:
        cid = pick_conversation(store, args.conversation)
    except StoreError as exc:
        raise CliError(str(exc)) from exc
    finally:
        store.close()

    async def stop() -> list[str]:
        async with network_engine(args) as net:
            if target.account is not None:
                token = load_token(target.account)
            else:  # the local account: the token its embedded server gave at the start
                assert target.directory is not None
                token = (target.directory / "token").read_text(encoding="utf-8").strip()
            async with ApiClient(net.base_url, token,
                                 timeout=net.settings.request_timeout) as api:
                page = await api.messages(cid)
                stopped = []
                for message in page.messages:
                    if message.streaming:
                        await api.stop_reply(message.id)
                        stopped.append(message.id)
                return stopped

    try:
        stopped = asyncio.run(stop())
    except Unauthorized as exc:
        raise CliError("the server refused the saved login: run "
                           f"`{login_command(target_of(args))}`",
                       EXIT_AUTH) from exc
    except TransientError as exc:
        raise CliError(f"cannot reach the server: {exc}", EXIT_UNREACHABLE) from exc
    except ApiError as exc:
        raise CliError(f"cannot stop the reply: {exc}") from exc
    if not stopped:
        print("no reply is being written in this conversation", file=sys.stderr)
    for mid in stopped:
        print(mid)
    return EXIT_OK


def cmd_regenerate(args: argparse.Namespace) -> int:
    """``chat-tui regenerate [--conversation ID|TITLE] [--reply ID]``: queue a new reply to
    the question of the conversation's last cached assistant reply (or of ``--reply``),
    which regenerates it, or retries it when it failed (sync rule 10); prints the id the
    new reply will have. Works offline; ``chat-tui sync`` (or the app) sends it.

    Returns:
        ``EXIT_OK``.

    Raises:
        CliError: no account, unknown or ambiguous conversation, no assistant reply cached
        there (run ``chat-tui sync`` first), a reply still being written or already
        replaced.
    """
    from chat_tui.store import StoreError

    engine = engine_of(args)
    open_store(engine)
    store = engine.store
    try:
        cid = pick_conversation(store, args.conversation)
        target = args.reply or store.last_reply(cid)
        if target is None:
            raise CliError("no assistant reply is cached in this conversation (run "
                           "`chat-tui sync` to fetch it)")
        reply_id = engine.regenerate(target)
        store.set_last_conversation(cid)
    except StoreError as exc:
        raise CliError(str(exc)) from exc
    finally:
        store.close()
    print(reply_id)
    return EXIT_OK

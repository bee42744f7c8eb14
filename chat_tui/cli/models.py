"""The model commands: ``chat-tui models [--json]``, ``chat-tui models --use-local`` and
``chat-tui models --set-key ENTRY``.

``chat-tui models`` lists the models the account's server offers (``GET /v1/models``,
docs/api.md) and keeps the answer in the account's cache (a meta key), so the list is
still shown, marked offline with its date, when the server cannot be reached. Without a
saved account (the local mode) the list comes from the providers of ``config.toml``, as
the embedded server would give it, and is kept in the local cache the same way.
"""

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
    account_of,
    login_command,
    report_recovery,
    target_of,
)

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.store import Cache


def _local_mode(args: argparse.Namespace) -> bool:
    from chat_tui.config import load_accounts

    return not (args.user or args.server or load_accounts())


def _fetch_remote(args: argparse.Namespace) -> tuple[Cache, Any]:
    """``(cache, answer)`` for a saved account: ``answer`` the server's ``ModelList``,
    or the ``ApiError`` that prevented it."""
    import asyncio

    from chat_tui.api import ApiClient, ApiError
    from chat_tui.config import load_settings, load_token
    from chat_tui.store import Cache

    account = account_of(args)
    if account.is_matrix:
        raise CliError("a Matrix account has no assistant: models, stop and regenerate "
                       "need a chat-tui server")
    try:
        settings = load_settings()
    except ValueError as exc:
        raise CliError(f"config: {exc}") from exc
    store = Cache(account.db_path, account.username, user_id=account.user_id,
                  server_url=account.server_url)

    async def ask() -> Any:
        async with ApiClient(account.server_url, load_token(account),
                             timeout=settings.request_timeout) as api:
            return await api.list_models()

    try:
        return store, asyncio.run(ask())
    except ApiError as exc:
        return store, exc


def _fetch_local() -> tuple[Cache, Any]:
    """``(cache, answer)`` in the local mode: the ``ModelList`` the embedded server would
    give for ``config.toml`` (its providers asked now)."""
    import asyncio

    from chat_tui.config.providers import load_model_config
    from chat_tui.launch import embedded_assistant, local_dir, local_username
    from chat_tui.server.assistant_models import ModelCatalog
    from chat_tui.store import Cache

    try:
        config = load_model_config()
    except ValueError as exc:
        raise CliError(f"config: {exc}") from exc
    assistant = embedded_assistant(config, probe=False)
    catalog = ModelCatalog(assistant.providers, assistant.model, assistant.models_ttl,
                           echo=assistant.kind == "echo")
    store = Cache(local_dir() / "cache.db", local_username())
    return store, asyncio.run(catalog.listing())


def _show(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, indent=2))
        return
    if data["offline"]:
        print(f"offline: the list saved {data['saved_at']}", file=sys.stderr)
    if not data["models"]:
        print("no models")
    width = max([len(m["id"]) for m in data["models"]] + [5])
    for model in data["models"]:
        mark = "*" if model["default"] else " "
        print(f"{mark} {model['id']:<{width}}  {model['provider']}")
    for problem in data["problems"]:
        print(f"  {problem['provider']}: {problem['message']}", file=sys.stderr)


def cmd_models(args: argparse.Namespace) -> int:
    """``chat-tui models [--json] | --use-local | --set-key ENTRY``.

    Lists the models (``*`` marks the default; ``--json``: the ``GET /v1/models`` object
    plus ``offline`` and ``saved_at``), adopts a local model server (:func:`use_local`), or
    stores a provider key (:func:`set_key`).

    Returns:
        ``EXIT_OK``.

    Raises:
        CliError: the server refused the token (``EXIT_AUTH``), or cannot be reached and no
        list was saved before (``EXIT_UNREACHABLE``); an invalid config file.
    """
    if args.use_local:
        return use_local()
    if args.set_key:
        return set_key(args.set_key)
    from chat_tui.api import ApiError, TransientError, Unauthorized
    from chat_tui.store import SchemaTooNew

    store, answer = _fetch_local() if _local_mode(args) else _fetch_remote(args)
    try:
        store.ensure_open()
    except SchemaTooNew as exc:
        raise CliError(str(exc)) from exc
    try:
        report_recovery(store)
        if isinstance(answer, Unauthorized):
            raise CliError("the server refused the saved login: run "
                           f"`{login_command(target_of(args))}`",
                           EXIT_AUTH)
        if isinstance(answer, ApiError):
            saved = store.saved_model_list()
            if saved is None or not isinstance(answer, TransientError):
                code = EXIT_UNREACHABLE if isinstance(answer, TransientError) else 1
                raise CliError(f"cannot list the models: {answer}", code)
            data = {**json.loads(saved[0]), "offline": True, "saved_at": saved[1]}
        else:
            text = answer.to_json().decode("utf-8")
            store.save_model_list(text)
            data = {**json.loads(text), "offline": False, "saved_at": None}
    finally:
        store.close()
    _show(data, args.json)
    return EXIT_OK


def use_local() -> int:
    """``chat-tui models --use-local``: when a local OpenAI-compatible server answers (Ollama's
    ``http://127.0.0.1:11434/v1``, or ``CHAT_TUI_LOCAL_MODEL_URL``), add it to
    ``config.toml`` as a provider (``ollama`` at Ollama's address, else ``local``) with its
    first model as the default model when none is set.

    Raises:
        CliError: nothing answers there (``EXIT_UNREACHABLE``), or the file cannot take it
        (invalid, or a provider of that name exists).
    """
    from chat_tui.config.providers import (
        OLLAMA_BASE_URL,
        Provider,
        add_provider,
        local_model_url,
        probe_models,
    )

    url = local_model_url()
    try:
        models = probe_models(url, timeout=3.0)
    except OSError as exc:
        raise CliError(f"no local model server: {exc}", EXIT_UNREACHABLE) from exc
    name = "ollama" if url == OLLAMA_BASE_URL else "local"
    try:
        path = add_provider(Provider(name, url), default_model=models[0] if models else None)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    print(f"added provider {name} ({url}) to {path}"
          + (f"; default model {models[0]}" if models else ""))
    print("start chat-tui again to use it")
    return EXIT_OK


def set_key(entry: str) -> int:
    """``chat-tui models --set-key ENTRY``: read an API key (the first line of stdin, or a
    hidden prompt on a terminal) and keep it under keyring entry ``ENTRY`` (0600 file
    fallback); a provider uses it with ``api_key_keyring = "ENTRY"``. The key is never
    printed nor written to ``config.toml``.

    Raises:
        CliError: an empty key or an invalid entry name.
    """
    import getpass

    from chat_tui.config.providers import store_provider_key

    if sys.stdin.isatty():
        key = getpass.getpass(f"API key for {entry}: ")
    else:
        key = sys.stdin.readline().rstrip("\r\n")
    try:
        where = store_provider_key(entry, key)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    shown = "the OS keyring" if where == "keyring" else "a 0600 key file"
    print(f"key {entry} saved in {shown}; use it with api_key_keyring = \"{entry}\"")
    return EXIT_OK

"""Startup wiring of the app (``chat-tui`` with no subcommand): choose the account, open
its cache, build the engine factory (starting the embedded server in the local mode) and run
:class:`chat_tui.ui.app.ChatApp`.

This module sits above the UI (``ui -> launch``): it imports ``ui``, ``sync``, ``store``,
``config`` and ``chat_tui.server.embedded``; nothing in ``ui`` imports it. Two modes:

- **configured server**: an account saved by ``chat-tui login`` (picked with ``--user`` /
  ``--server``, or the ``[account]`` table of ``config.toml``, else the most recent login;
  ``chat_tui.config.pick_account``). Its cache is ``Account.db_path``.
- **local** (no account saved, no ``--server``/``--user`` and no ``[account]`` table): the reference server runs
  inside this process (``chat_tui.server.embedded.start_embedded``) on a free loopback port
  over ``<user data dir>/chat-tui/local/server.db``. Its assistant uses the model providers
  of ``config.toml`` (:func:`embedded_assistant`, ``chat_tui.config.providers``); with none
  configured it is the built-in echo, whose replies say how to configure one, and offer a
  local OpenAI-compatible server (Ollama) when one answers on loopback. The
  local user (:func:`local_username`) logs in over HTTP like any client (its device
  token is kept in a 0600 file next to the data); the client cache is
  ``<user data dir>/chat-tui/local/cache.db`` (stable across runs although the port is not).
  On the first start a welcome conversation with the assistant is created through the
  engine (outbox, local echo), like any other.

Either way the first frame is drawn from the cache before any network call. A cache file
exactly as a clean close left it (sync rule D4) is read for the first frame by
:class:`~chat_tui.store.first_frame.FirstFrameReader` (stdlib ``sqlite3``; ``sqlcipher3``
with the raw key for an encrypted cache, :func:`first_frame_reader`), and the app
opens the full ``Cache`` (Peewee) right after that frame; any other file (new, to migrate,
to check or recover, too new) is opened here, synchronously, before the app is built. An
encrypted cache whose key cannot be found is the locked state (sync rule D8), told before
the app starts.
Everything that needs httpx, uvicorn or FastAPI is imported by the engine factory, which
the app calls after the first frame (the embedded server starts in a worker thread then).

Python's cyclic garbage collector is off from :func:`launch`'s start to the first frame
(the app's ``on_first_frame``): the start creates a few hundred thousand objects (Textual,
Rich, the screen's widgets) that all stay alive, and each collection they trigger scans
them all again; with it on they cost 50-60 ms of CPU before the first frame
(benchmarks/NOTES.md). Nothing is lost: what is cyclic garbage by then is collected by
the first collection after it, and peak memory does not change.
"""

from __future__ import annotations

import gc
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.config import Account, Settings
    from chat_tui.config.providers import ModelConfig
    from chat_tui.server.settings import AssistantSettings
    from chat_tui.store import Cache
    from chat_tui.store.first_frame import FirstFrameReader
    from chat_tui.sync.engine import Engine

__all__ = [
    "UNUSED_OPTIONAL_IMPORTS",
    "WELCOME_QUESTION",
    "WELCOME_TITLE",
    "LocalMode",
    "LocalOffer",
    "configured_factory",
    "embedded_assistant",
    "first_frame_reader",
    "launch",
    "local_dir",
    "local_factory",
    "local_username",
    "welcome_once",
]

WELCOME_TITLE = "Welcome to chat-tui"
WELCOME_QUESTION = "Hello! What can you do?"
_USERNAME = re.compile(r"[^a-z0-9_.-]+")  # docs/api.md, "Conventions": [a-z0-9_.-]{1,64}


def local_dir() -> Path:
    """``<user data dir>/chat-tui/local``: the embedded server's database and the local
    account's cache (created when missing)."""
    from chat_tui.config import data_dir

    path = data_dir() / "local"
    path.mkdir(parents=True, exist_ok=True)
    return path


def local_username() -> str:
    """The local account's username: chosen once (the OS login name, folded to the
    server's ``[a-z0-9_.-]{1,64}``; ``me`` when nothing is left or it is reserved) and kept
    in ``local/account.json`` so it never changes between runs."""
    path = local_dir() / "account.json"
    try:
        name = json.loads(path.read_text(encoding="utf-8"))["username"]
        if isinstance(name, str) and name:
            return name
    except (OSError, ValueError, KeyError, TypeError):
        pass
    import getpass

    try:
        raw = getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in this environment
        raw = ""
    name = _USERNAME.sub("", raw.lower())[:64]
    if not name or name == "assistant":
        name = "me"
    path.write_text(json.dumps({"username": name}), encoding="utf-8")
    return name


def configured_factory(account: Account, settings: Settings) -> Callable[[Cache], Engine]:
    """Engine factory for a saved account: ``factory(store) -> Engine`` (imports the sync
    layer, httpx included, only when called; reads the token from the keyring or file);
    the engine talks to the account's kind of server (chat-tui or Matrix)."""

    def factory(store: Cache) -> Engine:
        from chat_tui.config import load_token
        from chat_tui.sync.engine import Engine

        return Engine(store, account.server_url, load_token(account), settings,
                      kind=account.kind, user_id=account.user_id)

    return factory


#: Seconds the local mode waits for a local model server to answer ``GET /models``.
LOCAL_PROBE_TIMEOUT = 1.0


@dataclass(frozen=True)
class LocalOffer:
    """A local OpenAI-compatible server that answered the first-start probe: its
    ``url`` (the API root, ``.../v1``) and the ``models`` it lists, in its order."""

    url: str
    models: tuple[str, ...]

    def text(self) -> str:
        """The welcome's sentence: where it answers, its models, and the two ways to
        adopt it (F4 in the app, ``chat-tui models --use-local`` in a terminal)."""
        shown = ", ".join(self.models[:5]) + (", …" if len(self.models) > 5 else "")
        return (f"A local model server answers at {self.url} (models: {shown}). To use it, "
                "press F4 in chat-tui, or run `chat-tui models --use-local` in a terminal "
                "and start chat-tui again.")


def probe_local_offer(environ: dict[str, str] | None = None) -> LocalOffer | None:
    """Look for a local OpenAI-compatible server (Ollama at ``http://127.0.0.1:11434/v1``,
    or ``CHAT_TUI_LOCAL_MODEL_URL``): a :class:`LocalOffer` when it lists at least one
    model on ``GET /models`` within :data:`LOCAL_PROBE_TIMEOUT` seconds, else None.
    Blocking: call it from a worker thread."""
    from chat_tui.config.providers import local_model_url, probe_models

    url = local_model_url(environ)
    try:
        models = probe_models(url, timeout=LOCAL_PROBE_TIMEOUT)
    except OSError:
        return None
    return LocalOffer(url, tuple(models)) if models else None


def local_model_offer(environ: dict[str, str] | None = None) -> str | None:
    """The welcome's offer of a local model server (:meth:`LocalOffer.text`), or None when
    nothing answers (:func:`probe_local_offer`). Blocking: call it from a worker thread."""
    offer = probe_local_offer(environ)
    return None if offer is None else offer.text()


def embedded_assistant(config: ModelConfig, probe: bool = True,
                       offer: LocalOffer | None = None) -> AssistantSettings:
    """The assistant of the embedded server for the model part of ``config.toml``.

    - ``assistant = "echo"``: the built-in echo, as is;
    - providers configured: ``openai`` with every provider (the default provider first),
      its key looked up now (environment or keyring; a missing key becomes the provider's
      ``key_problem``, which every reply then states) and ``default_model`` (None: the
      provider's first listed model);
    - none: the echo, its replies ending with how to configure a model
      (:func:`chat_tui.config.providers.setup_hint`), preceded by the offer of a local
      model server: ``offer`` when given, else the probe's when ``probe`` and one
      answers (:func:`probe_local_offer`).

    Blocking (keyring, probe): call it from a worker thread, never before the first frame.
    """
    from chat_tui.config.providers import provider_key, setup_hint
    from chat_tui.server.settings import AssistantSettings, ProviderSettings

    if config.assistant == "echo":
        return AssistantSettings(kind="echo")
    chosen = config.provider()
    if chosen is None:
        if offer is None and probe:
            offer = probe_local_offer()
        hint = setup_hint(config.path)
        return AssistantSettings(kind="echo", echo_note=f"{offer.text()}\n\n{hint}"
                                 if offer else hint)
    providers = []
    for provider in [chosen] + [p for p in config.providers if p is not chosen]:
        try:
            key, problem = provider_key(provider), None
        except LookupError as exc:
            key, problem = None, str(exc)
        providers.append(ProviderSettings(provider.name, provider.base_url, key, problem,
                                          provider.timeout))
    return AssistantSettings(kind="openai", model=config.default_model, providers=providers,
                             timeout=chosen.timeout)


class LocalMode:
    """What the app changes in the local mode after its start: the embedded server's
    assistant (reloaded in place when the providers change: no restart, the port, the
    long-polls and the login stay) and the offer of a local model server found by the
    start's probe. The app reaches it as its ``models_host``
    (``chat_tui.ui.assistant_actions.ModelsHost``).

    ``server``: the running ``EmbeddedServer`` (None before it starts); ``offer``: the
    :class:`LocalOffer` still open (None when there is none, or it was taken).
    """

    def __init__(self) -> None:
        self.server: Any = None
        self.offer: LocalOffer | None = None

    @property
    def local(self) -> bool:
        """True: the providers of ``config.toml`` serve this account's assistant."""
        return True

    def reload_models(self) -> str:
        """Read ``config.toml`` again and give its providers to the running embedded
        server (``EmbeddedServer.reconfigure``); returns a short description of what
        answers now ("model llama3.2 of ollama", "the built-in echo"); a configured
        provider closes the offer. Blocking (keyring,
        the server's loop): call it from a worker thread.

        Raises:
            ValueError: an invalid ``config.toml``; RuntimeError: no server running.
        """
        from chat_tui.config.providers import load_model_config

        if self.server is None:
            raise RuntimeError("the local server is not running yet")
        config = load_model_config()
        chosen = config.provider()
        if chosen is not None:
            self.offer = None  # a provider is configured: nothing left to offer
        assistant = embedded_assistant(config, probe=False, offer=self.offer)
        self.server.reconfigure(assistant)
        if assistant.kind == "echo" or chosen is None:
            return "the built-in echo"
        if config.default_model:
            return f"model {config.default_model} of {chosen.name}"
        return f"the first model {chosen.name} lists"

    def adopt_offer(self) -> str:
        """Take the open offer: add the local model server to ``config.toml`` as a
        provider (``ollama`` at Ollama's address, else ``local``; its first model the
        default when none is set, as ``chat-tui models --use-local`` does), then
        :meth:`reload_models`. Returns what answers now. Blocking.

        Raises:
            LookupError: no offer is open; ValueError: the file cannot take it (invalid,
            or a provider of that name exists); RuntimeError: no server running.
        """
        from chat_tui.config.providers import OLLAMA_BASE_URL, Provider, add_provider

        offer = self.offer
        if offer is None:
            raise LookupError("no local model server was found at the start")
        name = "ollama" if offer.url == OLLAMA_BASE_URL else "local"
        add_provider(Provider(name, offer.url),
                     default_model=offer.models[0] if offer.models else None)
        self.offer = None
        return self.reload_models()


def local_factory(settings: Settings, username: str, directory: Path,
                  on_started: Callable[[Any], None] | None = None,
                  models: ModelConfig | None = None,
                  mode: LocalMode | None = None) -> Callable[[Cache], Any]:
    """Engine factory for the local mode (async ``factory(store) -> Engine``).

    Starts the embedded server in a worker thread over ``directory/server.db`` (its
    assistant from ``models``, the model part of ``config.toml``: :func:`embedded_assistant`;
    None reads the file then; ``ensure_local_account`` makes sure ``username`` exists),
    then reuses the
    device token kept in ``directory/token`` (0600) when the server still accepts it, else
    logs in over HTTP with a fresh password and keeps the new token (one device, not one
    per start). ``on_started(server)`` receives the ``EmbeddedServer`` (the caller stops it
    on exit). ``mode`` (:class:`LocalMode`) receives the server and the probe's offer.
    Raises whatever the server start or the login raise (``RuntimeError``,
    ``OSError``, ``chat_tui.api.ApiError``); the app shows it and keeps the cached view
    usable.
    """

    async def factory(store: Cache) -> Engine:
        import asyncio
        import socket

        from chat_tui.api import ApiClient, Unauthorized
        from chat_tui.sync.engine import Engine

        def start() -> tuple[Any, str]:
            from chat_tui.config.providers import load_model_config
            from chat_tui.server.embedded import ensure_local_account, start_embedded

            config = models if models is not None else load_model_config()
            offer = None
            if config.assistant != "echo" and config.provider() is None:
                offer = probe_local_offer()
            assistant = embedded_assistant(config, probe=False, offer=offer)
            db = directory / "server.db"
            password = ensure_local_account(db, username)
            server = start_embedded(db, assistant=assistant)
            if mode is not None:
                mode.server, mode.offer = server, offer
            return server, password

        server, password = await asyncio.to_thread(start)
        if on_started is not None:
            on_started(server)
        token_file = directory / "token"
        try:
            token: str | None = token_file.read_text(encoding="utf-8").strip() or None
        except OSError:
            token = None
        async with ApiClient(server.url, token) as api:
            if token is not None:
                try:
                    await api.list_conversations()
                except Unauthorized:
                    token = None
            if token is None:
                login = await api.login(username, password,
                                        f"chat-tui on {socket.gethostname()}")
                token = login.access_token
                fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(token)
        return Engine(store, server.url, token, settings)

    return factory


def welcome_once(directory: Path) -> Callable[[Any], None]:
    """``on_ready`` hook of the local mode: on the very first start (no marker file
    ``directory/welcome-created`` and an empty cache), create the welcome conversation with
    the assistant and ask it a first question, through the engine (outbox, local echo)."""

    def hook(app: Any) -> None:
        marker = directory / "welcome-created"
        engine = app.engine
        if marker.exists() or engine is None:
            return
        if not app.store.list_conversations():
            cid = engine.create_conversation(WELCOME_TITLE, assistant=True)
            engine.send(cid, WELCOME_QUESTION)
            app.refresh_conversations()
            app.open_conversation(cid)
        marker.write_text("1", encoding="utf-8")

    return hook


#: Modules that third-party packages import when installed but the app never uses: the
#: PostgreSQL drivers Peewee (and ``playhouse.migrate``, via ``postgres_ext``) try at import
#: (the server's ``postgresql://`` support: ~10 ms, 4.4 MB of libpq and its own libssl), and
#: httpx's command-line client ``httpx._main``, imported by ``import httpx`` whenever click
#: is installed (it is, for uvicorn): click, Pygments lexers, ``rich.syntax``/``progress``
#: (~25 ms, 2.2 MB); benchmarks/NOTES.md gives the figures.
UNUSED_OPTIONAL_IMPORTS = ("psycopg2", "psycopg", "psycopg2cffi", "httpx._main")


def _skip_unused_optional_imports() -> None:
    """Mark :data:`UNUSED_OPTIONAL_IMPORTS` missing in the app's process.

    A ``None`` entry in ``sys.modules`` makes the import raise ``ImportError``, which
    Peewee treats as "driver not installed" and httpx as "CLI extras not installed" (its
    ``httpx.main`` then only prints a hint). Safe for this process: the client only opens
    SQLite files, and so does the embedded server of the local mode (``start_embedded``
    takes a file path; uvicorn imports click itself, which stays available). Only for a
    module nobody imported yet.
    """
    for name in UNUSED_OPTIONAL_IMPORTS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]



def _offer_fresh_cache(store: Any, locked: Exception) -> Any:
    """Say that the cache cannot be opened (sync rule D8: its key is missing or wrong) and,
    on a terminal, offer to set it aside (``<file>.corrupt-<time>``, never deleted) and
    start a fresh cache. Returns the opened fresh :class:`~chat_tui.store.Cache`, or None
    (declined, not a terminal, or the account's engine runs elsewhere)."""
    from chat_tui.store import Cache
    from chat_tui.store.recovery import start_fresh
    from chat_tui.sync.lock import AnotherEngineRunning, EngineLock

    print(f"chat-tui: {locked}", file=sys.stderr)
    if not sys.stdin.isatty():
        return None
    try:
        answer = input("Set the unreadable cache aside and start a fresh one, resynced from "
                       "the server? [y/N] ")
    except EOFError:
        return None
    if answer.strip().lower() not in ("y", "yes"):
        return None
    path = store.path
    lock = EngineLock(path.with_name(path.name + ".lock"))
    try:
        lock.acquire()
    except AnotherEngineRunning as exc:
        print(f"chat-tui: {exc}; nothing was moved", file=sys.stderr)
        return None
    try:
        moved = start_fresh(path)
    finally:
        lock.release()
    print(f"chat-tui: the unreadable cache was moved to {moved}", file=sys.stderr)
    fresh = Cache(path, store.me, user_id=store._user_id, server_url=store._server_url)
    fresh.open()
    return fresh


def first_frame_reader(path: Path, username: str) -> FirstFrameReader | None:
    """The first frame's reader of the cache ``path`` of ``username``, or None when
    ``Cache.open`` must come first (a file not exactly as a clean close left it, another
    schema, or a key that does not open it; :meth:`FirstFrameReader.open`).

    An encrypted cache is read with its raw key (sync rules D6, D7), looked up where its
    marker says: a key file is read directly, the keyring asked once, a passphrase asked
    on the terminal (the one thing allowed to delay the first frame). The key is
    remembered in the process (``chat_tui.config.cachekeys``), so the cache's own open
    after the first frame asks nothing again. A plain cache costs one missing-file check.

    Raises:
        CacheLocked: the cache is encrypted and its key is missing (keyring entry or key
            file gone, passphrase not given) or its marker is broken (sync rule D8).
    """
    from chat_tui.store.cleanstamp import is_clean
    from chat_tui.store.first_frame import FirstFrameReader

    if not is_clean(path):
        return None
    from chat_tui.config.cachekeys import CacheKeyMissing, load_cache_key
    from chat_tui.store.errors import CacheLocked

    try:
        key = load_cache_key(path)
    except (CacheKeyMissing, ValueError) as exc:
        raise CacheLocked(path, str(exc)) from exc
    return FirstFrameReader.open(path, username, key)


def launch(args: Any = None) -> int:
    """Pick the account (see module doc), open its cache and run :class:`ChatApp`.

    ``args``: the ``argparse.Namespace`` of ``chat-tui`` (``user``, ``server``), or None.
    Returns the exit status: 0, or 1 with a message on stderr when the terminal app cannot
    be imported (the headless commands still work), for a bad config file (its ``[sync]``
    table, or its providers in the local mode), an unknown
    ``--user``/``--server`` (or ``[account]`` in the config file) with no saved login, or a
    cache written by a newer chat-tui. Logs go to the log file
    (:func:`chat_tui.config.logfile.setup_logging`).
    """
    gc.disable()  # until the first frame (module doc); back on however the app ends
    try:
        return _launch(args)
    finally:
        gc.enable()


def _launch(args: Any) -> int:
    """:func:`launch` with the garbage collector off until the app's first frame."""
    _skip_unused_optional_imports()
    try:
        from chat_tui.ui.app import ChatApp
    except ImportError as exc:
        print(f"chat-tui: the terminal app is not available ({exc}); the headless commands "
              "work: see `chat-tui --help`", file=sys.stderr)
        return 1
    from chat_tui.config import (
        AccountError,
        account_choice,
        load_accounts,
        load_settings,
        pick_account,
    )
    from chat_tui.config.logfile import setup_logging

    setup_logging()
    try:
        user, server_url = account_choice(getattr(args, "user", None),
                                          getattr(args, "server", None))
        settings = load_settings()
    except ValueError as exc:
        print(f"chat-tui: config: {exc}", file=sys.stderr)
        return 1
    embedded: list[Any] = []
    on_ready = None
    host: LocalMode | None = None
    if user or server_url or load_accounts():
        try:
            account = pick_account(user, server_url)
        except (AccountError, ValueError) as exc:
            print(f"chat-tui: {exc}", file=sys.stderr)
            return 1
        path, username = account.db_path, account.username
        cache_args: dict[str, Any] = {"user_id": account.user_id,
                                      "server_url": account.server_url}
        factory: Any = configured_factory(account, settings)
    else:
        from chat_tui.config.providers import load_model_config

        try:
            models = load_model_config()
        except ValueError as exc:
            print(f"chat-tui: config: {exc}", file=sys.stderr)
            return 1
        directory = local_dir()
        username = local_username()
        path, cache_args = directory / "cache.db", {}
        host = LocalMode()
        factory = local_factory(settings, username, directory, embedded.append, models, host)
        on_ready = welcome_once(directory)

    def open_cache() -> Cache:
        from chat_tui.store import Cache

        store = Cache(path, username, **cache_args)
        store.open()
        return store

    from chat_tui.store.errors import CacheLocked

    locked: CacheLocked | None = None
    try:
        reader = first_frame_reader(path, username)
    except CacheLocked as exc:
        reader, locked = None, exc
    if reader is not None:
        app = ChatApp(reader, factory, on_ready=on_ready, open_cache=open_cache,
                      models_host=host, on_first_frame=gc.enable)
    else:
        from chat_tui.store import Cache, SchemaTooNew

        try:
            if locked is not None:
                raise locked
            store = open_cache()
        except SchemaTooNew as exc:
            print(f"chat-tui: {exc}", file=sys.stderr)
            return 1
        except CacheLocked as exc:
            store = _offer_fresh_cache(Cache(path, username, **cache_args), exc)
            if store is None:
                return 1
        if store.recovery is not None:
            print(f"chat-tui: {store.recovery.message}", file=sys.stderr)
        app = ChatApp(store, factory, on_ready=on_ready, models_host=host,
                      on_first_frame=gc.enable)
    try:
        app.run()
    finally:
        for server in embedded:
            server.stop()
        app.store.close()  # the cache, or the reader when the app ended before it opened
    return app.return_code or 0

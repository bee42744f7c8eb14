"""Settings of a server instance: database, send rate and the assistant responder, and
:func:`load_providers_file`, the providers file of ``chat-tui-server serve --providers``."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


@dataclass
class ProviderSettings:
    """One OpenAI-compatible endpoint the assistant may use.

    ``name``: how ``GET /v1/models`` names it; ``base_url``: the API root (``.../v1``;
    None: the ``openai`` package default); ``api_key``: the key, or None when the endpoint
    needs none (never logged, never shown); ``key_problem``: a readable reason the key is
    missing (then every reply ends as an error saying so), or None; ``timeout``: seconds a
    reply, or a model list request, may take.
    """

    name: str
    base_url: str | None
    api_key: str | None = field(default=None, repr=False)
    key_problem: str | None = None
    timeout: float = 60.0


@dataclass
class AssistantSettings:
    """How the assistant member answers.

    ``kind``: ``"echo"`` (built-in demo) or ``"openai"`` (OpenAI-compatible providers);
    ``providers``: for ``openai``, the endpoints (the first serves the replies; all are
    listed by ``GET /v1/models``); when empty, one provider ``default`` is built from
    ``base_url`` and the ``OPENAI_API_KEY`` environment variable; ``model``: the model of
    the replies (None: the first one the provider lists); ``timeout``: seconds an upstream
    reply may take in total before it ends as an error (a provider's own ``timeout`` wins);
    ``echo_delay``: seconds between the words the echo responder streams; ``echo_note``:
    text the echo adds to every reply (how to configure a model), or None;
    ``models_ttl``: seconds the server keeps a provider's model list. ``lease``: seconds a
    process holds a conversation's replies without renewing (a crashed process's
    conversations are taken over after it; ``chat_tui.server.assistant``).
    """

    kind: str = "echo"
    base_url: str | None = None
    model: str | None = "gpt-4o-mini"
    timeout: float = 60.0
    echo_delay: float = 0.05
    providers: list[ProviderSettings] = field(default_factory=list)
    echo_note: str | None = None
    models_ttl: float = 60.0
    lease: float = 10.0


@dataclass(frozen=True)
class LoginLimits:
    """Login throttling (docs/api.md, ``POST /v1/login``, Throttling): at most
    ``per_account`` failed logins per username and ``per_address`` per client address
    within the last ``window`` seconds; past either, logins of that name or from that
    address answer 429 until the oldest counted failure leaves the window. 0 disables
    that count. Counted in the database, so every server process on it shares them."""

    per_account: int = 10
    per_address: int = 100
    window: float = 900.0


@dataclass(frozen=True)
class ConnectionLimits:
    """Connection limits (docs/api.md, Limits, Connections; applied by
    :mod:`chat_tui.server.protocol` and the body-limit middleware):
    ``header_timeout`` seconds for a whole request head (from the connection's opening or
    its previous answer; else the connection is closed); ``body_timeout`` seconds for a
    whole request body (else 408); ``keep_alive`` seconds an idle connection stays open
    between requests (uvicorn ``timeout_keep_alive``); ``max_connections`` open
    connections at most (more are closed at once; uvicorn ``limit_concurrency`` answers
    503 to requests over it); ``max_head_bytes`` of request line plus headers (h11; over
    it: 400)."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive: int = 5
    max_connections: int = 1000
    max_head_bytes: int = 16 * 1024


@dataclass
class Settings:
    """Server settings: ``db`` a SQLite path or database URL, ``rate_limit`` sends per
    second per token (0: off), ``logins`` the login throttling, ``connections`` the
    connection limits, ``assistant`` the responder."""

    db: str | Path
    rate_limit: float = 20.0
    logins: LoginLimits = field(default_factory=LoginLimits)
    connections: ConnectionLimits = field(default_factory=ConnectionLimits)
    assistant: AssistantSettings = field(default_factory=AssistantSettings)


_PROVIDER_KEYS = {"name", "base_url", "api_key_env", "timeout"}


def load_providers_file(path: Path, environ: Mapping[str, str] | None = None,
                        ) -> AssistantSettings:
    """The ``openai`` assistant described by the TOML file ``path``: top-level
    ``default_model`` (optional: else the first model the first provider lists) and
    ``default_provider`` (optional: else the first), then one ``[[providers]]`` table per
    endpoint with ``name``, ``base_url``, optional ``api_key_env`` (the environment
    variable holding its key, read now from ``environ``) and ``timeout`` (seconds, default
    60). The same shape as the client's ``config.toml`` providers, keys from the
    environment only (a server has no keyring).

    Raises:
        ValueError: unreadable or invalid file, no provider, an unknown or invalid key, two
            providers with one name, an unknown ``default_provider``, or an
            ``api_key_env`` that is not set; the message names the key, never a key value.
    """
    environ = os.environ if environ is None else environ
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from exc
    unknown = set(data) - {"default_model", "default_provider", "providers"}
    if unknown:
        raise ValueError(f"{path}: unknown key {sorted(unknown)[0]!r}")
    tables = data.get("providers")
    if not isinstance(tables, list) or not tables:
        raise ValueError(f"{path}: no [[providers]] table")
    providers: list[ProviderSettings] = []
    for index, table in enumerate(tables):
        where = f"{path}: [[providers]] #{index + 1}"
        if not isinstance(table, dict):
            raise ValueError(f"{where}: must be a table")
        extra = set(table) - _PROVIDER_KEYS
        if extra:
            raise ValueError(f"{where}: unknown key {sorted(extra)[0]!r}")
        name, base_url = table.get("name"), table.get("base_url")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{where}: name must be a non-empty string")
        if any(p.name == name for p in providers):
            raise ValueError(f"{where}: the name {name!r} is used twice")
        parts = urlsplit(base_url) if isinstance(base_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{where}: base_url must be an http(s) URL")
        timeout = table.get("timeout", 60.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"{where}: timeout must be a number of seconds > 0")
        key = None
        env = table.get("api_key_env")
        if env is not None:
            if not isinstance(env, str) or not environ.get(env, "").strip():
                raise ValueError(f"{where}: the environment variable {env} is not set")
            key = environ[env].strip()
        providers.append(ProviderSettings(name, base_url.rstrip("/"), key, None,
                                          float(timeout)))
    chosen = data.get("default_provider")
    if chosen is not None:
        first = [p for p in providers if p.name == chosen]
        if not first:
            raise ValueError(f"{path}: default_provider: no provider is named {chosen!r}")
        providers = first + [p for p in providers if p.name != chosen]
    model = data.get("default_model")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise ValueError(f"{path}: default_model must be a non-empty string")
    return AssistantSettings(kind="openai", model=model, providers=providers,
                             timeout=providers[0].timeout)

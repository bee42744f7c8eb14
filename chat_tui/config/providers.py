"""Model providers in ``config.toml``: where the local mode's assistant gets its replies.

A provider is an OpenAI-compatible endpoint. The file names one or more, and the model to
use by default; top-level keys come before the first table::

    default_model = "llama3.2"          # optional: else the provider's first listed model
    default_provider = "ollama"         # optional: else the first [[providers]] entry
    # assistant = "echo"                # optional: the built-in demo instead of a model

    [[providers]]
    name = "ollama"
    base_url = "http://127.0.0.1:11434/v1"
    timeout = 60                        # seconds a reply may take (default 60)

    [[providers]]
    name = "openai"
    base_url = "https://api.openai.com/v1"
    api_key_env = "OPENAI_API_KEY"      # the key comes from this environment variable
    # api_key_keyring = "openai"        # ... or from this OS keyring entry

The key itself is never written to ``config.toml`` by the app: it comes from the named
environment variable, or from the OS keyring entry (service ``chat-tui``, user
``provider:<entry>``) with a 0600 file ``<config dir>/chat-tui/keys/<entry>`` as the
fallback where no keyring works, like the login tokens (:mod:`chat_tui.config.secrets`).
A provider with neither needs no key (Ollama).

Only the standard library at import; ``keyring`` is imported by the key functions.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from chat_tui.config.paths import config_dir
from chat_tui.config.settings import config_file

log = logging.getLogger(__name__)

#: Where Ollama answers by default (its OpenAI-compatible root).
OLLAMA_BASE_URL = "http://127.0.0.1:11434/v1"
#: Environment variable that moves the local probe elsewhere (tests, a non-default port).
LOCAL_URL_ENV = "CHAT_TUI_LOCAL_MODEL_URL"
#: Default seconds a provider's reply may take.
DEFAULT_TIMEOUT = 60.0
#: Keyring service of provider keys (the same as the login tokens').
SERVICE = "chat-tui"

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_PROVIDER_KEYS = {"name", "base_url", "api_key_env", "api_key_keyring", "timeout"}
_TOP_KEYS = {"default_model", "default_provider", "assistant"}


@dataclass(frozen=True)
class Provider:
    """One OpenAI-compatible endpoint.

    ``name``: ``[A-Za-z0-9_.-]{1,64}``, unique in the file; ``base_url``: ``http(s)://``
    root of the API (``.../v1``); ``api_key_env``: name of the environment variable holding
    the key, or None; ``api_key_keyring``: keyring entry name holding it, or None (at most
    one of the two); ``timeout``: seconds a reply may take, > 0.
    """

    name: str
    base_url: str
    api_key_env: str | None = None
    api_key_keyring: str | None = None
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class ModelConfig:
    """The model part of ``config.toml``.

    ``providers``: in file order; ``default_model``: model name or None (the provider's
    first listed model); ``default_provider``: the name of the provider that serves
    ``default_model`` or None (the first one); ``assistant``: ``"model"`` (use the
    providers; the echo when there are none) or ``"echo"`` (always the built-in demo).
    """

    providers: tuple[Provider, ...] = ()
    default_model: str | None = None
    default_provider: str | None = None
    assistant: str = "model"
    path: Path | None = field(default=None, compare=False)

    def provider(self) -> Provider | None:
        """The provider that serves the default model, or None when there is none."""
        for provider in self.providers:
            if self.default_provider in (None, provider.name):
                return provider
        return None


def _string(where: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: want a non-empty string, got {value!r}")
    return value.strip()


def _provider(index: int, table: object) -> Provider:
    where = f"[[providers]] #{index + 1}"
    if not isinstance(table, dict):
        raise ValueError(f"{where}: must be a table")
    unknown = set(table) - _PROVIDER_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown key {sorted(unknown)[0]!r} "
                         f"(want {', '.join(sorted(_PROVIDER_KEYS))})")
    for key in ("name", "base_url"):
        if key not in table:
            raise ValueError(f"{where}: {key} is missing")
    name = _string(f"{where} name", table["name"])
    if not _NAME.match(name):
        raise ValueError(f"{where} name: {name!r} is not [A-Za-z0-9_.-]{{1,64}}")
    where = f"[[providers]] {name}"
    base_url = _string(f"{where} base_url", table["base_url"]).rstrip("/")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{where} base_url: {base_url!r} is not an http(s) URL")
    env = table.get("api_key_env")
    entry = table.get("api_key_keyring")
    if env is not None and entry is not None:
        raise ValueError(f"{where}: give api_key_env or api_key_keyring, not both")
    timeout = table.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ValueError(f"{where} timeout: want a number of seconds > 0, got {timeout!r}")
    return Provider(
        name=name,
        base_url=base_url,
        api_key_env=None if env is None else _string(f"{where} api_key_env", env),
        api_key_keyring=None if entry is None else _string(f"{where} api_key_keyring", entry),
        timeout=float(timeout),
    )


def load_model_config(path: Path | None = None) -> ModelConfig:
    """Read the providers and the default model from ``path`` (default: ``config.toml``).

    A missing file gives an empty :class:`ModelConfig` (no providers: the echo).

    Raises:
        ValueError: invalid TOML, an unknown key, a missing or invalid value, two providers
            with one name, or a ``default_provider`` no provider has; the message names
            the key.
    """
    path = path or config_file()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ModelConfig(path=path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from exc
    raw = data.get("providers", [])
    if not isinstance(raw, list):
        raise ValueError("providers: write each provider as a [[providers]] table")
    providers = tuple(_provider(i, table) for i, table in enumerate(raw))
    names = [p.name for p in providers]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"[[providers]]: the name {name!r} is used twice")
    model = data.get("default_model")
    chosen = data.get("default_provider")
    assistant = data.get("assistant", "model")
    if assistant not in ("model", "echo"):
        raise ValueError(f"assistant: want \"model\" or \"echo\", got {assistant!r}")
    if chosen is not None and _string("default_provider", chosen) not in names:
        raise ValueError(f"default_provider: no [[providers]] entry is named {chosen!r}")
    return ModelConfig(
        providers=providers,
        default_model=None if model is None else _string("default_model", model),
        default_provider=None if chosen is None else chosen.strip(),
        assistant=assistant,
        path=path,
    )


# -- keys ------------------------------------------------------------------------------


def _key_file(entry: str) -> Path:
    if not _NAME.match(entry):
        raise ValueError(f"keyring entry {entry!r} is not [A-Za-z0-9_.-]{{1,64}}")
    folder = config_dir() / "keys"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder / entry


def store_provider_key(entry: str, key: str) -> str:
    """Save the API ``key`` under keyring entry ``entry``; returns ``"keyring"`` or
    ``"file"`` (a 0600 file ``<config dir>/chat-tui/keys/<entry>`` where no keyring works).

    Raises:
        ValueError: an empty key, or an entry name outside ``[A-Za-z0-9_.-]{1,64}``.
    """
    if not key.strip():
        raise ValueError("the key is empty")
    path = _key_file(entry)
    import keyring
    import keyring.errors

    try:
        keyring.set_password(SERVICE, f"provider:{entry}", key.strip())
        path.unlink(missing_ok=True)
        return "keyring"
    except keyring.errors.KeyringError as exc:
        log.info("keyring unavailable (%s); using a 0600 key file", type(exc).__name__)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, key.strip().encode("utf-8"))
    finally:
        os.close(fd)
    return "file"


def provider_key(provider: Provider, environ: dict[str, str] | None = None) -> str | None:
    """The API key of ``provider``: from its environment variable, or its keyring entry
    (then the 0600 key file); None when it needs none.

    Raises:
        LookupError: the key is configured but not found (the message says where it was
            looked for and how to set it; it never contains a key).
    """
    environ = dict(os.environ if environ is None else environ)
    if provider.api_key_env is not None:
        value = environ.get(provider.api_key_env, "").strip()
        if not value:
            raise LookupError(f"the environment variable {provider.api_key_env} (the key of "
                              f"provider {provider.name}) is not set")
        return value
    if provider.api_key_keyring is None:
        return None
    entry = provider.api_key_keyring
    import keyring
    import keyring.errors

    try:
        value = keyring.get_password(SERVICE, f"provider:{entry}")
        if value:
            return value
    except keyring.errors.KeyringError:
        pass
    try:
        value = _key_file(entry).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        value = ""
    if not value:
        raise LookupError(f"no key is stored under the keyring entry {entry!r} (provider "
                          f"{provider.name}): run `chat-tui models --set-key {entry}` "
                          "and type it")
    return value


# -- writing the file -------------------------------------------------------------------


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def add_provider(provider: Provider, default_model: str | None = None,
                 path: Path | None = None) -> Path:
    """Add ``provider`` to ``config.toml`` (``path``); when the file names no default model
    yet, ``default_model`` (served by this provider) becomes the default. Returns the path written.

    Keeps every other line of the file as it is: the top-level keys go before the first
    table, the ``[[providers]]`` table at the end. Writes no key, only where the key is
    found (``api_key_env`` / ``api_key_keyring``). The new file is written next to the old
    one and renamed over it, so a crash leaves one or the other.

    Raises:
        ValueError: the file is invalid, or has a provider with this name already.
    """
    path = path or config_file()
    current = load_model_config(path)
    if any(p.name == provider.name for p in current.providers):
        raise ValueError(f"{path}: a provider named {provider.name!r} is configured already")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    lines = text.splitlines()
    top: list[str] = []
    if current.default_model is None and default_model:
        top.append(f"default_model = {_quote(default_model)}")
        if current.default_provider is None and current.providers:
            top.append(f"default_provider = {_quote(provider.name)}")
    first_table = next((i for i, line in enumerate(lines)
                        if line.lstrip().startswith("[")), len(lines))
    lines[first_table:first_table] = top + ([""] if top and first_table < len(lines) else [])
    table = ["", "[[providers]]", f"name = {_quote(provider.name)}",
             f"base_url = {_quote(provider.base_url)}"]
    if provider.api_key_env:
        table.append(f"api_key_env = {_quote(provider.api_key_env)}")
    if provider.api_key_keyring:
        table.append(f"api_key_keyring = {_quote(provider.api_key_keyring)}")
    table.append(f"timeout = {provider.timeout:g}")
    new_text = "\n".join(lines + table).lstrip("\n") + "\n"
    tomllib.loads(new_text)  # never write a file we could not read back
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(new_text, encoding="utf-8")
    os.replace(temporary, path)
    return path


def setup_hint(path: Path | None = None) -> str:
    """How to configure a model, for the echo's reply and ``chat-tui models``: the app's
    settings screen (F2), or Ollama's and OpenAI's ``[[providers]]`` tables and where the
    file is."""
    path = path or config_file()
    return (
        "To use a language model, open the settings screen (F2 in chat-tui, or "
        "\"Settings\" in the command palette: ctrl+p) and add a provider; it is used at "
        f"once. Or add these lines to {path} and start chat-tui again:\n\n"
        "    [[providers]]\n"
        '    name = "ollama"\n'
        f'    base_url = "{OLLAMA_BASE_URL}"\n\n'
        "or, for OpenAI (the key stays in the environment, never in the file):\n\n"
        '    default_model = "gpt-4o-mini"\n\n'
        "    [[providers]]\n"
        '    name = "openai"\n'
        '    base_url = "https://api.openai.com/v1"\n'
        '    api_key_env = "OPENAI_API_KEY"\n\n'
        "Any OpenAI-compatible endpoint works the same way (its base_url, and api_key_env "
        "or api_key_keyring for its key)."
    )


def local_model_url(environ: dict[str, str] | None = None) -> str:
    """Where the first start looks for a local OpenAI-compatible server: Ollama's
    :data:`OLLAMA_BASE_URL`, or the value of ``CHAT_TUI_LOCAL_MODEL_URL``."""
    environ = os.environ if environ is None else environ
    return (environ.get(LOCAL_URL_ENV) or OLLAMA_BASE_URL).rstrip("/")


def probe_models(base_url: str, key: str | None = None, timeout: float = 1.0) -> list[str]:
    """The model names an OpenAI-compatible server at ``base_url`` lists (``GET
    {base_url}/models``), in its order. Blocking (call it from a worker thread).

    Raises:
        OSError: no answer, not HTTP 200, or not a model list (``httpx`` errors are
            re-raised as ``ConnectionError`` with a readable message).
    """
    import httpx

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        answer = httpx.get(f"{base_url.rstrip('/')}/models", headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise ConnectionError(f"{base_url} did not answer ({type(exc).__name__})") from exc
    if answer.status_code != 200:
        raise ConnectionError(f"{base_url}/models answered HTTP {answer.status_code}")
    try:
        return [str(item["id"]) for item in answer.json()["data"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConnectionError(f"{base_url}/models did not answer a model list") from exc

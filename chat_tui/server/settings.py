"""Settings of a server instance: database, send rate and the assistant responder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


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
    ``models_ttl``: seconds the server keeps a provider's model list.
    """

    kind: str = "echo"
    base_url: str | None = None
    model: str | None = "gpt-4o-mini"
    timeout: float = 60.0
    echo_delay: float = 0.05
    providers: list[ProviderSettings] = field(default_factory=list)
    echo_note: str | None = None
    models_ttl: float = 60.0


@dataclass
class Settings:
    """Server settings: ``db`` a SQLite path or database URL, ``rate_limit`` sends per
    second per token (0: off), ``assistant`` the responder."""

    db: str | Path
    rate_limit: float = 20.0
    assistant: AssistantSettings = field(default_factory=AssistantSettings)

"""Settings of a server instance: database, send rate and the assistant responder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class AssistantSettings:
    """How the assistant member answers.

    ``kind``: ``"echo"`` (built-in demo) or ``"openai"`` (any OpenAI-compatible endpoint);
    ``base_url``/``model`` for ``openai`` (key from ``OPENAI_API_KEY``); ``timeout``: seconds
    an upstream reply may take in total before it ends as an error; ``echo_delay``: seconds
    between the words the echo responder streams.
    """

    kind: str = "echo"
    base_url: str | None = None
    model: str = "gpt-4o-mini"
    timeout: float = 60.0
    echo_delay: float = 0.05


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

"""The config file: engine settings and the default account.

The file is ``<user config dir>/chat-tui/config.toml``. Its ``[sync]`` table overrides the
defaults of :class:`Settings` (keys are its field names); its ``[account]`` table names the
server (and optionally the user) that ``chat-tui`` uses when ``--server`` / ``--user`` are
not given; its ``[ui]`` table keeps the app's theme (:func:`load_theme`), for example::

    [account]
    server = "https://chat.example.org"
    user = "alice"

    [sync]
    retention_days = 30
    max_queue_age = 3600

An environment variable ``CHAT_TUI_<FIELD NAME IN UPPER CASE>`` wins over the file
(``CHAT_TUI_BACKOFF_BASE=0.05``). Tests build :class:`Settings` directly with small values.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields
from pathlib import Path

from chat_tui.config.paths import config_dir


@dataclass(frozen=True)
class Settings:
    """Tunables of the sync engine. All durations are in seconds.

    Attributes:
        retention_days: cached messages older than this many days are deleted at start
            and once a day (sync rule R1); 0 keeps everything. Default 90.
        retention_interval: seconds between two retention runs while running. Default 86400.
        max_attempts: attempts that reached the server before an action becomes ``failed``
            (outbox rule 5). Default 8.
        max_queue_age: a queued message older than this is ``expired`` instead of sent
            (outbox rule 6); 0 turns expiry off. Default 86400 (24 h).
        backoff_base: first backoff step of ``backoff.expo`` (outbox rule 3, sync rule C2).
            Default 1.0.
        backoff_cap: largest backoff step. Default 300.0 (5 min).
        probe_cap: largest wait between two health probes while offline (sync rule C2), so
            a returning server is noticed within this time even after a long outage.
            Default 30.0.
        probe_timeout: timeout of the ``GET /v1/health`` reachability probe. Default 3.0.
        request_timeout: timeout of every other request except the long-poll. Default 15.0.
        poll_timeout: ``timeout`` of the ``/v1/sync`` long-poll (0..30). Default 25.
        page_size: messages per backfill page (1..500). Default 50.
    """

    retention_days: int = 90
    retention_interval: float = 86400.0
    max_attempts: int = 8
    max_queue_age: float = 86400.0
    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    probe_cap: float = 30.0
    probe_timeout: float = 3.0
    request_timeout: float = 15.0
    poll_timeout: int = 25
    page_size: int = 50

    def __post_init__(self) -> None:
        if self.retention_days < 0:
            raise ValueError("retention_days must be >= 0")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.max_queue_age < 0:
            raise ValueError("max_queue_age must be >= 0")
        if self.backoff_base <= 0 or self.backoff_cap < self.backoff_base:
            raise ValueError("backoff_base must be > 0 and backoff_cap >= backoff_base")
        if self.probe_cap <= 0:
            raise ValueError("probe_cap must be > 0")
        if not 0 <= self.poll_timeout <= 30:
            raise ValueError("poll_timeout must be within 0..30 seconds (docs/api.md)")
        if not 1 <= self.page_size <= 500:
            raise ValueError("page_size must be within 1..500 (docs/api.md)")

    def replace(self, **changes: object) -> Settings:
        """Return a copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


def config_file() -> Path:
    """``<user config dir>/chat-tui/config.toml`` (it need not exist)."""
    return config_dir() / "config.toml"


def _read_table(path: Path | None, table: str) -> dict[str, object]:
    """The ``[table]`` of the TOML file ``path`` (default :func:`config_file`) as a dict;
    empty when the file or the table is missing.

    Raises:
        ValueError: the file is not valid TOML, or ``table`` is not a table.
    """
    path = path or config_file()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    import tomllib  # only with a config file: ~4 ms of every start without one

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from exc
    value = data.get(table, {})
    if not isinstance(value, dict):
        raise ValueError(f"{path}: [{table}] must be a table")
    return value


def load_account_defaults(path: Path | None = None) -> tuple[str | None, str | None]:
    """``(user, server)`` from the ``[account]`` table of the config file (``None`` where a
    key is missing): the account ``chat-tui`` uses when ``--user`` / ``--server`` are not
    given.

    Raises:
        ValueError: invalid TOML, an unknown key, or a value that is not a string.
    """
    table = _read_table(path, "account")
    unknown = set(table) - {"user", "server"}
    if unknown:
        raise ValueError(f"[account]: unknown key {sorted(unknown)[0]!r} (want server, user)")
    values = []
    for key in ("user", "server"):
        value = table.get(key)
        if value is not None and not (isinstance(value, str) and value.strip()):
            raise ValueError(f"[account] {key}: want a non-empty string, got {value!r}")
        values.append(value.strip() if isinstance(value, str) else None)
    return values[0], values[1]


def load_theme(path: Path | None = None) -> str | None:
    """The theme name kept in the ``[ui]`` table (``theme = "nord"``), or None when there
    is none (or the file is unreadable: the default theme is never worth an error). Read
    before the app's first frame: without a config file it imports nothing (no
    ``tomllib``)."""
    try:
        table = _read_table(path, "ui")
    except (ValueError, OSError):
        return None
    value = table.get("theme")
    return value if isinstance(value, str) and value.strip() else None


def load_settings(path: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read settings from the ``[sync]`` table of ``path`` (default :func:`config_file`) and
    the environment.

    Raises:
        ValueError: invalid TOML, or a value of the wrong type or out of range, naming the key.
    """
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, object] = dict(_read_table(path, "sync"))
    kinds = {f.name: f.type for f in fields(Settings)}
    for name in kinds:
        env = environ.get(f"CHAT_TUI_{name.upper()}")
        if env is not None:
            values[name] = env
    converted: dict[str, object] = {}
    for name, value in values.items():
        if name not in kinds:
            raise ValueError(f"unknown setting {name!r}")
        kind = int if kinds[name] in ("int", int) else float
        try:
            converted[name] = kind(value)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise ValueError(f"setting {name!r}: {value!r} is not a number") from exc
    return Settings(**converted)  # type: ignore[arg-type]

"""The user's config.toml in tests: :func:`write_config`."""

from __future__ import annotations

from pathlib import Path


def write_config(text: str) -> Path:
    """Write ``text`` as the user's whole config.toml (its folder made if missing; the
    tests' own ``XDG_CONFIG_HOME``); returns its path."""
    from chat_tui.config import config_file

    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path

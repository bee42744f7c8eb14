"""Platform directories of the client, resolved at call time (tests isolate XDG dirs).

Every function returns a :class:`pathlib.Path` and creates the directory when missing.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs

APP_NAME = "chat-tui"


def data_dir() -> Path:
    """``platformdirs.user_data_dir("chat-tui")``: holds one cache folder per server."""
    path = Path(platformdirs.user_data_dir(APP_NAME))
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    """``platformdirs.user_config_dir("chat-tui")``: settings, accounts, token files."""
    path = Path(platformdirs.user_config_dir(APP_NAME))
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_dir() -> Path:
    """``platformdirs.user_log_dir("chat-tui")``: log files (never the terminal)."""
    path = Path(platformdirs.user_log_dir(APP_NAME))
    path.mkdir(parents=True, exist_ok=True)
    return path

"""Where the server keeps its files by default (platformdirs; honours ``XDG_*`` on Linux)."""

from __future__ import annotations

from pathlib import Path

import platformdirs

APP_NAME = "chat-tui-server"


def default_db_path() -> Path:
    """The default SQLite file: ``<user data dir>/chat-tui-server/server.db`` (dir created)."""
    directory = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    directory.mkdir(parents=True, exist_ok=True)
    return directory / "server.db"


def log_file_path() -> Path:
    """The server log file: ``<user log dir>/chat-tui-server/server.log`` (dir created)."""
    directory = Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))
    directory.mkdir(parents=True, exist_ok=True)
    return directory / "server.log"

"""The client's log file, one setup for the app and the headless commands.

Records go to ``<user log dir>/chat-tui/chat-tui.log`` (:func:`chat_tui.config.log_dir`),
never to the terminal: the app owns the screen and the commands' output is for scripts.
"""

from __future__ import annotations

import logging
from pathlib import Path

from chat_tui.config.paths import log_dir

LOG_FILE_NAME = "chat-tui.log"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: Libraries kept at WARNING. httpx and httpcore log every request line at INFO (the
#: request's URL and status; the client's own code logs no token and no message text);
#: Peewee logs every SQL statement; asyncio's INFO records are debugging noise.
QUIET_LOGGERS = ("httpx", "httpcore", "peewee", "asyncio")


def setup_logging() -> Path:
    """Send every log record at INFO and above to the log file, and nothing elsewhere.

    Replaces the root logger's handlers (so nothing reaches stderr) and sets
    :data:`QUIET_LOGGERS` to WARNING. Creates the log directory when missing.

    Returns:
        The log file's path.

    Raises:
        OSError: the log directory or file cannot be created or opened.
    """
    path = log_dir() / LOG_FILE_NAME
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return path

"""Server logging: one file under the user log dir, never the terminal, never secrets.

Requests are not access-logged (a long-polling fleet would flood the file); logins, logouts,
assistant failures and internal errors are. Tokens and passwords are never passed to a logger.
"""

from __future__ import annotations

import logging
from pathlib import Path

from chat_tui.server.paths import log_file_path

_LOGGERS = ("chat_tui.server", "uvicorn", "uvicorn.error")
_configured: Path | None = None


def configure_logging(path: Path | None = None, level: int = logging.INFO,
                      sql: bool = False) -> Path:
    """Send the server's and uvicorn's logs to ``path`` (default: :func:`log_file_path`).

    ``sql``: also log every SQL statement (Peewee's ``peewee`` logger at DEBUG; for
    debugging and for tests that check a waiting long-poll runs no queries; slow, and the
    parameters of a statement may include message bodies, never tokens: only their hashes
    are stored).

    Idempotent per process. The loggers stop propagating to the root logger, so an embedding
    client's own logging (and its terminal) stays untouched. Returns the log file path.
    """
    global _configured
    if _configured is not None:
        return _configured
    target = path or log_file_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(target, encoding="utf-8")
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s")
    )
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
    if sql:
        peewee_log = logging.getLogger("peewee")
        peewee_log.addHandler(handler)
        peewee_log.setLevel(logging.DEBUG)
        peewee_log.propagate = False
    logging.getLogger("uvicorn.access").disabled = True
    _configured = target
    return target

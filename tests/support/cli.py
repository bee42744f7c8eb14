"""The headless ``chat-tui`` commands as real subprocesses: :func:`cli`, :func:`login`.

Every command runs with short backoff and poll timeouts (:data:`FAST_ENV`) so offline
paths take seconds, not minutes.
"""

from __future__ import annotations

import os
import subprocess
import sys

#: Environment overrides that make the client's retries and long-polls short.
FAST_ENV = {"CHAT_TUI_BACKOFF_BASE": "0.05", "CHAT_TUI_BACKOFF_CAP": "0.5",
            "CHAT_TUI_POLL_TIMEOUT": "2", "CHAT_TUI_PROBE_TIMEOUT": "2"}


def cli(*args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m chat_tui.cli ARGS`` with :data:`FAST_ENV`; returns the finished process
    (text stdout/stderr captured, no status check). Raises ``subprocess.TimeoutExpired``
    after ``timeout`` seconds."""
    env = {**os.environ, **FAST_ENV}
    return subprocess.run([sys.executable, "-m", "chat_tui.cli", *args], input=stdin,
                          capture_output=True, text=True, timeout=timeout, env=env)


def login(url: str, name: str = "alice") -> None:
    """``chat-tui login URL --username NAME --password-stdin`` with the password
    ``NAME-pw``; asserts that it succeeded."""
    done = cli("login", url, "--username", name, "--password-stdin", stdin=f"{name}-pw\n")
    assert done.returncode == 0, done.stderr

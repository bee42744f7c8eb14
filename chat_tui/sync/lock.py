"""One running engine per cache file (sync rule D5).

:class:`EngineLock` takes an exclusive, non-blocking ``fcntl.flock`` on ``<cache>.lock`` and
writes the owner's pid into it. The kernel drops the lock when the process ends, even after
``kill -9``, so a stale lock never blocks the next run. Short commands (``chat-tui send``,
``new``, ``status``) do not take it: they only append to the outbox in one SQLite
transaction, which is safe next to a running engine (sync rule D1); the engine notices
their rows within ``chat_tui.sync.drain.OUTBOX_POLL_SECONDS``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; a second engine is not detected there
    fcntl = None  # type: ignore[assignment]


class AnotherEngineRunning(RuntimeError):
    """Another process runs the engine of this account. ``pid`` is its process id (int, or
    None when unknown); ``str()`` is a readable message."""

    def __init__(self, path: Path, pid: int | None):
        who = f"pid {pid}" if pid else "another process"
        super().__init__(f"another chat-tui is running on this account ({who}); it holds "
                         f"{path}. Use that one, or stop it first")
        self.pid = pid


class EngineLock:
    """An exclusive lock on ``path`` (``<cache file>.lock``)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`AnotherEngineRunning` at once (never waits)."""
        if self._fd is not None or fcntl is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                pid = int(os.pread(fd, 32, 0).decode().strip() or 0) or None
            except ValueError:
                pid = None
            os.close(fd)
            raise AnotherEngineRunning(self.path, pid) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)

"""The process-wide write lock of a cache file (sync rule D1): every write transaction of
this process on one file takes it before ``BEGIN IMMEDIATE``."""

from __future__ import annotations

import os
import threading
from collections import deque
from pathlib import Path


class FairWriteLock:
    """A reentrant lock that hands itself out in arrival order (FIFO).

    In-process writers queue here instead of spinning in SQLite's busy handler. FIFO
    matters: the sync worker applies a big response chunk after chunk, and a plain
    ``threading.Lock`` released and taken again by the same thread lets it cut in front of
    a waiting user action every time.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self._queue: deque[object] = deque()

    def acquire(self) -> None:
        """Wait (FIFO) until no other thread holds it; reentrant for the holder."""
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return
            ticket = object()
            self._queue.append(ticket)
            while self._owner is not None or self._queue[0] is not ticket:
                self._cond.wait()
            self._queue.popleft()
            self._owner, self._depth = me, 1
            self._cond.notify_all()  # the next ticket re-checks

    def release(self) -> None:
        """Release one level; the next waiter in line gets it when the depth reaches 0."""
        with self._cond:
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._cond.notify_all()


_WRITE_LOCKS: dict[str, FairWriteLock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def write_lock_for(path: Path) -> FairWriteLock:
    """The process-wide write lock of the cache file at ``path`` (one per real path, so two
    ``Cache`` objects on one file share it)."""
    key = os.path.realpath(path)
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(key, FairWriteLock())


__all__ = ["FairWriteLock", "write_lock_for"]

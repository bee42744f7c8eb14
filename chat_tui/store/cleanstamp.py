"""The clean stamp of a cache file (sync rule D4): ``<file>.clean`` holds the file's size
and modification time as its last clean close left them, so the next open can tell a file
nobody touched since from one that needs the full check.

Standard library only: the first frame's reader (:mod:`chat_tui.store.first_frame`) reads
the stamp before Peewee is imported.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["file_state", "is_clean", "read_stamp", "stamp_path"]


def stamp_path(path: Path) -> Path:
    """``<file>.clean``: size and mtime of the cache at its last clean close (rule D4)."""
    return path.with_name(path.name + ".clean")


def file_state(path: Path) -> str | None:
    """``"<size> <mtime ns>"`` of the file, or None when it is missing or has a WAL
    (open elsewhere, or not closed cleanly)."""
    if Path(str(path) + "-wal").exists():
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return f"{st.st_size} {st.st_mtime_ns}"


def read_stamp(path: Path) -> str | None:
    """The content of ``<file>.clean``, or None when it is missing or unreadable."""
    try:
        return stamp_path(path).read_text(encoding="ascii")
    except (OSError, ValueError):
        return None


def is_clean(path: Path) -> bool:
    """True when the file is exactly as a clean close left it (sync rule D4)."""
    state = file_state(path)
    return state is not None and state == read_stamp(path)

"""The cache commands (``chat-tui cache clear``) and the guard that keeps a cache in use
from being deleted (shared with ``chat-tui logout --flush``)."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from chat_tui.cli.base import (
    EXIT_ERROR,
    EXIT_OK,
    CliError,
    confirm,
    target_of,
    unsent_actions_text,
)

if TYPE_CHECKING:  # pragma: no cover
    from chat_tui.cli.base import Target


@contextlib.contextmanager
def cache_unused(path: Path) -> Iterator[None]:
    """Hold the account's engine lock (``<cache>.lock``, sync rule D5) while the cache file
    at ``path`` is checked and deleted, so no running app or ``chat-tui sync`` has it open
    (sync rule R2).

    Raises:
        CliError: another process runs the engine of this account (its pid in the text).
    """
    from chat_tui.sync.lock import AnotherEngineRunning, EngineLock

    lock = EngineLock(path.with_name(path.name + ".lock"))
    try:
        lock.acquire()
    except AnotherEngineRunning as exc:
        raise CliError(f"{exc}; the cache is in use and was not deleted") from exc
    try:
        yield
    finally:
        lock.release()


def cmd_cache(args: argparse.Namespace) -> int:
    """``chat-tui cache clear [--yes] [--force]``: delete the chosen account's cache file
    (a saved login's, or the local account's ``local/cache.db``) after a confirmation (sync
    rule R2).

    Returns:
        ``EXIT_OK`` (deleted, or nothing to delete) or ``EXIT_ERROR`` (not confirmed).

    Raises:
        CliError: unsent actions wait (without ``--force``), or another process runs the
        account's engine (the file is in use); nothing is deleted then.
    """
    target = target_of(args)
    path = target.db_path
    if not path.exists():
        print(f"no cache to clear ({path})")
        return EXIT_OK
    with cache_unused(path):
        return _clear_cache(args, target, path)


def _clear_cache(args: argparse.Namespace, target: Target, path: Path) -> int:
    from chat_tui.store import Cache, delete_cache_file

    store = Cache(path, target.username)
    try:
        store.open()
        unsent = unsent_actions_text(store) if store.has_unsent() else ""
    finally:
        store.close()
    if unsent and not args.force:
        raise CliError(f"the cache is kept: {unsent}")
    if not args.yes and not confirm(f"delete the cache of {target.label} ({path})? [y/N] ",
                                    "--yes"):
        print(f"kept {path}")
        return EXIT_ERROR
    delete_cache_file(path)
    print(f"deleted {path}")
    return EXIT_OK

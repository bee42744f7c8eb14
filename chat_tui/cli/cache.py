"""The cache commands (``chat-tui cache clear``, ``cache reset``) and the guard that keeps a cache in use
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
    rule R2); an encrypted one with its key, a locked one (sync rule D8) only with
    ``--force``. ``chat-tui cache reset [--yes]``: set aside a cache that cannot be opened
    (:func:`_reset_cache`). ``cache encrypt|rekey [--key-in PLACE]`` and ``cache
    decrypt``: switch the cache in place, crash-safe (sync rule D9).

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
        if args.cache_command == "reset":
            return _reset_cache(args, target, path)
        if args.cache_command in ("encrypt", "decrypt", "rekey"):
            return _rewrite(args, path)
        return _clear_cache(args, target, path)


def _rewrite(args: argparse.Namespace, path: Path) -> int:
    """``cache encrypt``, ``decrypt`` or ``rekey`` of the cache at ``path`` (sync rule D9).

    Raises:
        CliError: a locked cache, one already in the asked state, a key that cannot be
            kept, or a copy that does not match (the original is kept in every case).
    """
    from chat_tui.config.cachekeys import CacheKeyMissing, keyring_works, load_key_choice
    from chat_tui.store import StoreError
    from chat_tui.store.rewrite import decrypt_cache, encrypt_cache, rekey_cache

    where = getattr(args, "key_in", None)
    try:
        if where is None and args.cache_command != "decrypt":
            choice = load_key_choice()
            where = choice if choice in ("keyring", "file", "passphrase") else "keyring"
            if where == "keyring" and not keyring_works():
                raise CliError("no OS keyring answers: pick `--key-in file` (a 0600 key "
                               "file) or `--key-in passphrase`")
        if args.cache_command == "encrypt":
            encrypt_cache(path, where)
            print(f"encrypted {path} (key in the {where})")
        elif args.cache_command == "rekey":
            rekey_cache(path, where)
            print(f"new key for {path} (in the {where})")
        else:
            decrypt_cache(path)
            print(f"decrypted {path}; its key is forgotten")
    except (StoreError, CacheKeyMissing, ValueError, OSError) as exc:
        raise CliError(str(exc)) from exc
    except Exception as exc:  # keyring.errors.KeyringError: the keyring refused
        if type(exc).__module__.startswith("keyring"):
            raise CliError(f"the OS keyring refused the key ({type(exc).__name__}); "
                           "nothing was changed") from exc
        raise
    return EXIT_OK


def _reset_cache(args: argparse.Namespace, target: Target, path: Path) -> int:
    """Set aside a cache that cannot be opened (sync rule D8) after a confirmation; a cache
    that opens is left alone (``cache clear`` deletes one)."""
    from chat_tui.store import Cache, CacheLocked
    from chat_tui.store.recovery import start_fresh

    store = Cache(path, target.username)
    try:
        store.open()
    except CacheLocked as exc:
        reason = exc.reason
    else:
        store.close()
        print("the cache opens: nothing to reset (`chat-tui cache clear` deletes it)")
        return EXIT_OK
    if not args.yes and not confirm(f"the cache {path} cannot be opened ({reason}); set it "
                                    "aside and start a fresh cache (resynced from the "
                                    "server)? [y/N] ", "--yes"):
        print(f"kept {path}")
        return EXIT_ERROR
    moved = start_fresh(path)
    print(f"the unreadable cache was moved to {moved} (kept, with its key's record); a "
          "fresh cache is made at the next start. Messages that were not sent from it "
          "stay in that file")
    return EXIT_OK


def _clear_cache(args: argparse.Namespace, target: Target, path: Path) -> int:
    from chat_tui.config.cachekeys import delete_cache_key
    from chat_tui.store import Cache, CacheLocked, delete_cache_file

    store = Cache(path, target.username)
    try:
        store.open()
        unsent = unsent_actions_text(store) if store.has_unsent() else ""
    except CacheLocked as exc:
        if not args.force:
            raise CliError(f"{exc}; `cache clear --force` deletes it unread") from exc
        unsent = ""
    finally:
        store.close()
    if unsent and not args.force:
        raise CliError(f"the cache is kept: {unsent}")
    if not args.yes and not confirm(f"delete the cache of {target.label} ({path})? [y/N] ",
                                    "--yes"):
        print(f"kept {path}")
        return EXIT_ERROR
    delete_cache_file(path)
    delete_cache_key(path)
    print(f"deleted {path}")
    return EXIT_OK

"""Where the key of an encrypted account cache lives (sync rule D7).

A cache's key is 32 random bytes (a raw SQLCipher key, sync rule D6) kept in one of:

- ``keyring``: the OS keyring, service ``chat-tui-cache``, user the cache file's path (the
  marker names the backend that keeps it, so the first frame asks that one directly);
- ``file``: a 0600 file ``<config dir>/cache-keys/<hash of the cache path>.key`` (hex).
  It protects copies of the cache (backups, a synced data folder, a disk image without
  the config dir), not against someone logged in as the user;
- ``passphrase``: derived from a passphrase asked at start with ``hashlib.scrypt``
  (n=2**15, r=8, p=1: 32 MiB, about 0.1 s), salt in the marker.

Next to the cache, ``<cache>.key.json`` (the marker, no secret) says the file is encrypted
and where its key is, so a missing key is told apart from a damaged file (sync rule D8)
and ``chat-tui status`` can say where the key is without reading it.

The choice for a new cache is ``[cache] key`` in ``config.toml``: ``"auto"`` (default:
the keyring when one works, else no encryption until the user picks), ``"keyring"``,
``"file"``, ``"passphrase"`` or ``"none"``. Keys are never logged.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

from chat_tui.config.paths import config_dir
from chat_tui.config.settings import _read_table

log = logging.getLogger(__name__)

SERVICE = "chat-tui-cache"
MARKER_SUFFIX = ".key.json"
#: Where a key may live (the marker's ``where``).
PLACES = ("keyring", "file", "passphrase")
#: Values of ``[cache] key`` in config.toml.
CHOICES = ("auto", *PLACES, "none")
KEY_BYTES = 32
SCRYPT = {"n": 2**15, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024, "dklen": KEY_BYTES}


class CacheKeyMissing(Exception):
    """The marker says the cache is encrypted, but its key is not where it says (keyring
    entry or key file gone, or no passphrase given). ``str()`` says where it looked."""


def _default_prompt(question: str) -> str:
    import getpass

    return getpass.getpass(question)


#: Asks for the passphrase (``question`` -> answer); the launcher calls it before the
#: first frame. Replace with :func:`set_passphrase_prompt`.
_prompt: Callable[[str], str] = _default_prompt


def set_passphrase_prompt(prompt: Callable[[str], str]) -> None:
    """Use ``prompt(question) -> str`` to ask for a cache passphrase."""
    global _prompt
    _prompt = prompt


def marker_path(cache: Path) -> Path:
    """``<cache>.key.json``: whether the cache is encrypted and where its key is."""
    return cache.with_name(cache.name + MARKER_SUFFIX)


def read_marker(cache: Path) -> dict | None:
    """The marker of ``cache`` (``{"where": ..., "salt": hex}``), None when there is none.

    Raises:
        ValueError: the marker is not valid (its text in the message).
    """
    try:
        text = marker_path(cache).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{marker_path(cache)}: not valid JSON") from exc
    if not isinstance(data, dict) or data.get("where") not in PLACES:
        raise ValueError(f"{marker_path(cache)}: 'where' must be one of {PLACES}")
    return data


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync, ``os.replace``."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _key_id(cache: Path) -> str:
    return str(Path(cache).absolute())


def key_file(cache: Path) -> Path:
    """The 0600 key file of ``cache`` in ``<config dir>/cache-keys/`` (0700)."""
    folder = config_dir() / "cache-keys"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    import hashlib  # here, not at import: a plain cache's start never loads libcrypto

    name = hashlib.sha256(_key_id(cache).encode()).hexdigest()[:32]
    return folder / f"{name}.key"


def _keyring():
    import keyring  # imported lazily: slow backends are discovered on import
    import keyring.errors

    return keyring, keyring.errors


#: Modules a keyring backend named in a marker may come from (:func:`_keyring_lookup`).
BACKEND_MODULES = ("keyring.backends.", "keyrings.")


def _backend_name(backend: object) -> str | None:
    """``module.Class`` of a keyring backend, for the marker; None for keyring's chainer
    (it stands for every backend) and for a module outside :data:`BACKEND_MODULES`."""
    cls = type(backend)
    name = f"{cls.__module__}.{cls.__qualname__}"
    if cls.__module__ == "keyring.backends.chainer" or not name.startswith(BACKEND_MODULES):
        return None
    return name


def _keyring_lookup(entry: dict, name: str) -> str | None:
    """The keyring entry ``name`` of service :data:`SERVICE` (None when there is none).

    When the marker ``entry`` names the backend that stored the key and the user names
    none in keyring's configuration (:func:`keyring_chosen`), that backend is loaded by
    name (``keyring.core.load_keyring``) and asked first: keyring's detection, which
    imports every installed backend and asks some of them over D-Bus whether they work,
    is skipped before the first frame. A named backend that is gone, not viable, or does
    not have the entry falls back to keyring's own choice.

    Raises:
        keyring.errors.KeyringError: keyring's own choice refuses (none works).
    """
    keyring, _ = _keyring()
    named = entry.get("backend")
    if isinstance(named, str) and named.startswith(BACKEND_MODULES) and not keyring_chosen():
        import keyring.core

        try:
            text = keyring.core.load_keyring(named).get_password(SERVICE, name)
        except Exception as exc:  # noqa: BLE001 - any failure: keyring's own choice decides
            log.info("the keyring backend %s did not answer (%s): asking keyring's choice",
                     named, type(exc).__name__)
        else:
            if text:
                return text
    return keyring.get_password(SERVICE, name)


def keyring_chosen() -> bool:
    """Whether the user named a keyring backend in keyring's own configuration (the
    ``PYTHON_KEYRING_BACKEND`` variable, or ``keyringrc.cfg`` in keyring's config root)
    rather than leaving keyring to detect one."""
    if os.environ.get("PYTHON_KEYRING_BACKEND"):
        return True
    from keyring.util import platform_

    return (platform_.config_root() / "keyringrc.cfg").exists()


def keyring_works() -> bool:
    """Whether an OS keyring answers and can keep a key safe: a lookup raises no
    ``KeyringError``, and the backend is either the one the user named
    (:func:`keyring_chosen`) or a detected one keyring recommends (priority >= 1). A
    detected low-priority backend, such as keyrings.alt's plaintext file keyring found
    only because the package is installed, does not count: it keeps a key no safer than
    the key file, so ``auto`` leaves a new cache plain (sync rule D7)."""
    keyring, errors = _keyring()
    try:
        keyring.get_password(SERVICE, "probe")
    except (errors.NoKeyringError, errors.KeyringError):
        return False
    import keyring.core

    return keyring_chosen() or keyring.core.recommended(keyring.get_keyring())


def derive_key(passphrase: str, salt: bytes) -> bytes:
    """The 32-byte key of ``passphrase`` with ``salt`` (``hashlib.scrypt``, :data:`SCRYPT`).

    Raises:
        ValueError: an empty passphrase.
    """
    if not passphrase:
        raise ValueError("the passphrase is empty")
    import hashlib

    return hashlib.scrypt(passphrase.encode("utf-8"), salt=salt, **SCRYPT)


#: Keys read or derived in this process, by cache path (``#next`` for a pending one): the
#: first-frame reader and the cache ask the keyring, or the user, once.
_derived: dict[str, bytes] = {}


def remembered(cache: Path) -> bool:
    """Whether a key of ``cache`` is remembered in this process (:data:`_derived`)."""
    key = _key_id(cache)
    return key in _derived or key + "#next" in _derived


def forget_remembered(cache: Path) -> None:
    """Drop the keys of ``cache`` remembered in this process: the next lookup reads the
    keyring or key file (or asks) again, e.g. after another process changed the key."""
    key = _key_id(cache)
    _derived.pop(key, None)
    _derived.pop(key + "#next", None)


def _plain_file(cache: Path) -> bool:
    """Whether ``cache`` exists and starts with the plain SQLite header: such a file is
    plain whatever its marker says (a marker written before an interrupted ``cache
    encrypt``, or left after an interrupted ``cache decrypt``)."""
    try:
        with open(cache, "rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except FileNotFoundError:
        return False


def _slot(where: str, next_: bool) -> str:
    return f"{where}#next" if next_ else where


def store_cache_key(cache: Path, key: bytes, where: str, *, salt: bytes | None = None,
                    pending: bool = False) -> None:
    """Keep ``key`` (32 bytes) of ``cache`` in ``where`` (:data:`PLACES`) and write the
    marker (after the key, so a marker never points at nothing). For ``"passphrase"``
    nothing secret is stored: ``salt`` (the one ``key`` was derived with) goes in the
    marker. ``pending`` keeps it as the *next* key beside the current one (``cache
    rekey`` before its swap, sync rule D9): opening tries both, and
    :func:`promote_pending_key` makes it the only one.

    Raises:
        ValueError: a bad ``where``, key or missing salt.
        keyring.errors.KeyringError: ``"keyring"`` and the keyring refuses.
        OSError: the key file or the marker cannot be written.
    """
    if len(key) != KEY_BYTES:
        raise ValueError(f"a cache key is {KEY_BYTES} bytes")
    try:
        current = read_marker(cache) if pending else None
    except ValueError:
        current = None
    entry: dict[str, str] = {"where": where}
    if where == "keyring":
        keyring, _ = _keyring()
        keyring.set_password(SERVICE, _key_id(cache) + ("#next" if pending else ""), key.hex())
        backend = _backend_name(keyring.get_keyring())
        if backend is not None:
            entry["backend"] = backend
    elif where == "file":
        _write_atomic(_key_file_slot(cache, pending), key.hex().encode("ascii"), 0o600)
    elif where == "passphrase":
        if salt is None:
            raise ValueError("a passphrase key needs its salt")
        entry["salt"] = salt.hex()
    else:
        raise ValueError(f"where must be one of {PLACES}")
    _derived[_key_id(cache) + ("#next" if pending else "")] = key
    if pending and current is not None:
        marker: dict = {**current, "next": entry}
    else:
        marker = entry
    _write_atomic(marker_path(cache), json.dumps(marker).encode("utf-8"), 0o644)


def _key_file_slot(cache: Path, pending: bool) -> Path:
    path = key_file(cache)
    return path.with_name(path.name + ".next") if pending else path


def promote_pending_key(cache: Path) -> None:
    """Make the pending key of ``cache`` (:func:`store_cache_key` with ``pending``) its only
    key, removing the old one (sync rule D9). Nothing happens when none is pending."""
    marker = read_marker(cache)
    if marker is None or "next" not in marker:
        return
    old, new = marker, marker["next"]
    key = _read_slot(cache, new, pending=True)
    _forget_slot(cache, old["where"], pending=False)
    store_cache_key(cache, key, new["where"], salt=bytes.fromhex(new.get("salt", "")) or None)
    _forget_slot(cache, new["where"], pending=True)
    _derived.pop(_key_id(cache) + "#next", None)


def _forget_slot(cache: Path, where: str, *, pending: bool) -> None:
    suffix = "#next" if pending else ""
    _derived.pop(_key_id(cache) + suffix, None)
    if where == "keyring":
        keyring, errors = _keyring()
        try:
            keyring.delete_password(SERVICE, _key_id(cache) + suffix)
        except (errors.NoKeyringError, errors.KeyringError):
            pass
    elif where == "file":
        _key_file_slot(cache, pending).unlink(missing_ok=True)


def load_cache_keys(cache: Path) -> list[bytes]:
    """The keys to try on ``cache``, current first (32 bytes each; a second one while a
    ``cache rekey`` is pending, sync rule D9); empty when it is plain: no marker, or a file
    with the plain SQLite header.

    Raises:
        CacheKeyMissing: no key is where the marker says, or the passphrase prompt was
            cancelled or empty.
        ValueError: a broken marker.
    """
    marker = read_marker(cache)
    if marker is None or _plain_file(cache):
        return []
    keys: list[bytes] = []
    problem: CacheKeyMissing | None = None
    slots = [(marker, False)] + ([(marker["next"], True)] if "next" in marker else [])
    for entry, pending in slots:
        try:
            keys.append(_read_slot(cache, entry, pending=pending))
        except CacheKeyMissing as exc:
            problem = problem or exc
    if not keys:
        assert problem is not None
        raise problem
    return keys


def load_cache_key(cache: Path) -> bytes | None:
    """The current key of ``cache`` (32 bytes), None when it is plain
    (:func:`load_cache_keys`).

    Raises:
        CacheKeyMissing, ValueError: as :func:`load_cache_keys`.
    """
    keys = load_cache_keys(cache)
    return keys[0] if keys else None


def _read_slot(cache: Path, entry: dict, *, pending: bool) -> bytes:
    """The key the marker ``entry`` points at (the pending slot when ``pending``)."""
    where = entry["where"]
    suffix = "#next" if pending else ""
    memo = _derived.get(_key_id(cache) + suffix)
    if memo is not None:
        return memo
    if where == "passphrase":
        try:
            answer = _prompt(f"passphrase of the chat-tui cache {cache}: ")
            key = derive_key(answer, bytes.fromhex(entry.get("salt", "")))
        except (EOFError, KeyboardInterrupt, ValueError) as exc:
            raise CacheKeyMissing(f"no passphrase given ({exc or type(exc).__name__})") from exc
        _derived[_key_id(cache) + suffix] = key
        return key
    text: str | None
    if where == "keyring":
        _, errors = _keyring()
        try:
            text = _keyring_lookup(entry, _key_id(cache) + suffix)
        except (errors.NoKeyringError, errors.KeyringError) as exc:
            raise CacheKeyMissing(f"the OS keyring is not available ({type(exc).__name__})"
                                  ) from exc
        if not text:
            raise CacheKeyMissing("the OS keyring has no key for it")
    else:
        path = _key_file_slot(cache, pending)
        try:
            text = path.read_text(encoding="ascii").strip()
        except (FileNotFoundError, UnicodeDecodeError) as exc:
            raise CacheKeyMissing(f"its key file {path} is missing") from exc
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise CacheKeyMissing(f"the stored key in the {where} is not a {KEY_BYTES}-byte key")
    _derived[_key_id(cache) + suffix] = key
    return key


def delete_cache_key(cache: Path) -> None:
    """Forget the key of ``cache``: its keyring entry, its key file and its marker
    (missing ones are fine; a refusing keyring is ignored). Raises OSError when a file
    cannot be removed."""
    for pending in (False, True):
        for where in PLACES:
            _forget_slot(cache, where, pending=pending)
    marker_path(cache).unlink(missing_ok=True)


def set_aside_key(cache: Path, moved_to: Path) -> None:
    """Let the key of ``cache`` follow the file moved to ``moved_to`` (a cache set aside,
    sync rule D8): the marker and key file are renamed, a keyring entry is copied to the
    new name and removed from the old one. Nothing is deleted, so the old file still opens
    once its key is back. Raises OSError when a rename fails."""
    marker = marker_path(cache)
    if marker.exists():
        marker.rename(marker_path(moved_to))
    keyfile = key_file(cache)
    if keyfile.exists():
        keyfile.rename(key_file(moved_to))
    keyring, errors = _keyring()
    try:
        text = keyring.get_password(SERVICE, _key_id(cache))
        if text:
            keyring.set_password(SERVICE, _key_id(moved_to), text)
            keyring.delete_password(SERVICE, _key_id(cache))
    except (errors.NoKeyringError, errors.KeyringError):
        pass


def key_location(cache: Path) -> dict[str, str | bool | None]:
    """What ``chat-tui status`` says about ``cache``: ``{"encrypted": bool, "key": None |
    "keyring" | "file" | "passphrase", "key_file": path or None}``. Never the key."""
    try:
        marker = read_marker(cache)
    except ValueError:
        marker = None
    if marker is None or _plain_file(cache):
        return {"encrypted": False, "key": None, "key_file": None}
    where = marker["where"]
    return {"encrypted": True, "key": where,
            "key_file": str(key_file(cache)) if where == "file" else None}


def load_key_choice(path: Path | None = None) -> str:
    """``[cache] key`` of ``config.toml`` (:data:`CHOICES`), ``"auto"`` when unset.

    Raises:
        ValueError: invalid TOML, an unknown key or value in ``[cache]``.
    """
    table = _read_table(path, "cache")
    unknown = set(table) - {"key"}
    if unknown:
        raise ValueError(f"[cache]: unknown key {sorted(unknown)[0]!r} (want key)")
    choice = table.get("key", "auto")
    if choice not in CHOICES:
        raise ValueError(f"[cache] key: want one of {', '.join(CHOICES)}, got {choice!r}")
    return str(choice)


def new_cache_key(cache: Path, where: str) -> bytes:
    """Make and keep a fresh key for ``cache`` in ``where`` (:data:`PLACES`); for
    ``"passphrase"`` ask for a new passphrase twice. Returns the 32-byte key.

    Raises:
        CacheKeyMissing: the passphrases are empty or differ.
        keyring.errors.KeyringError, OSError: as :func:`store_cache_key`.
    """
    import secrets

    if where == "passphrase":
        salt = secrets.token_bytes(16)
        first = _prompt(f"new passphrase for the chat-tui cache {cache}: ")
        if not first or _prompt("the same passphrase again: ") != first:
            raise CacheKeyMissing("the passphrases are empty or differ")
        key = derive_key(first, salt)
        store_cache_key(cache, key, where, salt=salt)
        return key
    key = secrets.token_bytes(KEY_BYTES)
    store_cache_key(cache, key, where)
    return key


def resolve_cache_keys(cache: Path) -> list[bytes]:
    """The keys to try on ``cache`` (sync rule D7): those of an encrypted cache
    (:func:`load_cache_keys`); none for an existing plain cache; for a new cache (no file
    yet), a fresh key kept where ``[cache] key`` says (``auto``: the keyring when one
    works), or none when encryption is off.

    Raises:
        CacheKeyMissing: an encrypted cache whose key is not found.
        ValueError: a broken marker or config file.
    """
    keys = load_cache_keys(cache)
    if keys:
        return keys
    key = _new_or_none(cache)
    return [] if key is None else [key]


def _new_or_none(cache: Path) -> bytes | None:
    try:
        if cache.stat().st_size > 0:
            return None
    except FileNotFoundError:
        pass
    choice = load_key_choice()
    if choice == "none":
        return None
    if choice == "auto":
        if not keyring_works():
            return None
        choice = "keyring"
    try:
        return new_cache_key(cache, choice)
    except OSError:
        raise
    except Exception as exc:  # a refusing keyring: the cache stays plain, the user is told
        if choice != "keyring":
            raise
        log.warning("the OS keyring refused the cache key (%s): the new cache is not "
                    "encrypted", type(exc).__name__)
        return None


__all__ = ["CHOICES", "PLACES", "CacheKeyMissing", "delete_cache_key", "derive_key", "forget_remembered",
           "key_file", "key_location", "keyring_chosen", "keyring_works", "load_cache_key", "load_key_choice",
           "load_cache_keys", "marker_path", "new_cache_key", "promote_pending_key", "read_marker",
           "remembered", "resolve_cache_keys",
           "set_aside_key", "set_passphrase_prompt", "store_cache_key"]

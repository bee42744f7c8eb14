"""Login tokens: the OS keyring when one works, else a 0600 file in the user config dir.

Headless Linux usually has no keyring (``keyring.errors.NoKeyringError``); any
``KeyringError`` falls back to ``<config dir>/chat-tui/tokens/<server slug>_<username>``,
created with mode 0600. Tokens are never logged.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from chat_tui.config.accounts import Account, server_slug
from chat_tui.config.paths import config_dir

SERVICE = "chat-tui"
log = logging.getLogger(__name__)


def _token_file(account: Account) -> Path:
    folder = config_dir() / "tokens"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder / f"{server_slug(account.server_url)}_{account.username}"


def _keyring():
    import keyring  # imported lazily: slow backends are discovered on import
    import keyring.errors

    return keyring, keyring.errors


def store_token(account: Account, token: str) -> str:
    """Save ``token`` for ``account``; returns where it went: ``"keyring"`` or ``"file"``."""
    keyring, errors = _keyring()
    try:
        keyring.set_password(SERVICE, account.key, token)
        _token_file(account).unlink(missing_ok=True)
        return "keyring"
    except (errors.NoKeyringError, errors.KeyringError) as exc:
        log.info("keyring unavailable (%s); using a 0600 token file", type(exc).__name__)
    path = _token_file(account)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, token.encode("utf-8"))
    finally:
        os.close(fd)
    return "file"


def load_token(account: Account) -> str | None:
    """The saved token of ``account``, or None when there is none."""
    keyring, errors = _keyring()
    try:
        token = keyring.get_password(SERVICE, account.key)
        if token:
            return token
    except (errors.NoKeyringError, errors.KeyringError):
        pass
    try:
        return _token_file(account).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def delete_token(account: Account) -> None:
    """Remove the token of ``account`` from the keyring and the file (missing is fine)."""
    keyring, errors = _keyring()
    try:
        keyring.delete_password(SERVICE, account.key)
    except (errors.NoKeyringError, errors.KeyringError):
        pass
    _token_file(account).unlink(missing_ok=True)


def token_backend(account: Account) -> str:
    """``"keyring"``, ``"file"`` or ``"none"``: where the token of ``account`` is now."""
    keyring, errors = _keyring()
    try:
        if keyring.get_password(SERVICE, account.key):
            return "keyring"
    except (errors.NoKeyringError, errors.KeyringError):
        pass
    return "file" if _token_file(account).exists() else "none"

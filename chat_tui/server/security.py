"""Password hashing (argon2id through ``argon2-cffi``) and bearer tokens (stored hashed).

New passwords are stored in argon2's PHC string form (``$argon2id$v=19$m=...,t=...,p=...$
<salt>$<hash>``) with the parameters of :data:`ARGON2_TIME_COST`,
:data:`ARGON2_MEMORY_KIB`, :data:`ARGON2_PARALLELISM` (OWASP's argon2id minimum: 19 MiB,
2 passes, 1 lane). Hashes of earlier versions, ``scrypt$<n>$<r>$<p>$<salt hex>$<key hex>``,
still verify; :func:`needs_rehash` tells the login to replace them (and argon2 hashes with
older parameters) after the next successful login (docs/api.md, ``POST /v1/login``).
Tokens are 256-bit random strings; only their SHA-256 is stored (a token has full
entropy, so a fast hash is enough for lookup). Neither passwords nor tokens are ever
logged.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

#: argon2id passes over memory.
ARGON2_TIME_COST = 2
#: argon2id memory per hash in KiB (19 MiB).
ARGON2_MEMORY_KIB = 19 * 1024
#: argon2id lanes.
ARGON2_PARALLELISM = 1

_hasher = PasswordHasher(
    time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB, parallelism=ARGON2_PARALLELISM
)


def hash_password(password: str) -> str:
    """Hash ``password`` (text; encoded as UTF-8) with argon2id and a fresh random salt;
    returns the PHC string (at most ~100 characters).

    Raises UnicodeEncodeError for a string that is not text (an unpaired surrogate).
    """
    return _hasher.hash(password)


@functools.cache
def _absent_hash() -> str:
    """A hash of a random password, verified against when a user has none (equal timing)."""
    return hash_password(secrets.token_urlsafe(16))


def verify_password(password: str, encoded: str | None) -> bool:
    """True when ``password`` matches ``encoded`` (argon2 PHC string or legacy scrypt).

    ``encoded`` None (no such user, or a user without a password, e.g. created by import)
    never matches, but a hash is still computed so the answer takes the same time either
    way. An unreadable ``encoded`` never matches.
    """
    if not encoded:
        try:
            _hasher.verify(_absent_hash(), password)
        except (VerificationError, InvalidHashError):
            pass
        return False
    if encoded.startswith("scrypt$"):
        return _verify_scrypt(password, encoded)
    try:
        return _hasher.verify(encoded, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(encoded: str) -> bool:
    """True when ``encoded`` is not an argon2id hash with today's parameters (a legacy
    scrypt hash, or argon2 with other costs): the login then stores a new hash."""
    if not encoded.startswith("$argon2id$"):
        return True
    try:
        return _hasher.check_needs_rehash(encoded)
    except InvalidHashError:
        return True


def _verify_scrypt(password: str, encoded: str) -> bool:
    try:
        _scheme, n, r, p, salt_hex, key_hex = encoded.split("$")
        key = hashlib.scrypt(
            password.encode("utf-8"),
            salt=bytes.fromhex(salt_hex),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(key_hex) // 2,
        )
    except ValueError:
        return False
    return hmac.compare_digest(key.hex(), key_hex)


def new_token() -> str:
    """A new random bearer token (URL-safe text, 43 characters)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The stored form of a token: its SHA-256, hex (64 characters)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()

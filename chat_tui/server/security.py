"""Password hashing (``hashlib.scrypt``, per-user salt) and bearer tokens (stored hashed).

Passwords are stored as ``scrypt$<n>$<r>$<p>$<salt hex>$<key hex>`` so parameters can be
raised later without breaking old hashes. Tokens are 256-bit random strings; only their
SHA-256 is stored (a token has full entropy, so a fast hash is enough for lookup).
Neither passwords nor tokens are ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32


def hash_password(password: str) -> str:
    """Hash ``password`` with scrypt and a fresh random salt; returns the encoded string."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=KEY_BYTES
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${key.hex()}"


def verify_password(password: str, encoded: str | None) -> bool:
    """True when ``password`` matches ``encoded`` (from :func:`hash_password`).

    ``encoded`` None (a user without a password, e.g. created by import) never matches, but
    a hash is still computed so the answer takes the same time either way.
    """
    if not encoded:
        hash_password(password)
        return False
    try:
        scheme, n, r, p, salt_hex, key_hex = encoded.split("$")
        if scheme != "scrypt":
            return False
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

"""Password hashing with argon2id, so a leaked users table does not reveal any password.

Hashing is deliberately slow (tens of milliseconds): async callers run these functions in a
worker thread (``asyncio.to_thread``) instead of blocking the event loop.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# Stateless and immutable: the argon2-cffi defaults (RFC 9106 low-memory profile).
_HASHER = PasswordHasher()


def hash_password(password: str) -> str:
    """An encoded argon2id hash (salt and parameters included) of ``password``."""
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; False for a mismatch or a broken hash."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's; rehash after a login."""
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@cache
def dummy_hash() -> str:
    """A valid hash to verify against when a username is unknown, so timing reveals nothing."""
    return hash_password("not a real password")

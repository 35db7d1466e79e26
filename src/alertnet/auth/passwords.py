"""Passwords: hashing with argon2id, so a leaked users table reveals none, and the policy a new
password must meet (DESIGN §14 "Sessions and accounts").

Hashing is deliberately slow (tens of milliseconds, 64 MiB): async callers run these functions
in a worker thread (``asyncio.to_thread``) instead of blocking the event loop, and logins pass
the throttle (``alertnet.auth.throttle``) before any hash is computed.

The policy: at least ``MIN_LENGTH`` characters (``MIN_PRIVILEGED_LENGTH`` for the roles that
can see or change everything), not one of the passwords in ``common-passwords.txt`` (also with
leading and trailing digits and symbols stripped), not the username, and not a handful of
characters repeated.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# Stateless and immutable: the argon2-cffi defaults (RFC 9106 low-memory profile).
_HASHER = PasswordHasher()

MIN_LENGTH = 8
MIN_PRIVILEGED_LENGTH = 12
# The login endpoint accepts no longer password, so a longer one could never be used.
MAX_LENGTH = 1024
MIN_DISTINCT_CHARACTERS = 5
COMMON_PASSWORDS_FILE = "common-passwords.txt"

_EDGE_NOISE = re.compile(r"^[\d\W_]+|[\d\W_]+$")


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


@cache
def common_passwords() -> frozenset[str]:
    """The refused passwords, lower case (read once from the packaged list)."""
    text = resources.files("alertnet.auth").joinpath(COMMON_PASSWORDS_FILE).read_text("utf-8")
    return frozenset(
        line.strip().casefold()
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    )


def password_problem(password: str, *, min_length: int, username: str = "") -> str | None:
    """Why ``password`` may not be set, or None when it meets the policy."""
    if len(password) < min_length:
        return f"the password must be at least {min_length} characters"
    if len(password) > MAX_LENGTH:
        return f"the password must be at most {MAX_LENGTH} characters"
    if "\x00" in password:
        return "the password must not contain NUL characters"
    folded = password.strip().casefold()
    refused = common_passwords()
    if folded in refused or _EDGE_NOISE.sub("", folded) in refused:
        return "the password is too common (it is on the list of passwords guessers try first)"
    name = username.strip().casefold()
    if len(name) >= 3 and name in folded:
        return "the password must not contain the username"
    if len(set(folded)) < MIN_DISTINCT_CHARACTERS:
        return f"the password needs at least {MIN_DISTINCT_CHARACTERS} different characters"
    return None

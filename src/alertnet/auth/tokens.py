"""API bearer tokens: random, shown once, stored only as SHA-256 hashes (DESIGN §3 User).

A token is 32 random bytes, so a fast hash is enough: there is nothing to brute-force, and the
lookup on every request stays one indexed equality match.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.errors import InvalidInput, NotFound
from alertnet.models import ApiToken, User, utcnow

# Writing last_used_at on every request would turn every API read into a write; once a
# minute is precise enough to tell which tokens are still in use.
LAST_USED_RESOLUTION = timedelta(seconds=60)
MAX_LABEL_LENGTH = 80


def new_token() -> str:
    """A fresh bearer token: 32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def token_sha256(token: str) -> str:
    """The hex SHA-256 of a token, which is all the database ever stores."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def create_token(
    session: AsyncSession, user_id: int, label: str = "", ttl_s: float | None = None
) -> str:
    """Store a new token for the user and return it in plain text; it cannot be shown again."""
    if len(label) > MAX_LABEL_LENGTH:
        raise InvalidInput(f"token label is longer than {MAX_LABEL_LENGTH} characters")
    if ttl_s is not None and ttl_s <= 0:
        raise InvalidInput("token lifetime must be positive")
    if await session.get(User, user_id) is None:
        raise NotFound(f"no user with id {user_id}")
    token = new_token()
    now = utcnow()
    session.add(
        ApiToken(
            user_id=user_id,
            token_sha256=token_sha256(token),
            label=label,
            created_at=now,
            expires_at=None if ttl_s is None else now + timedelta(seconds=ttl_s),
        )
    )
    await session.flush()
    return token


async def user_for_token(session: AsyncSession, token: str) -> User | None:
    """The active user a valid, unexpired token belongs to, else None; notes the token's use."""
    if not token:
        return None
    row = (
        await session.execute(
            select(ApiToken, User)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_sha256 == token_sha256(token))
        )
    ).one_or_none()
    if row is None:
        return None
    api_token, user = row
    now = utcnow()
    if api_token.expires_at is not None and api_token.expires_at <= now:
        return None
    if not user.active:
        return None
    if api_token.last_used_at is None or now - api_token.last_used_at >= LAST_USED_RESOLUTION:
        api_token.last_used_at = now
        await session.flush()
    return user

"""API bearer tokens: random, shown once, stored only as SHA-256 hashes (DESIGN §3 User, §14).

A token is 32 random bytes, so a fast hash is enough: there is nothing to brute-force, and the
lookup on every request stays one indexed equality match.

Every token expires (``DEFAULT_TOKEN_TTL`` unless its maker says otherwise, never later than
``MAX_TOKEN_TTL``) and can be revoked; disabling a user or changing its password revokes all
of its tokens, so re-enabling the user brings none of them back. Rows are kept after they end,
as the record of who had access when (``alertnet token list``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.errors import InvalidInput, NotFound
from alertnet.models import ApiToken, User, utcnow

# Writing last_used_at on every request would turn every API read into a write; once a
# minute is precise enough to tell which tokens are still in use.
LAST_USED_RESOLUTION = timedelta(seconds=60)
MAX_LABEL_LENGTH = 80
DEFAULT_TOKEN_TTL = timedelta(days=90)
# A script's token is renewed at least once a year.
MAX_TOKEN_TTL = timedelta(days=366)


class TokenState(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What an admin may know about a token: everything but the secret."""

    id: int
    username: str
    label: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    state: TokenState


def new_token() -> str:
    """A fresh bearer token: 32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def token_sha256(token: str) -> str:
    """The hex SHA-256 of a token, which is all the database ever stores."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_state(token: ApiToken, now: datetime) -> TokenState:
    if token.revoked_at is not None:
        return TokenState.REVOKED
    if token.expires_at <= now:
        return TokenState.EXPIRED
    return TokenState.ACTIVE


async def create_token(
    session: AsyncSession,
    user_id: int,
    label: str = "",
    ttl_s: float = DEFAULT_TOKEN_TTL.total_seconds(),
) -> str:
    """Store a new token for an active user and return it in plain text; it cannot be shown
    again. It expires ``ttl_s`` seconds from now."""
    if len(label) > MAX_LABEL_LENGTH:
        raise InvalidInput(f"token label is longer than {MAX_LABEL_LENGTH} characters")
    if not ttl_s > 0:
        raise InvalidInput("token lifetime must be positive")
    if ttl_s > MAX_TOKEN_TTL.total_seconds():
        raise InvalidInput(f"token lifetime must be at most {MAX_TOKEN_TTL.days} days")
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    if not user.active:
        raise InvalidInput(f"user {user.username!r} is disabled")
    token = new_token()
    now = utcnow()
    session.add(
        ApiToken(
            user_id=user_id,
            token_sha256=token_sha256(token),
            label=label,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_s),
        )
    )
    await session.flush()
    return token


async def user_for_token(session: AsyncSession, token: str) -> User | None:
    """The active user a live (unexpired, unrevoked) token belongs to, else None; notes the
    token's use."""
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
    if token_state(api_token, now) is not TokenState.ACTIVE or not user.active:
        return None
    if api_token.last_used_at is None or now - api_token.last_used_at >= LAST_USED_RESOLUTION:
        api_token.last_used_at = now
        await session.flush()
    return user


def _live(now: datetime) -> ColumnElement[bool]:
    return and_(ApiToken.revoked_at.is_(None), ApiToken.expires_at > now)


async def revoke_token_by_secret(session: AsyncSession, token: str) -> None:
    """End the token a client holds (a logout); nothing happens for an unknown or dead one."""
    now = utcnow()
    await session.execute(
        update(ApiToken)
        .where(ApiToken.token_sha256 == token_sha256(token), _live(now))
        .values(revoked_at=now)
    )


async def revoke_token(session: AsyncSession, token_id: int) -> tuple[TokenInfo, bool]:
    """Revoke token ``token_id``; returns it and whether this call ended it (False when it
    was already revoked or expired)."""
    row = (
        await session.execute(
            select(ApiToken, User.username)
            .join(User, User.id == ApiToken.user_id)
            .where(ApiToken.id == token_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"no token with id {token_id}")
    api_token, username = row
    now = utcnow()
    ended = token_state(api_token, now) is TokenState.ACTIVE
    if ended:
        api_token.revoked_at = now
        await session.flush()
    return _info(api_token, username, now), ended


async def revoke_user_tokens(session: AsyncSession, user_id: int) -> int:
    """Revoke every live token of a user; returns how many there were."""
    now = utcnow()
    live = list(
        (
            await session.scalars(select(ApiToken).where(ApiToken.user_id == user_id, _live(now)))
        ).all()
    )
    for api_token in live:
        api_token.revoked_at = now
    await session.flush()
    return len(live)


async def list_tokens(session: AsyncSession, username: str | None = None) -> list[TokenInfo]:
    """Every token (of one user when ``username`` is given), oldest first."""
    query = (
        select(ApiToken, User.username)
        .join(User, User.id == ApiToken.user_id)
        .order_by(ApiToken.id)
    )
    if username is not None:
        query = query.where(User.username == username.strip())
    now = utcnow()
    return [_info(api_token, name, now) for api_token, name in (await session.execute(query))]


def _info(api_token: ApiToken, username: str, now: datetime) -> TokenInfo:
    return TokenInfo(
        id=api_token.id,
        username=username,
        label=api_token.label,
        created_at=api_token.created_at,
        expires_at=api_token.expires_at,
        revoked_at=api_token.revoked_at,
        last_used_at=api_token.last_used_at,
        state=token_state(api_token, now),
    )

"""User accounts: creation with the role bindings of DESIGN §3, and password login.

A ``post`` user acts for exactly one post (the crew's tablet), an ``observer`` sees exactly one
mahalla (the mahalla team); admins and dispatchers see everything and are bound to nothing.
"""

from __future__ import annotations

import asyncio
import re
import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.auth.passwords import dummy_hash, hash_password, needs_rehash, verify_password
from alertnet.errors import Conflict, InvalidInput, NotFound
from alertnet.mahallas import get_mahalla_by_name
from alertnet.models import Role, User
from alertnet.posts.service import get_post_by_callsign

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,79}")
MIN_PASSWORD_LENGTH = 8


def parse_role(role: str) -> Role:
    try:
        return Role(role.strip().lower())
    except ValueError:
        choices = ", ".join(member.value for member in Role)
        raise InvalidInput(f"unknown role {role!r} (one of {choices})") from None


def generate_password() -> str:
    """A random password of 16 URL-safe characters (96 bits), for accounts made by an admin."""
    return secrets.token_urlsafe(12)


async def find_user_by_username(session: AsyncSession, username: str) -> User | None:
    return (
        await session.execute(select(User).where(User.username == username.strip()))
    ).scalar_one_or_none()


async def get_user_by_username(session: AsyncSession, username: str) -> User:
    """The user with this username; NotFound otherwise."""
    user = await find_user_by_username(session, username)
    if user is None:
        raise NotFound(f"no user named {username.strip()!r}")
    return user


async def create_user(
    session: AsyncSession,
    username: str,
    role: str,
    *,
    password: str | None = None,
    post_callsign: str | None = None,
    mahalla_name: str | None = None,
) -> tuple[User, str | None]:
    """Create a user; returns it and the generated password, or None when one was given."""
    username = username.strip()
    if not USERNAME_PATTERN.fullmatch(username):
        raise InvalidInput(
            f"username {username!r} must be 1-80 letters, digits or . _ @ -, "
            "starting with a letter or digit"
        )
    user_role = parse_role(role)
    if user_role is Role.POST and post_callsign is None:
        raise InvalidInput("a user with role post must be bound to a post (--post CALLSIGN)")
    if user_role is not Role.POST and post_callsign is not None:
        raise InvalidInput(f"only a user with role post can be bound to a post, not {user_role}")
    if user_role is Role.OBSERVER and mahalla_name is None:
        raise InvalidInput("a user with role observer must be bound to a mahalla (--mahalla NAME)")
    if user_role is not Role.OBSERVER and mahalla_name is not None:
        raise InvalidInput(
            f"only a user with role observer can be bound to a mahalla, not {user_role}"
        )
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD_LENGTH} characters")

    post_id = None
    if post_callsign is not None:
        post_id = (await get_post_by_callsign(session, post_callsign)).id
    mahalla_id = None
    if mahalla_name is not None:
        mahalla_id = (await get_mahalla_by_name(session, mahalla_name)).id
    if await find_user_by_username(session, username) is not None:
        raise Conflict(f"user {username!r} already exists")

    generated = None
    if password is None:
        password = generated = generate_password()
    user = User(
        username=username,
        password_hash=await asyncio.to_thread(hash_password, password),
        role=user_role.value,
        post_id=post_id,
        mahalla_id=mahalla_id,
        active=True,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent insert of the same username
        raise Conflict(f"user {username!r} already exists") from exc
    return user, generated


async def authenticate(session: AsyncSession, username: str, password: str) -> User | None:
    """The active user with these credentials, else None (unknown and wrong look the same).

    A hash made with outdated parameters is replaced by a fresh one in the caller's transaction.
    """
    user = await find_user_by_username(session, username)
    if user is None:
        # Spend the same time as a real check so response timing does not reveal usernames.
        await asyncio.to_thread(verify_password, dummy_hash(), password)
        return None
    if not await asyncio.to_thread(verify_password, user.password_hash, password):
        return None
    if not user.active:
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = await asyncio.to_thread(hash_password, password)
        await session.flush()
    return user

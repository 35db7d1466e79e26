"""User accounts: creation with the role bindings of DESIGN §3, password login, and the admin's
changes to an account (password, role, enabled or not) with the rules of DESIGN §14.

A ``post`` user acts for exactly one post (the crew's tablet), an ``observer`` sees exactly one
mahalla (the mahalla team); admins and dispatchers see everything and are bound to nothing, so
their passwords must be longer (``auth.passwords``). Disabling a user, or changing its
password, revokes all its tokens. The last active admin can be neither disabled nor given
another role, so there is always someone who can manage the accounts. Demo accounts
(``alertnet.demo``) are enabled only by ``alertnet serve --demo``.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.auth.passwords import (
    MIN_LENGTH,
    MIN_PRIVILEGED_LENGTH,
    dummy_hash,
    hash_password,
    needs_rehash,
    password_problem,
    verify_password,
)
from alertnet.auth.tokens import revoke_user_tokens
from alertnet.db import write_lock
from alertnet.errors import Conflict, InvalidInput, NotFound
from alertnet.i18n import LANGUAGES, offered_language
from alertnet.mahallas import get_mahalla_by_name
from alertnet.models import Role, User
from alertnet.posts.service import get_post_by_callsign

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,79}")
# `/api/v1/users/me` is the caller's own account (alertnet.auth.me), so no user may be named so.
RESERVED_USERNAMES = frozenset({"me"})
# Roles that see and change everything: a guessed password costs the most there.
PRIVILEGED_ROLES = frozenset({Role.ADMIN, Role.DISPATCHER})


@dataclass(frozen=True, slots=True)
class Bindings:
    """What a role is bound to: the post's id for ``post``, the mahalla's id for ``observer``."""

    post_id: int | None
    mahalla_id: int | None


@dataclass(frozen=True, slots=True)
class AccountChange:
    """The outcome of ``change_account``: a generated password (shown once) and how many of
    the user's tokens were revoked."""

    generated_password: str | None
    revoked_tokens: int


def parse_role(role: str) -> Role:
    try:
        return Role(role.strip().lower())
    except ValueError:
        choices = ", ".join(member.value for member in Role)
        raise InvalidInput(f"unknown role {role!r} (one of {choices})") from None


def generate_password() -> str:
    """A random password of 16 URL-safe characters (96 bits), for accounts made by an admin."""
    return secrets.token_urlsafe(12)


def min_password_length(role: Role) -> int:
    return MIN_PRIVILEGED_LENGTH if role in PRIVILEGED_ROLES else MIN_LENGTH


def check_password(password: str, role: Role, username: str) -> None:
    """InvalidInput unless ``password`` meets the policy for ``role`` (``auth.passwords``)."""
    problem = password_problem(password, min_length=min_password_length(role), username=username)
    if problem is not None:
        raise InvalidInput(problem if role not in PRIVILEGED_ROLES else f"{problem} for {role}")


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


async def resolve_bindings(
    session: AsyncSession,
    role: Role,
    post_callsign: str | None,
    mahalla_name: str | None,
) -> Bindings:
    """The post or mahalla a role must be bound to, checked and looked up."""
    if role is Role.POST and post_callsign is None:
        raise InvalidInput("a user with role post must be bound to a post (--post CALLSIGN)")
    if role is not Role.POST and post_callsign is not None:
        raise InvalidInput(f"only a user with role post can be bound to a post, not {role}")
    if role is Role.OBSERVER and mahalla_name is None:
        raise InvalidInput("a user with role observer must be bound to a mahalla (--mahalla NAME)")
    if role is not Role.OBSERVER and mahalla_name is not None:
        raise InvalidInput(f"only a user with role observer can be bound to a mahalla, not {role}")
    post_id = None
    if post_callsign is not None:
        post_id = (await get_post_by_callsign(session, post_callsign)).id
    mahalla_id = None
    if mahalla_name is not None:
        mahalla_id = (await get_mahalla_by_name(session, mahalla_name)).id
    return Bindings(post_id, mahalla_id)


async def create_user(
    session: AsyncSession,
    username: str,
    role: str,
    *,
    password: str | None = None,
    post_callsign: str | None = None,
    mahalla_name: str | None = None,
    demo: bool = False,
) -> tuple[User, str | None]:
    """Create a user; returns it and the generated password, or None when one was given.

    ``demo`` marks an account of the demo city: its published password is exempt from the
    policy because no server started without ``--demo`` lets it in.
    """
    username = username.strip()
    if not USERNAME_PATTERN.fullmatch(username):
        raise InvalidInput(
            f"username {username!r} must be 1-80 letters, digits or . _ @ -, "
            "starting with a letter or digit"
        )
    if username.lower() in RESERVED_USERNAMES:
        raise InvalidInput(f"username {username!r} is reserved: /api/v1/users/me is one's own")
    user_role = parse_role(role)
    bindings = await resolve_bindings(session, user_role, post_callsign, mahalla_name)
    if password is not None and not demo:
        check_password(password, user_role, username)
    if await find_user_by_username(session, username) is not None:
        raise Conflict(f"user {username!r} already exists")

    generated = None
    if password is None:
        password = generated = generate_password()
    user = User(
        username=username,
        password_hash=await asyncio.to_thread(hash_password, password),
        role=user_role.value,
        post_id=bindings.post_id,
        mahalla_id=bindings.mahalla_id,
        active=True,
        demo=demo,
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
    Callers throttle first (``auth.throttle``): this costs an argon2 hash whatever the outcome.
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


# --- changes to an account ---------------------------------------------------------------------


async def _ensure_another_admin(session: AsyncSession, user: User, change: str) -> None:
    """Conflict when ``user`` is the last active admin (demo admins do not count for a real one).

    The admin rows are locked first, so two admins disabling each other at the same moment
    cannot both succeed.
    """
    if user.role != Role.ADMIN.value or not user.active:
        return
    await write_lock(session)
    # Every active admin row, this one included: a concurrent change of any of them waits.
    admins = (
        await session.execute(
            select(User.id, User.demo)
            .where(User.role == Role.ADMIN.value, User.active.is_(True))
            .with_for_update(key_share=True)
        )
    ).all()
    others = [admin for admin in admins if admin.id != user.id and (user.demo or not admin.demo)]
    if not others:
        raise Conflict(f"{user.username} is the last active admin and cannot be {change}")


async def set_password(session: AsyncSession, user: User, password: str | None) -> AccountChange:
    """Give ``user`` a new password (generated when None) and revoke all its tokens."""
    generated = None
    if password is None:
        password = generated = generate_password()
    else:
        check_password(password, Role(user.role), user.username)
    user.password_hash = await asyncio.to_thread(hash_password, password)
    return AccountChange(generated, await revoke_user_tokens(session, user.id))


async def set_active(session: AsyncSession, user: User, active: bool) -> AccountChange:
    """Enable or disable ``user``; disabling revokes its tokens for good."""
    if active == user.active:
        return AccountChange(None, 0)
    if active:
        if user.demo:
            raise Conflict(
                f"{user.username} is a demo account: only `alertnet serve --demo` enables it"
            )
        user.active = True
        await session.flush()
        return AccountChange(None, 0)
    await _ensure_another_admin(session, user, "disabled")
    user.active = False
    await session.flush()
    return AccountChange(None, await revoke_user_tokens(session, user.id))


async def set_role(
    session: AsyncSession,
    user: User,
    role: str,
    *,
    post_callsign: str | None = None,
    mahalla_name: str | None = None,
    password: str | None = None,
) -> AccountChange:
    """Give ``user`` another role (with that role's bindings).

    Moving up to admin or dispatcher needs a new password, because the old one was only
    checked against the shorter minimum; the user's tokens are then revoked.
    """
    new_role = parse_role(role)
    bindings = await resolve_bindings(session, new_role, post_callsign, mahalla_name)
    old_role = Role(user.role)
    if new_role is not old_role:
        await _ensure_another_admin(session, user, f"made {new_role}")
    if new_role in PRIVILEGED_ROLES and old_role not in PRIVILEGED_ROLES and password is None:
        raise InvalidInput(
            f"making {user.username} {new_role} needs a new password of at least "
            f"{MIN_PRIVILEGED_LENGTH} characters"
        )
    user.role = new_role.value
    user.post_id = bindings.post_id
    user.mahalla_id = bindings.mahalla_id
    change = AccountChange(None, 0)
    if password is not None:
        change = await set_password(session, user, password)
    await session.flush()
    return change


async def set_language(session: AsyncSession, user_id: int, language: str | None) -> User:
    """Store the language ``user_id`` chose for the pages (None: follow the browser again).

    InvalidInput for a language alertnet does not offer (``alertnet.i18n.LANGUAGES``).
    """
    stored = None
    if language is not None:
        stored = offered_language(language)
        if stored is None:
            raise InvalidInput(
                f"unknown language {language!r} (one of {', '.join(LANGUAGES)}, or null)"
            )
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    user.language = stored
    await session.flush()
    return user


async def stored_language(session: AsyncSession, user_id: int) -> str | None:
    """The language ``user_id`` chose for the pages, None when they have not chosen one."""
    language: str | None = await session.scalar(select(User.language).where(User.id == user_id))
    return language

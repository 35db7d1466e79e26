"""Password hashing, API tokens and user accounts, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.auth.passwords import hash_password, needs_rehash, verify_password
from alertnet.auth.tokens import create_token, new_token, token_sha256, user_for_token
from alertnet.auth.users import authenticate, create_user
from alertnet.db import unit_of_work
from alertnet.errors import Conflict, InvalidInput, NotFound
from alertnet.mahallas import add_mahalla
from alertnet.models import ApiToken, Role, User, utcnow
from alertnet.posts.service import add_post

SessionFactory = async_sessionmaker[AsyncSession]


# --- passwords (pure) -------------------------------------------------------------------------


def test_password_hash_is_salted_argon2id_and_verifies() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first.startswith("$argon2id$")
    assert first != second  # a fresh salt every time
    assert "correct horse" not in first
    assert verify_password(first, "correct horse")
    assert verify_password(second, "correct horse")
    assert not verify_password(first, "correct horsE")
    assert not verify_password(first, "")


def test_verify_password_is_false_for_a_broken_hash() -> None:
    assert not verify_password("not-a-hash", "anything")
    assert not verify_password("", "anything")


def test_needs_rehash_only_for_weaker_parameters() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("pw-123456")
    assert needs_rehash(weak)
    assert not needs_rehash(hash_password("pw-123456"))
    assert needs_rehash("garbage")


# --- tokens (pure) ----------------------------------------------------------------------------


def test_new_tokens_are_long_random_and_url_safe() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    for token in tokens:
        assert len(token) == 43
        assert token.replace("-", "").replace("_", "").isalnum()


def test_token_sha256_is_hex_sha256() -> None:
    assert token_sha256("abc") == hashlib.sha256(b"abc").hexdigest()
    assert len(token_sha256(new_token())) == 64


# --- accounts and tokens in the database ------------------------------------------------------


async def _bindings(session: AsyncSession) -> None:
    await add_mahalla(session, "Chorsu", risk="red")
    await add_post(session, "P-101")


async def test_create_user_generates_a_password_that_logs_in(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        user, generated = await create_user(session, "dina", "dispatcher")
    assert generated is not None and len(generated) >= 16
    assert user.password_hash.startswith("$argon2id$")
    assert generated not in user.password_hash
    async with unit_of_work(session_factory) as session:
        found = await authenticate(session, "dina", generated)
        assert found is not None and found.id == user.id and found.role == Role.DISPATCHER
        assert await authenticate(session, "dina", generated + "x") is None
        assert await authenticate(session, "nobody", generated) is None


async def test_create_user_with_a_given_password_returns_none(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        _user, generated = await create_user(session, "root", "admin", password="long-enough-1")
        assert generated is None
        assert await authenticate(session, "root", "long-enough-1") is not None


async def test_role_bindings_are_enforced(session_factory: SessionFactory) -> None:
    async with unit_of_work(session_factory) as session:
        await _bindings(session)
        post_user, _ = await create_user(session, "post101", "post", post_callsign="P-101")
        observer, _ = await create_user(session, "team", "observer", mahalla_name="Chorsu")
        assert post_user.post_id is not None and post_user.mahalla_id is None
        assert observer.mahalla_id is not None and observer.post_id is None

    bad_calls: list[tuple[dict[str, object], type[Exception], str]] = [
        ({"role": "post"}, InvalidInput, "must be bound to a post"),
        ({"role": "observer"}, InvalidInput, "must be bound to a mahalla"),
        ({"role": "admin", "post_callsign": "P-101"}, InvalidInput, "only a user with role post"),
        ({"role": "dispatcher", "mahalla_name": "Chorsu"}, InvalidInput, "role observer"),
        ({"role": "post", "mahalla_name": "Chorsu"}, InvalidInput, "bound to a post"),
        ({"role": "post", "post_callsign": "P-999"}, NotFound, "P-999"),
        ({"role": "observer", "mahalla_name": "Atlantis"}, NotFound, "Atlantis"),
        ({"role": "janitor"}, InvalidInput, "unknown role"),
        ({"role": "admin", "password": "short"}, InvalidInput, "at least 12"),
        (
            {"role": "observer", "mahalla_name": "Chorsu", "password": "short"},
            InvalidInput,
            "at least 8",
        ),
    ]
    for kwargs, error, message in bad_calls:
        role = str(kwargs.pop("role"))
        async with unit_of_work(session_factory) as session:
            with pytest.raises(error, match=message):
                await create_user(session, "someone", role, **kwargs)  # type: ignore[arg-type]


async def test_duplicate_and_malformed_usernames(session_factory: SessionFactory) -> None:
    async with unit_of_work(session_factory) as session:
        await create_user(session, "dina", "dispatcher")
    async with unit_of_work(session_factory) as session:
        with pytest.raises(Conflict, match="already exists"):
            await create_user(session, "dina", "admin")
    for username in ("", "two words", "-dash", "x" * 81):
        async with unit_of_work(session_factory) as session:
            with pytest.raises(InvalidInput, match="username"):
                await create_user(session, username, "admin")


async def test_inactive_user_cannot_log_in(session_factory: SessionFactory) -> None:
    async with unit_of_work(session_factory) as session:
        user, _ = await create_user(session, "gone", "dispatcher", password="pass-word-1-long")
        user.active = False
    async with unit_of_work(session_factory) as session:
        assert await authenticate(session, "gone", "pass-word-1-long") is None


async def test_login_upgrades_an_outdated_hash(session_factory: SessionFactory) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("pass-word-1-long")
    async with unit_of_work(session_factory) as session:
        user, _ = await create_user(session, "old", "admin", password="pass-word-1-long")
        user.password_hash = weak
    async with unit_of_work(session_factory) as session:
        assert await authenticate(session, "old", "pass-word-1-long") is not None
    async with unit_of_work(session_factory) as session:
        stored = (await session.execute(select(User.password_hash))).scalar_one()
    assert stored != weak and not needs_rehash(stored)
    assert verify_password(stored, "pass-word-1-long")


async def test_token_is_stored_only_as_its_hash(session_factory: SessionFactory) -> None:
    async with unit_of_work(session_factory) as session:
        user, _ = await create_user(session, "dina", "dispatcher")
        token = await create_token(session, user.id, label="console")
    async with unit_of_work(session_factory) as session:
        row = (await session.execute(select(ApiToken))).scalar_one()
    assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    stored_values = [getattr(row, column.key) for column in ApiToken.__table__.columns]
    assert all(token not in str(value) for value in stored_values)
    assert row.label == "console" and row.last_used_at is None and row.revoked_at is None
    # No lifetime given: the default 90 days.
    assert abs(row.expires_at - utcnow() - timedelta(days=90)) < timedelta(minutes=1)


async def test_user_for_token_finds_the_user_and_notes_the_use(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        user, _ = await create_user(session, "dina", "dispatcher")
        token = await create_token(session, user.id)
    async with unit_of_work(session_factory) as session:
        found = await user_for_token(session, token)
        assert found is not None and found.username == "dina"
        assert await user_for_token(session, token + "x") is None
        assert await user_for_token(session, "") is None
    async with unit_of_work(session_factory) as session:
        last_used_at = (await session.execute(select(ApiToken.last_used_at))).scalar_one()
    assert last_used_at is not None and utcnow() - last_used_at < timedelta(minutes=1)


async def test_expired_token_and_disabled_user_are_refused(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        user, _ = await create_user(session, "dina", "dispatcher")
        short_lived = await create_token(session, user.id, ttl_s=3600)
        other = await create_token(session, user.id)
    async with unit_of_work(session_factory) as session:
        assert await user_for_token(session, short_lived) is not None
        row = (
            await session.execute(
                select(ApiToken).where(ApiToken.token_sha256 == token_sha256(short_lived))
            )
        ).scalar_one()
        row.expires_at = utcnow() - timedelta(seconds=1)
    async with unit_of_work(session_factory) as session:
        assert await user_for_token(session, short_lived) is None
        assert await user_for_token(session, other) is not None
        (await session.get_one(User, user.id)).active = False
    async with unit_of_work(session_factory) as session:
        assert await user_for_token(session, other) is None


async def test_create_token_checks_its_arguments(session_factory: SessionFactory) -> None:
    async with unit_of_work(session_factory) as session:
        with pytest.raises(NotFound):
            await create_token(session, 12345)
        user, _ = await create_user(session, "dina", "dispatcher")
        with pytest.raises(InvalidInput, match="positive"):
            await create_token(session, user.id, ttl_s=0)
        with pytest.raises(InvalidInput, match="label"):
            await create_token(session, user.id, label="x" * 81)

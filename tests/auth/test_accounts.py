"""Account rules of DESIGN §14 over the admin API, on SQLite and PostgreSQL: tokens die with a
disabled user and stay dead, the last active admin stays, passwords meet the policy, tokens
expire and can be revoked (issue 12)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.auth.tokens import (
    TokenState,
    create_token,
    list_tokens,
    revoke_token,
    user_for_token,
)
from alertnet.auth.users import get_user_by_username, set_active
from alertnet.db import unit_of_work
from alertnet.errors import Conflict, InvalidInput
from alertnet.models import ApiToken, User, utcnow
from tests.auth.helpers import PASSWORD, Account, Cast, bearer, build_app, create_cast
from tests.support.asgi import running_app

SessionFactory = async_sessionmaker[AsyncSession]
STRONG = "harbour-lantern-47"


@dataclass
class Admin:
    api: httpx.AsyncClient
    cast: Cast
    session_factory: SessionFactory

    async def patch_user(self, username: str, **body: object) -> httpx.Response:
        return await self.api.patch(
            f"/api/v1/users/{username}", json=body, headers=bearer(self.cast.admin)
        )

    async def me(self, account: Account | str) -> int:
        token = account if isinstance(account, str) else account.token
        response = await self.api.get(
            "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}
        )
        return response.status_code

    async def login(self, username: str, password: str) -> httpx.Response:
        return await self.api.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        )


@pytest_asyncio.fixture
async def admin(db_url: str, session_factory: SessionFactory) -> AsyncIterator[Admin]:
    app = build_app(db_url)
    cast = await create_cast(session_factory)
    async with running_app(app) as api:
        yield Admin(api, cast, session_factory)


# --- disabling ---------------------------------------------------------------------------------


async def test_a_re_enabled_users_old_tokens_stay_dead(admin: Admin) -> None:
    dispatcher = admin.cast.dispatcher
    session_token = (await admin.login("dispatch1", PASSWORD)).json()["token"]
    assert await admin.me(dispatcher) == 200

    off = await admin.patch_user("dispatch1", active=False)
    assert off.status_code == 200, off.text
    assert off.json()["active"] is False and off.json()["revoked_tokens"] == 2
    on = await admin.patch_user("dispatch1", active=True)
    assert on.json()["active"] is True and on.json()["revoked_tokens"] == 0

    assert await admin.me(dispatcher) == 401
    assert await admin.me(session_token) == 401
    # A new login works, and so does a new token.
    assert (await admin.login("dispatch1", PASSWORD)).status_code == 200


async def test_the_last_active_admin_cannot_be_disabled_or_demoted(admin: Admin) -> None:
    for change in ({"active": False}, {"role": "dispatcher"}):
        refused = await admin.patch_user("admin1", **change)
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"] == "conflict"
        assert "last active admin" in refused.json()["detail"]
    assert await admin.me(admin.cast.admin) == 200

    # With a second admin, either may go; then the second is the last one.
    promoted = await admin.patch_user("dispatch1", role="admin")
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin"
    assert (await admin.patch_user("admin1", role="dispatcher")).status_code == 200
    async with admin.session_factory() as session:
        last = await get_user_by_username(session, "dispatch1")
    assert last.role == "admin"
    assert (await admin.patch_user("admin1", role="admin", password=STRONG)).status_code == 403


async def test_two_admins_disabling_each_other_at_once_leave_one(
    session_factory: SessionFactory,
) -> None:
    await create_cast(session_factory)
    async with unit_of_work(session_factory) as session:
        second = await get_user_by_username(session, "dispatch1")
        second.role = "admin"
    both_loaded = asyncio.Barrier(2)

    async def disable(username: str) -> str:
        try:
            async with unit_of_work(session_factory) as session:
                user = await get_user_by_username(session, username)
                await both_loaded.wait()  # each has read its user as an active admin
                await set_active(session, user, False)
        except Conflict:
            return "refused"
        return "disabled"

    outcomes = await asyncio.gather(disable("admin1"), disable("dispatch1"))
    assert sorted(outcomes) == ["disabled", "refused"]
    async with session_factory() as session:
        active_admins = (
            await session.scalars(
                select(User.username).where(User.role == "admin", User.active.is_(True))
            )
        ).all()
    assert len(active_admins) == 1


async def test_a_demo_admin_does_not_count_as_another_admin(
    session_factory: SessionFactory,
) -> None:
    await create_cast(session_factory)
    async with unit_of_work(session_factory) as session:
        demo_admin = await get_user_by_username(session, "dispatch1")
        demo_admin.role, demo_admin.demo = "admin", True
    with pytest.raises(Conflict, match="last active admin"):
        async with unit_of_work(session_factory) as session:
            await set_active(session, await get_user_by_username(session, "admin1"), False)


# --- passwords and roles -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "password", "problem"),
    [
        ("admin", "eight888", "at least 12 characters for admin"),
        ("dispatcher", "elevenchars", "at least 12 characters for dispatcher"),
        ("admin", "Password123456", "too common"),
        ("dispatcher", "alertnet2026!!", "too common"),
        ("post", "qwertyuiop", "too common"),
        ("observer", "aaaaaaaabbbb", "different characters"),
        ("admin", "newcomer-and-more", "must not contain the username"),
    ],
)
async def test_weak_passwords_are_refused_on_create(
    admin: Admin, role: str, password: str, problem: str
) -> None:
    binding = {"post": "P-101"} if role == "post" else {}
    binding |= {"mahalla": "Chilonzor-1"} if role == "observer" else {}
    response = await admin.api.post(
        "/api/v1/users",
        json={"username": "newcomer", "role": role, "password": password, **binding},
        headers=bearer(admin.cast.admin),
    )
    assert response.status_code == 422, response.text
    assert problem in response.json()["detail"]


async def test_a_new_password_is_checked_and_ends_every_session(admin: Admin) -> None:
    weak = await admin.patch_user("dispatch1", password="short-pass")
    assert weak.status_code == 422 and "at least 12" in weak.json()["detail"]
    assert await admin.me(admin.cast.dispatcher) == 200

    changed = await admin.patch_user("dispatch1", password=STRONG)
    assert changed.status_code == 200 and changed.json()["revoked_tokens"] == 1
    assert await admin.me(admin.cast.dispatcher) == 401
    assert (await admin.login("dispatch1", PASSWORD)).status_code == 401
    assert (await admin.login("dispatch1", STRONG)).status_code == 200


async def test_moving_up_to_dispatcher_needs_a_new_password(admin: Admin) -> None:
    refused = await admin.patch_user("observer1", role="dispatcher")
    assert refused.status_code == 422 and "needs a new password" in refused.json()["detail"]
    moved = await admin.patch_user("observer1", role="dispatcher", password=STRONG)
    assert moved.status_code == 200, moved.text
    assert (moved.json()["role"], moved.json()["mahalla_id"]) == ("dispatcher", None)
    rebound = await admin.patch_user("post101", role="post", post="P-102")
    assert rebound.status_code == 200 and rebound.json()["post_id"] == admin.cast.post_b.post_id
    unbound = await admin.patch_user("post101", post="P-101")
    assert unbound.status_code == 422 and "together with role" in unbound.json()["detail"]
    missing = await admin.patch_user("post101", role="observer")
    assert missing.status_code == 422 and "bound to a mahalla" in missing.json()["detail"]


# --- tokens ------------------------------------------------------------------------------------


async def test_tokens_expire_and_revoke(session_factory: SessionFactory) -> None:
    cast = await create_cast(session_factory)
    async with unit_of_work(session_factory) as session:
        with pytest.raises(InvalidInput, match="at most 366 days"):
            await create_token(
                session, cast.admin.user_id, ttl_s=timedelta(days=400).total_seconds()
            )
        with pytest.raises(InvalidInput, match="positive"):
            await create_token(session, cast.admin.user_id, ttl_s=float("nan"))
        tokens = await list_tokens(session, "admin1")
    assert [(info.username, info.state) for info in tokens] == [("admin1", TokenState.ACTIVE)]
    token_id = tokens[0].id

    async with unit_of_work(session_factory) as session:
        info, ended = await revoke_token(session, token_id)
        assert ended and info.state is TokenState.REVOKED
        assert await user_for_token(session, cast.admin.token) is None
        _, again = await revoke_token(session, token_id)
        assert not again

    async with unit_of_work(session_factory) as session:
        await session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == cast.dispatcher.user_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    async with unit_of_work(session_factory) as session:
        assert await user_for_token(session, cast.dispatcher.token) is None
        states = {info.username: info.state for info in await list_tokens(session)}
    assert states["dispatch1"] is TokenState.EXPIRED and states["post101"] is TokenState.ACTIVE


async def test_a_disabled_user_gets_no_new_token(session_factory: SessionFactory) -> None:
    cast = await create_cast(session_factory)
    async with unit_of_work(session_factory) as session:
        await set_active(session, await get_user_by_username(session, "observer1"), False)
    with pytest.raises(InvalidInput, match="disabled"):
        async with unit_of_work(session_factory) as session:
            await create_token(session, cast.observer_m1.user_id)

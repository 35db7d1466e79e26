"""The auth endpoints and role dependencies over HTTP, on SQLite and PostgreSQL.

Every endpoint: unauthenticated 401, wrong role 403, a post acting on another post 403, an
observer reading another mahalla 403 (through a small router of test endpoints that declare
their roles the way the real ones do), plus login, logout, the cookie and the audit trail.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
import pytest_asyncio
from fastapi import APIRouter, FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.auth import users
from alertnet.auth.deps import (
    AdminActor,
    CurrentUser,
    DbSession,
    DispatcherActor,
    PostActor,
)
from alertnet.auth.throttle import LoginThrottle
from alertnet.db import unit_of_work
from alertnet.errors import Conflict
from alertnet.models import ApiToken, Mahalla, RequestAudit, User, utcnow
from tests.auth.helpers import PASSWORD, Account, Cast, bearer, build_app, create_cast
from tests.support.asgi import BASE_URL, AppClient, running_app

SessionFactory = async_sessionmaker[AsyncSession]
OWN_ORIGIN = BASE_URL  # the harness clients' base URL


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def scoped_router() -> APIRouter:
    """Endpoints shaped like the dispatch API's, each declaring its role."""
    router = APIRouter(prefix="/test")

    @router.post("/admin-only")
    async def admin_only(actor: AdminActor) -> dict[str, str]:
        return {"user": actor.username}

    @router.post("/console")
    async def console(actor: DispatcherActor) -> dict[str, str]:
        return {"user": actor.username}

    @router.post("/posts/{post_id}/act")
    async def act_for_post(post_id: int, actor: PostActor) -> dict[str, int]:
        actor.scope.ensure_acts_for_post(post_id)
        return {"post_id": post_id}

    @router.get("/mahallas/{mahalla_id}")
    async def read_mahalla(mahalla_id: int, actor: CurrentUser) -> dict[str, int]:
        actor.scope.ensure_sees_mahalla(mahalla_id)
        return {"mahalla_id": mahalla_id}

    @router.post("/mahallas")
    async def add_then_maybe_fail(
        name: str, fail: bool, actor: AdminActor, session: DbSession
    ) -> dict[str, str]:
        session.add(Mahalla(name=name, risk="green"))
        await session.flush()
        if fail:
            raise Conflict("failing after the write, on purpose")
        return {"name": name}

    return router


@dataclass
class Harness:
    app: FastAPI
    client: httpx.AsyncClient
    clock: FakeClock
    cast: Cast

    def other_client(self, host: str) -> httpx.AsyncClient:
        return AppClient(self.app, client_address=(host, 4321))


@pytest_asyncio.fixture
async def harness(db_url: str, session_factory: SessionFactory) -> AsyncIterator[Harness]:
    clock = FakeClock()
    app = build_app(db_url, throttle=LoginThrottle(free_failures=3, clock=clock))
    app.include_router(scoped_router())
    cast = await create_cast(session_factory)
    async with running_app(app, client_address=("10.0.0.1", 4321)) as client:
        yield Harness(app, client, clock, cast)


def assert_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error and body["detail"], body


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )


# --- login, me, logout ------------------------------------------------------------------------


async def test_login_returns_a_token_and_sets_the_session_cookie(harness: Harness) -> None:
    response = await login(harness.client, "post101", PASSWORD)
    assert response.status_code == 200, response.text
    body = response.json()
    post_a = harness.cast.post_a
    assert (body["username"], body["role"]) == ("post101", "post")
    assert (body["post_id"], body["mahalla_id"]) == (post_a.post_id, None)
    assert len(body["token"]) >= 40

    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"alertnet_session={body['token']};")
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=strict" in lowered and "path=/" in lowered
    assert "max-age=43200" in lowered  # one 12 h shift
    assert "secure" not in lowered  # plain http here; https gets Secure

    by_bearer = await harness.client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {body['token']}"}
    )
    assert by_bearer.json() == {
        "user_id": post_a.user_id,
        "username": "post101",
        "role": "post",
        "post_id": post_a.post_id,
        "mahalla_id": None,
        "language": None,
    }
    # The cookie alone (what the tablet page sends) authenticates as well.
    harness.client.cookies.set("alertnet_session", body["token"])
    by_cookie = await harness.client.get("/api/v1/auth/me")
    assert by_cookie.status_code == 200 and by_cookie.json()["username"] == "post101"


async def test_login_token_expires_after_a_shift(
    harness: Harness, session_factory: SessionFactory
) -> None:
    before = utcnow()
    token = (await login(harness.client, "dispatch1", PASSWORD)).json()["token"]
    async with session_factory() as session:
        expires_at = await session.scalar(
            select(ApiToken.expires_at)
            .join(User, User.id == ApiToken.user_id)
            .where(User.username == "dispatch1", ApiToken.label == "login")
        )
    assert expires_at is not None
    assert timedelta(hours=11, minutes=59) < expires_at - before < timedelta(hours=12, minutes=1)
    assert token


@pytest.mark.parametrize(
    ("username", "password"),
    [("post101", "wrong password"), ("nobody", PASSWORD), ("POST101 ", "wrong password")],
)
async def test_wrong_credentials_are_401_and_look_alike(
    harness: Harness, username: str, password: str
) -> None:
    response = await login(harness.client, username, password)
    assert_error(response, 401, "unauthorized")
    assert response.json()["detail"] == "wrong username or password"
    assert "set-cookie" not in response.headers


async def test_login_body_is_validated(harness: Harness) -> None:
    missing = await harness.client.post("/api/v1/auth/login", json={"username": "post101"})
    assert_error(missing, 422, "invalid_input")
    huge = await login(harness.client, "post101", "x" * 5000)
    assert_error(huge, 422, "invalid_input")


async def test_me_needs_a_valid_token(harness: Harness, session_factory: SessionFactory) -> None:
    assert_error(await harness.client.get("/api/v1/auth/me"), 401, "unauthorized")
    for header in ["Bearer", "Basic dXNlcjpwYXNz", "Bearer not-a-token", "Token abc"]:
        response = await harness.client.get("/api/v1/auth/me", headers={"Authorization": header})
        assert_error(response, 401, "unauthorized")
    # A bad Authorization header is not rescued by a good cookie.
    harness.client.cookies.set("alertnet_session", harness.cast.admin.token)
    response = await harness.client.get("/api/v1/auth/me", headers={"Authorization": "Basic x"})
    assert_error(response, 401, "unauthorized")
    harness.client.cookies.clear()

    account = harness.cast.dispatcher
    assert (await harness.client.get("/api/v1/auth/me", headers=bearer(account))).is_success
    async with unit_of_work(session_factory) as session:
        await session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == account.user_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    expired = await harness.client.get("/api/v1/auth/me", headers=bearer(account))
    assert_error(expired, 401, "unauthorized")

    observer = harness.cast.observer_m1
    async with unit_of_work(session_factory) as session:
        await session.execute(update(User).where(User.id == observer.user_id).values(active=False))
    disabled = await harness.client.get("/api/v1/auth/me", headers=bearer(observer))
    assert_error(disabled, 401, "unauthorized")


async def test_logout_needs_a_token_and_ends_it(harness: Harness) -> None:
    assert_error(await harness.client.post("/api/v1/auth/logout"), 401, "unauthorized")

    token = (await login(harness.client, "observer1", PASSWORD)).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    response = await harness.client.post("/api/v1/auth/logout", headers=headers)
    assert response.status_code == 204, response.text
    cleared = response.headers["set-cookie"].lower()
    assert cleared.startswith('alertnet_session="";') and "max-age=0" in cleared

    assert_error(await harness.client.get("/api/v1/auth/me", headers=headers), 401, "unauthorized")
    again = await harness.client.post("/api/v1/auth/logout", headers=headers)
    assert_error(again, 401, "unauthorized")
    # The user's other tokens live on.
    other = await harness.client.get("/api/v1/auth/me", headers=bearer(harness.cast.observer_m1))
    assert other.status_code == 200


async def test_logout_by_cookie(harness: Harness) -> None:
    response = await login(harness.client, "admin1", PASSWORD)
    assert "alertnet_session" in harness.client.cookies  # httpx keeps it, as a browser does
    # A browser sends its page's origin with the POST (alertnet.auth.csrf).
    logout = await harness.client.post("/api/v1/auth/logout", headers={"Origin": OWN_ORIGIN})
    assert logout.status_code == 204
    assert "alertnet_session" not in harness.client.cookies
    harness.client.cookies.set("alertnet_session", response.json()["token"])
    assert_error(await harness.client.get("/api/v1/auth/me"), 401, "unauthorized")


# --- roles and scopes -------------------------------------------------------------------------


async def test_every_scoped_endpoint_is_401_without_credentials(harness: Harness) -> None:
    cast = harness.cast
    client = harness.client
    for response in [
        await client.post("/test/admin-only"),
        await client.post("/test/console"),
        await client.post(f"/test/posts/{cast.post_a.post_id}/act"),
        await client.get(f"/test/mahallas/{cast.mahalla_1}"),
        await client.post("/test/mahallas", params={"name": "x", "fail": False}),
    ]:
        assert_error(response, 401, "unauthorized")


async def test_wrong_role_is_403(harness: Harness) -> None:
    cast = harness.cast

    async def status(path: str, account: Account) -> int:
        return (await harness.client.post(path, headers=bearer(account))).status_code

    admin_only = "/test/admin-only"
    assert await status(admin_only, cast.admin) == 200
    for account in [cast.dispatcher, cast.post_a, cast.observer_m1]:
        response = await harness.client.post(admin_only, headers=bearer(account))
        assert_error(response, 403, "forbidden")
        assert "needs the role admin" in response.json()["detail"]

    assert await status("/test/console", cast.dispatcher) == 200
    assert await status("/test/console", cast.admin) == 200
    assert await status("/test/console", cast.post_a) == 403
    assert await status("/test/console", cast.observer_m1) == 403

    own_post = f"/test/posts/{cast.post_a.post_id}/act"
    assert await status(own_post, cast.post_a) == 200
    for account in [cast.admin, cast.dispatcher, cast.observer_m1]:
        assert await status(own_post, account) == 403


async def test_a_post_acting_on_another_post_is_403(harness: Harness) -> None:
    cast = harness.cast
    other_post = f"/test/posts/{cast.post_b.post_id}/act"
    response = await harness.client.post(other_post, headers=bearer(cast.post_a))
    assert_error(response, 403, "forbidden")
    assert response.json()["detail"] == "post101 does not act for this post"
    assert (await harness.client.post(other_post, headers=bearer(cast.post_b))).status_code == 200


async def test_an_observer_reading_another_mahalla_is_403(harness: Harness) -> None:
    cast = harness.cast
    own, other = f"/test/mahallas/{cast.mahalla_1}", f"/test/mahallas/{cast.mahalla_2}"
    observer = bearer(cast.observer_m1)
    assert (await harness.client.get(own, headers=observer)).json() == {
        "mahalla_id": cast.mahalla_1
    }
    assert_error(await harness.client.get(other, headers=observer), 403, "forbidden")
    for account in [cast.admin, cast.dispatcher]:
        assert (await harness.client.get(other, headers=bearer(account))).status_code == 200
    # A post sees its offers and alerts, not whole mahallas.
    assert_error(await harness.client.get(own, headers=bearer(cast.post_a)), 403, "forbidden")


async def test_the_request_session_commits_on_success_and_rolls_back_on_error(
    harness: Harness, session_factory: SessionFactory
) -> None:
    admin = bearer(harness.cast.admin)
    kept = await harness.client.post(
        "/test/mahallas", params={"name": "Kept", "fail": False}, headers=admin
    )
    assert kept.status_code == 200
    failed = await harness.client.post(
        "/test/mahallas", params={"name": "Dropped", "fail": True}, headers=admin
    )
    assert_error(failed, 409, "conflict")
    async with session_factory() as session:
        names = set((await session.scalars(select(Mahalla.name))).all())
    assert "Kept" in names and "Dropped" not in names


# --- throttling -------------------------------------------------------------------------------


async def test_repeated_failed_logins_are_locked_out_with_a_doubling_window(
    harness: Harness,
) -> None:
    client, clock = harness.client, harness.clock
    for _ in range(3):  # free_failures=3 in this harness
        assert (await login(client, "post101", "guess")).status_code == 401
    # Locked for 1 s: even the right password is refused, without being checked.
    locked = await login(client, "post101", PASSWORD)
    assert_error(locked, 429, "too_many_attempts")
    assert "try again in 1 s" in locked.json()["detail"]
    # The same username in another case is the same account.
    assert (await login(client, "POST101", PASSWORD)).status_code == 429

    clock.now += 1.01
    assert (await login(client, "post101", "guess")).status_code == 401  # 4th failure: 2 s
    clock.now += 1.5
    assert (await login(client, "post101", PASSWORD)).status_code == 429
    clock.now += 0.6
    assert (await login(client, "post101", PASSWORD)).status_code == 200

    # A success clears the count: three fresh failures are free again.
    for _ in range(3):
        assert (await login(client, "post101", "guess")).status_code == 401
    assert (await login(client, "post101", PASSWORD)).status_code == 429


async def test_a_lockout_is_per_username_and_address(harness: Harness) -> None:
    for _ in range(3):
        assert (await login(harness.client, "post101", "guess")).status_code == 401
    assert (await login(harness.client, "post101", PASSWORD)).status_code == 429
    # Another user from the same address, and the same user from the tablet's address.
    assert (await login(harness.client, "post102", PASSWORD)).status_code == 200
    async with harness.other_client("10.0.0.77") as tablet:
        assert (await login(tablet, "post101", PASSWORD)).status_code == 200


async def test_guessing_across_usernames_is_throttled_per_address_before_hashing(
    db_url: str, session_factory: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 12: unlimited logins across usernames each cost a 64 MiB argon2 hash."""
    hashes = 0
    real_verify = users.verify_password

    def counting_verify(password_hash: str, password: str) -> bool:
        nonlocal hashes
        hashes += 1
        return real_verify(password_hash, password)

    monkeypatch.setattr(users, "verify_password", counting_verify)
    app = build_app(db_url, throttle=LoginThrottle(address_free_failures=10, clock=FakeClock()))
    await create_cast(session_factory)
    async with running_app(app, client_address=("203.0.113.5", 4321)) as client:
        statuses = [
            (await login(client, f"guess{index}", "password-guess")).status_code
            for index in range(60)
        ]
        # The officer behind the same address waits too; from elsewhere, no wait.
        assert (await login(client, "post101", PASSWORD)).status_code == 429
        async with AppClient(app, client_address=("198.51.100.7", 4321)) as elsewhere:
            assert (await login(elsewhere, "post101", PASSWORD)).status_code == 200
    assert statuses == [401] * 10 + [429] * 50
    assert hashes == 11  # ten guesses and the officer's login elsewhere


# --- audit ------------------------------------------------------------------------------------


async def audit_rows(session_factory: SessionFactory) -> list[RequestAudit]:
    async with session_factory() as session:
        return list((await session.scalars(select(RequestAudit).order_by(RequestAudit.id))).all())


async def test_state_changing_requests_are_audited(
    harness: Harness, session_factory: SessionFactory
) -> None:
    cast, client = harness.cast, harness.client
    await login(client, "dispatch1", "wrong one")
    token = (await login(client, "dispatch1", PASSWORD)).json()["token"]
    client.cookies.clear()
    await client.post("/test/admin-only", headers={"Authorization": f"Bearer {token}"})
    await client.post(f"/test/posts/{cast.post_b.post_id}/act", headers=bearer(cast.post_a))
    await client.post("/test/console")
    await client.post(
        "/test/mahallas", params={"name": "A", "fail": True}, headers=bearer(cast.admin)
    )
    await client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})
    # Not audited: reads, and device uplinks (recorded as events and quarantine instead).
    await client.get("/api/v1/auth/me", headers=bearer(cast.admin))
    await client.get(f"/test/mahallas/{cast.mahalla_1}", headers=bearer(cast.admin))
    await client.post("/api/v1/uplinks", content=b"\x01\x02")

    rows = await audit_rows(session_factory)
    seen = [(r.method, r.path, r.status, r.username, r.role, r.user_id) for r in rows]
    dispatcher, post_a, admin = cast.dispatcher, cast.post_a, cast.admin
    post_path = f"/test/posts/{cast.post_b.post_id}/act"
    assert seen == [
        ("POST", "/api/v1/auth/login", 401, "dispatch1", None, None),
        ("POST", "/api/v1/auth/login", 200, "dispatch1", "dispatcher", dispatcher.user_id),
        ("POST", "/test/admin-only", 403, "dispatch1", "dispatcher", dispatcher.user_id),
        ("POST", post_path, 403, "post101", "post", post_a.user_id),
        ("POST", "/test/console", 401, None, None, None),
        ("POST", "/test/mahallas", 409, "admin1", "admin", admin.user_id),
        ("POST", "/api/v1/auth/logout", 204, "dispatch1", "dispatcher", dispatcher.user_id),
    ]
    assert {r.client_addr for r in rows} == {"10.0.0.1"}
    assert all(r.at <= utcnow() for r in rows)


async def test_audit_survives_an_unexpected_error(
    db_url: str, session_factory: SessionFactory
) -> None:
    app = build_app(db_url)
    router = APIRouter()

    @router.delete("/test/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    app.include_router(router)
    async with running_app(app, raise_app_exceptions=False) as client:
        response = await client.delete("/test/boom")
    assert_error(response, 500, "internal_error")
    async with session_factory() as session:
        count = await session.scalar(
            select(func.count()).select_from(RequestAudit).where(RequestAudit.status == 500)
        )
    assert count == 1

"""A user's language over HTTP (DESIGN §11): ``PATCH /api/v1/users/me``, the "me" views and
``/web/config.json``, on SQLite and PostgreSQL, with the real app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.auth.users import create_user
from alertnet.db import unit_of_work
from alertnet.errors import InvalidInput
from alertnet.models import RequestAudit
from tests.auth.helpers import PASSWORD, Cast, bearer, build_app, create_cast
from tests.support.asgi import BASE_URL, AppClient, alertnet_api, running_app

SessionFactory = async_sessionmaker[AsyncSession]
OWN_ORIGIN = {"Origin": BASE_URL}


@dataclass
class Harness:
    client: AppClient
    cast: Cast


@pytest_asyncio.fixture
async def harness(db_url: str, session_factory: SessionFactory) -> AsyncIterator[Harness]:
    cast = await create_cast(session_factory)
    async with running_app(build_app(db_url)) as client:
        yield Harness(client, cast)


async def login(client: httpx.AsyncClient, username: str) -> httpx.Response:
    response = await client.post(
        "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return response


async def config_language(client: httpx.AsyncClient, accept_language: str | None = None) -> str:
    headers = {} if accept_language is None else {"Accept-Language": accept_language}
    response = await client.get("/web/config.json", headers=headers)
    assert response.status_code == 200, response.text
    language: str = response.json()["language"]
    return language


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["error"] == code and body["detail"], body


# --- PATCH /api/v1/users/me ---------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "dispatcher", "post_a", "observer_m1"])
async def test_every_role_chooses_its_language(harness: Harness, role: str) -> None:
    account = getattr(harness.cast, role)
    client = harness.client
    before = await client.get("/api/v1/users/me", headers=bearer(account))
    assert before.status_code == 200 and before.json()["language"] is None

    response = await client.patch(
        "/api/v1/users/me", json={"language": "ru"}, headers=bearer(account)
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "user_id": account.user_id,
        "username": account.username,
        "role": account.role,
        "post_id": account.post_id,
        "mahalla_id": account.mahalla_id,
        "language": "ru",
    }
    for path in ("/api/v1/users/me", "/api/v1/auth/me"):
        assert (await client.get(path, headers=bearer(account))).json()["language"] == "ru"


async def test_the_choice_persists_across_a_new_login(db_url: str, harness: Harness) -> None:
    first = await login(harness.client, "post101")
    assert first.json()["language"] is None
    changed = await harness.client.patch(
        "/api/v1/users/me", json={"language": "en"}, headers=OWN_ORIGIN
    )  # by the session cookie, as the tablet page does
    assert changed.status_code == 200 and changed.json()["language"] == "en"
    await harness.client.post("/api/v1/auth/logout", headers=OWN_ORIGIN)

    # Another device, another process: the language comes with the account.
    async with alertnet_api(db_url) as other_device:
        again = await login(other_device, "post101")
        assert again.json()["language"] == "en"
        assert await config_language(other_device, "ru") == "en"


async def test_null_goes_back_to_following_the_browser(harness: Harness) -> None:
    await login(harness.client, "dispatch1")
    await harness.client.patch("/api/v1/users/me", json={"language": "ru"}, headers=OWN_ORIGIN)
    assert await config_language(harness.client, "en") == "ru"
    cleared = await harness.client.patch(
        "/api/v1/users/me", json={"language": None}, headers=OWN_ORIGIN
    )
    assert cleared.status_code == 200 and cleared.json()["language"] is None
    assert await config_language(harness.client, "en") == "en"


async def test_a_code_in_another_case_is_stored_as_offered(harness: Harness) -> None:
    response = await harness.client.patch(
        "/api/v1/users/me", json={"language": "RU"}, headers=bearer(harness.cast.dispatcher)
    )
    assert response.status_code == 200 and response.json()["language"] == "ru"


@pytest.mark.parametrize(
    "body",
    [
        {"language": "fr"},
        {"language": "ru-RU"},
        {"language": ""},
        {"language": "x" * 17},
        {"language": 7},
        {},
        {"language": "ru", "active": False},  # an admin's change sent to the wrong place
    ],
)
async def test_an_unknown_language_or_field_is_refused(
    harness: Harness, body: dict[str, object]
) -> None:
    admin = harness.cast.admin
    response = await harness.client.patch("/api/v1/users/me", json=body, headers=bearer(admin))
    assert_error(response, 422, "invalid_input")
    after = await harness.client.get("/api/v1/users/me", headers=bearer(admin))
    assert after.json()["language"] is None


async def test_signed_out_callers_are_refused(harness: Harness) -> None:
    response = await harness.client.patch("/api/v1/users/me", json={"language": "ru"})
    assert_error(response, 401, "unauthorized")


async def test_a_cookie_request_from_another_origin_is_refused(harness: Harness) -> None:
    await login(harness.client, "observer1")
    for headers in ({}, {"Origin": "https://evil.example"}):
        response = await harness.client.patch(
            "/api/v1/users/me", json={"language": "ru"}, headers=headers
        )
        assert response.status_code == 403, response.text
    unchanged = await harness.client.get("/api/v1/users/me")
    assert unchanged.json()["language"] is None


async def test_the_change_is_audited(harness: Harness, session_factory: SessionFactory) -> None:
    dispatcher = harness.cast.dispatcher
    for language in ("ru", "fr"):
        await harness.client.patch(
            "/api/v1/users/me", json={"language": language}, headers=bearer(dispatcher)
        )
    async with session_factory() as session:
        rows = (
            await session.scalars(
                select(RequestAudit)
                .where(RequestAudit.path == "/api/v1/users/me")
                .order_by(RequestAudit.id)
            )
        ).all()
    assert [(r.method, r.status, r.user_id, r.role) for r in rows] == [
        ("PATCH", 200, dispatcher.user_id, "dispatcher"),
        ("PATCH", 422, dispatcher.user_id, "dispatcher"),
    ]


async def test_no_user_may_be_named_me(harness: Harness, session_factory: SessionFactory) -> None:
    async with unit_of_work(session_factory) as session:
        with pytest.raises(InvalidInput, match="reserved"):
            await create_user(session, "Me", "dispatcher", password=PASSWORD * 2)


async def test_the_admin_still_changes_other_accounts(harness: Harness) -> None:
    response = await harness.client.patch(
        "/api/v1/users/post102", json={"active": False}, headers=bearer(harness.cast.admin)
    )
    assert response.status_code == 200, response.text
    assert response.json()["active"] is False


# --- /web/config.json ---------------------------------------------------------------------------


async def test_config_offers_languages_and_the_time_zone(harness: Harness) -> None:
    body = (await harness.client.get("/web/config.json")).json()
    assert body["languages"] == ["uz", "ru", "en"]
    assert body["timezone"] == "Asia/Tashkent"
    assert body["language"] == "uz"
    assert "tile_url" in body


@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [
        (None, "uz"),
        ("ru-RU,ru;q=0.9,en;q=0.8", "ru"),
        ("en-US", "en"),
        ("uz-Cyrl-UZ, ru;q=0.5", "uz"),
        ("fr-FR, de;q=0.5", "uz"),
        ("ru;q=0, *", "uz"),
        ("\x7f;q=;;,,q", "uz"),
    ],
)
async def test_config_language_before_login(
    harness: Harness, accept_language: str | None, expected: str
) -> None:
    assert await config_language(harness.client, accept_language) == expected


async def test_config_follows_the_operators_settings(db_url: str) -> None:
    async with alertnet_api(db_url, default_language="en", timezone="Europe/Moscow") as client:
        body = (await client.get("/web/config.json", headers={"Accept-Language": "fr"})).json()
    assert (body["language"], body["timezone"]) == ("en", "Europe/Moscow")


async def test_config_uses_the_session_users_language(harness: Harness) -> None:
    await login(harness.client, "admin1")
    assert await config_language(harness.client, "en") == "en"  # no choice yet: the browser
    await harness.client.patch("/api/v1/users/me", json={"language": "ru"}, headers=OWN_ORIGIN)
    assert await config_language(harness.client, "en") == "ru"
    assert await config_language(harness.client) == "ru"


async def test_a_dead_or_forged_cookie_is_no_error(harness: Harness) -> None:
    await login(harness.client, "dispatch1")
    await harness.client.patch("/api/v1/users/me", json={"language": "ru"}, headers=OWN_ORIGIN)
    token = harness.client.cookies["alertnet_session"]
    await harness.client.post("/api/v1/auth/logout", headers=OWN_ORIGIN)
    for cookie in (token, "forged", ""):
        harness.client.cookies.set("alertnet_session", cookie)
        assert await config_language(harness.client, "en") == "en"


async def test_a_bearer_token_alone_does_not_pick_the_page_language(harness: Harness) -> None:
    admin = harness.cast.admin
    await harness.client.patch("/api/v1/users/me", json={"language": "ru"}, headers=bearer(admin))
    response = await harness.client.get(
        "/web/config.json", headers={**bearer(admin), "Accept-Language": "en"}
    )
    assert response.json()["language"] == "en"

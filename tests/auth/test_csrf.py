"""Cross-site request forgery (issue 12, DESIGN §14): the session cookie changes state only when
the request comes from alertnet's own origin; bearer tokens are not affected.

Over a real uvicorn socket too, because what counts is the Host a browser sends: a page served
by the same host on another port is same-site, so SameSite=Strict alone let it through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.auth.csrf import normalized_origin
from alertnet.models import Mahalla, RequestAudit
from tests.auth.helpers import PASSWORD, Cast, bearer, build_app, create_cast, running_server
from tests.support.asgi import running_app

SessionFactory = async_sessionmaker[AsyncSession]
OWN = "http://alertnet"


@dataclass
class Site:
    client: httpx.AsyncClient
    cast: Cast
    session_factory: SessionFactory

    async def log_in_as_admin(self) -> None:
        response = await self.client.post(
            "/api/v1/auth/login", json={"username": "admin1", "password": PASSWORD}
        )
        assert response.status_code == 200, response.text

    async def add_mahalla(self, name: str, **headers: str) -> httpx.Response:
        return await self.client.post(
            "/api/v1/mahallas", json={"name": name, "risk": "green"}, headers=headers
        )

    async def mahalla_names(self) -> set[str]:
        async with self.session_factory() as session:
            return set((await session.scalars(select(Mahalla.name))).all())


@pytest_asyncio.fixture
async def site(db_url: str, session_factory: SessionFactory) -> AsyncIterator[Site]:
    app = build_app(db_url)
    cast = await create_cast(session_factory)
    async with running_app(app, base_url=OWN) as client:
        yield Site(client, cast, session_factory)


def assert_cross_origin_refused(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["error"] == "cross_origin_request"
    assert "Authorization: Bearer" in body["detail"]


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no Origin and no Sec-Fetch-Site: not a browser page of ours
        {"Origin": "http://alertnet:8001"},  # the same host, another port
        {"Origin": "https://alertnet"},  # another scheme
        {"Origin": "http://evil.example"},
        {"Origin": "null"},  # a sandboxed frame or a file
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site", "Origin": OWN},  # the browser's word counts
    ],
)
async def test_a_cookie_post_from_another_origin_is_refused(
    site: Site, headers: dict[str, str]
) -> None:
    await site.log_in_as_admin()
    assert_cross_origin_refused(await site.add_mahalla("Forged", **headers))
    assert "Forged" not in await site.mahalla_names()


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": OWN},
        {"Origin": "HTTP://ALERTNET:80"},  # the same origin, spelled out
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "same-origin", "Origin": OWN},
    ],
)
async def test_a_cookie_post_from_our_own_page_passes(site: Site, headers: dict[str, str]) -> None:
    await site.log_in_as_admin()
    response = await site.add_mahalla("Own", **headers)
    assert response.status_code == 201, response.text
    assert "Own" in await site.mahalla_names()


async def test_every_unsafe_method_is_checked_and_safe_ones_are_not(site: Site) -> None:
    await site.log_in_as_admin()
    evil = {"Origin": "http://alertnet:8001"}
    patch = await site.client.patch("/api/v1/users/observer1", json={"active": False}, headers=evil)
    assert_cross_origin_refused(patch)
    assert_cross_origin_refused(await site.client.post("/api/v1/auth/logout", headers=evil))
    # A read changes nothing, so the cookie may be used for it from anywhere.
    assert (await site.client.get("/api/v1/auth/me", headers=evil)).status_code == 200


async def test_bearer_tokens_are_not_affected(site: Site) -> None:
    site.client.cookies.clear()
    headers = {**bearer(site.cast.admin), "Origin": "http://evil.example"}
    response = await site.client.post(
        "/api/v1/mahallas", json={"name": "Scripted", "risk": "red"}, headers=headers
    )
    assert response.status_code == 201, response.text
    # A bearer header wins over a cookie that comes along.
    await site.log_in_as_admin()
    response = await site.client.post(
        "/api/v1/mahallas", json={"name": "Scripted-2", "risk": "red"}, headers=headers
    )
    assert response.status_code == 201, response.text


async def test_a_refused_request_is_audited(site: Site) -> None:
    await site.log_in_as_admin()
    await site.add_mahalla("Forged", Origin="http://alertnet:8001")
    async with site.session_factory() as session:
        rows = (await session.scalars(select(RequestAudit).order_by(RequestAudit.id))).all()
    assert [(row.path, row.status) for row in rows][-1] == ("/api/v1/mahallas", 403)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 200),  # an API client
        ({"Origin": OWN}, 200),  # our login page
        ({"Sec-Fetch-Site": "same-origin"}, 200),
        ({"Origin": "http://alertnet:8001"}, 403),  # logging a browser into a chosen account
        ({"Sec-Fetch-Site": "cross-site"}, 403),
    ],
)
async def test_a_login_from_another_origin_is_refused(
    site: Site, headers: dict[str, str], status: int
) -> None:
    response = await site.client.post(
        "/api/v1/auth/login", json={"username": "admin1", "password": PASSWORD}, headers=headers
    )
    assert response.status_code == status, response.text
    assert ("set-cookie" in response.headers) == (status == 200)


async def test_over_a_real_socket_only_the_exact_host_and_port_pass(
    db_url: str, session_factory: SessionFactory
) -> None:
    """The finding of issue 12: a page on the same host, another port, used the cookie."""
    await create_cast(session_factory)
    async with running_server(build_app(db_url)) as server:
        async with httpx.AsyncClient(base_url=server.http_url) as browser:
            login = await browser.post(
                "/api/v1/auth/login",
                json={"username": "admin1", "password": PASSWORD},
                headers={"Origin": server.http_url},
            )
            assert login.status_code == 200, login.text

            async def add(name: str, origin: str) -> int:
                response = await browser.post(
                    "/api/v1/mahallas",
                    json={"name": name, "risk": "green"},
                    headers={"Origin": origin},
                )
                return response.status_code

            assert await add("Other-port", f"http://127.0.0.1:{server.port + 1}") == 403
            assert await add("Other-name", f"http://localhost:{server.port}") == 403
            assert await add("Own", server.http_url) == 201


def test_normalized_origin() -> None:
    assert normalized_origin("http://Example.org") == "http://example.org:80"
    assert normalized_origin("https://example.org:443/") == "https://example.org:443"
    assert normalized_origin("http://[::1]:8000") == "http://[::1]:8000"
    for unusable in ("null", "", "example.org", "http://host:notaport", "http://"):
        assert normalized_origin(unusable) is None

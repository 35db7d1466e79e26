"""The page router without a browser: what is served where, with which headers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from alertnet.web import router as web_router
from alertnet.web.pages import STATIC_DIR
from tests.auth.helpers import build_app
from tests.web.conftest import has_web_pages


@pytest_asyncio.fixture
async def client(sqlite_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(sqlite_url)
    if not has_web_pages(app):
        app.include_router(web_router)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://alertnet") as client:
            yield client


async def test_pages_are_served_with_a_strict_policy(client: httpx.AsyncClient) -> None:
    for path in ("/tablet", "/login"):
        page = await client.get(path)
        assert page.status_code == 200, path
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["cache-control"] == "no-cache"
        assert page.headers["x-content-type-options"] == "nosniff"
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "<script" in page.text and "http" not in page.text.split("<body")[0]


async def test_root_goes_to_the_console_which_is_its_owners_file(
    client: httpx.AsyncClient,
) -> None:
    root = await client.get("/")
    assert (root.status_code, root.headers["location"]) == (307, "/console")
    console = await client.get("/console")
    if (STATIC_DIR / "console.html").is_file():
        assert console.status_code == 200
        assert console.headers["content-type"] == "text/html; charset=utf-8"
    else:
        assert console.status_code == 404
        assert console.json()["error"] == "not_found"


async def test_static_files_and_the_bundled_leaflet(client: httpx.AsyncClient) -> None:
    for path, kind in (
        ("/static/common.js", "javascript"),
        ("/static/common.css", "text/css"),
        ("/static/tablet.js", "javascript"),
        ("/static/leaflet/leaflet.js", "javascript"),
        ("/static/leaflet/leaflet.css", "text/css"),
        ("/static/leaflet/images/marker-icon.png", "image/png"),
    ):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert kind in response.headers["content-type"], path
        assert response.headers["cache-control"] == "no-cache", path
        again = await client.get(path, headers={"If-None-Match": response.headers["etag"]})
        assert again.status_code == 304, path
    for path in ("/static/../pages.py", "/static/%2e%2e/pages.py", "/static/nothing.js"):
        assert (await client.get(path)).status_code == 404, path


async def test_web_config_names_the_tile_server(client: httpx.AsyncClient) -> None:
    config = (await client.get("/web/config.json")).json()
    assert config["tile_url"].startswith("https://")

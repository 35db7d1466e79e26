"""The page router without a browser: what is served where, with which headers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import urljoin

import httpx
import pytest_asyncio

from alertnet.web import router as web_router
from alertnet.web.pages import STATIC_DIR
from tests.auth.helpers import build_app
from tests.support.asgi import AppClient, running_app
from tests.web.conftest import has_web_pages


@pytest_asyncio.fixture
async def client(sqlite_url: str) -> AsyncIterator[AppClient]:
    app = build_app(sqlite_url)
    if not has_web_pages(app):
        app.include_router(web_router)
    async with running_app(app) as client:
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
        # Strict like the other pages, with the map's tile server allowed for images.
        policy = console.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "object-src 'none'" in policy
        assert "img-src 'self' data: https://tile.openstreetmap.org;" in policy
    else:
        assert console.status_code == 404
        assert console.json()["error"] == "not_found"


async def test_static_files_and_the_bundled_leaflet(client: httpx.AsyncClient) -> None:
    for path, kind in (
        ("/static/shared/api.js", "text/javascript"),
        ("/static/common.css", "text/css"),
        ("/static/tablet/main.js", "text/javascript"),
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


# `import … from "./x.js";`, `export … from "./x.js";` and `import "./x.js";` in a module.
MODULE_IMPORT = re.compile(r'(?:\bfrom|^import)\s+"([^"]+\.js)";', re.M)
PAGE_SCRIPT = re.compile(r'<script type="module" src="([^"]+)"></script>')
PRELOAD = re.compile(r'<link rel="modulepreload" href="([^"]+)">')


async def test_every_module_a_page_imports_is_served_as_javascript(
    client: httpx.AsyncClient,
) -> None:
    """Walk each page's module graph as a browser would; a module of another type is refused.

    The page preloads exactly the modules of its graph (a tablet on a slow mobile network
    would otherwise wait one round trip per level of imports).
    """
    for page in ("/console", "/tablet", "/login", "/mahalla"):
        html = (await client.get(page)).text
        [entry] = PAGE_SCRIPT.findall(html)
        pending, seen = [entry], set()
        while pending:
            path = pending.pop()
            if path in seen:
                continue
            seen.add(path)
            response = await client.get(path)
            assert response.status_code == 200, (page, path)
            assert response.headers["content-type"] == "text/javascript; charset=utf-8", path
            pending.extend(urljoin(path, target) for target in MODULE_IMPORT.findall(response.text))
        assert f"{entry.rsplit('/', 1)[0]}/strings.js" in seen, page
        assert sorted(PRELOAD.findall(html)) == sorted(seen), page
        assert "/static/shared/i18n.js" in seen, page

"""The console's map draws its tiles from a local MBTiles file with the internet cut off.

Real Chromium (``tests/web/conftest.py``: ``browser``, ``site``) against the real app started
with ``ALERTNET_TILES_MBTILES`` pointing at a file this test writes: PNG tiles around central
Tashkent at the console's opening zoom, stored in TMS rows as MBTiles tools store them. Every
request not to the site itself is aborted, as on a closed police network. The map must show
images loaded from ``/tiles/…`` (decoded: ``naturalWidth > 0``), say nothing about missing
tiles, and the page must have asked for nothing outside the site.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Route, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from tests.auth.helpers import PASSWORD, create_account
from tests.support.database import SQLITE
from tests.tiles.mbtiles import Xyz, solid_png, write_mbtiles, xyz_of
from tests.web.conftest import ARTIFACTS, LiveSite, wait_until_true

# The console opens on central Tashkent at zoom 12 (console/map.js DEFAULT_CENTRE).
CONSOLE_CENTRE: Final = (41.3111, 69.2797)
CONSOLE_ZOOM: Final = 12
# Enough tiles either side of the centre to fill a 1440x900 map at that zoom.
SPAN: Final = 5
TIMEOUT_MS: Final = 15_000
TEST_BUDGET_S: Final = 90

LOADED_LOCAL_TILES_JS: Final = """() =>
    [...document.querySelectorAll("img.leaflet-tile")]
    .filter((img) => new URL(img.src).pathname.startsWith("/tiles/"))
    .filter((img) => img.complete && img.naturalWidth > 0)
    .map((img) => new URL(img.src).pathname)"""


def city_tiles() -> dict[Xyz, bytes]:
    z, centre_x, centre_y = xyz_of(*CONSOLE_CENTRE, CONSOLE_ZOOM)
    tiles: dict[Xyz, bytes] = {}
    for x in range(centre_x - SPAN, centre_x + SPAN + 1):
        for y in range(centre_y - SPAN, centre_y + SPAN + 1):
            # A checkerboard, so the screenshot shows the tiles' edges.
            shade = 150 if (x + y) % 2 else 210
            tiles[(z, x, y)] = solid_png((shade, shade + 20, shade))
    return tiles


@pytest.fixture
def site_options(tmp_path: Path) -> dict[str, Any]:
    path = write_mbtiles(tmp_path / "tashkent.mbtiles", city_tiles())
    return {"tiles_mbtiles": path}


async def block_the_internet(route: Route) -> None:
    if urlsplit(route.request.url).hostname == LiveSite.host:
        await route.continue_()
    else:
        await route.abort("internetdisconnected")


@pytest.mark.parametrize("db_url", [SQLITE], indirect=True)
async def test_console_map_draws_local_tiles_with_the_network_blocked(
    site: LiveSite, browser: Browser, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_account(session, "disp-offline", "dispatcher")
    context = await browser.new_context(
        viewport={"width": 1440, "height": 900}, locale="en-GB", timezone_id="Asia/Tashkent"
    )
    context.set_default_timeout(TIMEOUT_MS)
    outside: list[str] = []
    errors: list[str] = []
    try:
        context.on(
            "request",
            lambda request: (
                outside.append(request.url)
                if urlsplit(request.url).hostname not in (LiveSite.host, None)
                else None
            ),
        )
        await context.route("**/*", block_the_internet)
        page = await context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        async with asyncio.timeout(TEST_BUDGET_S):
            await page.goto(f"{site.url}/console")
            await page.wait_for_url("**/login**")
            await page.fill("#username", "disp-offline")
            await page.fill("#password", PASSWORD)
            await page.click("#login-submit")
            await page.wait_for_url("**/console")

            await expect(page.locator("#map")).to_have_attribute("data-tiles", "loaded")
            await expect(page.locator("#map-note")).to_be_hidden()
            await wait_until_true(page, f"({LOADED_LOCAL_TILES_JS})().length >= 6", TIMEOUT_MS)
            loaded: list[str] = await page.evaluate(LOADED_LOCAL_TILES_JS)
            assert all(path.startswith(f"/tiles/{CONSOLE_ZOOM}/") for path in loaded), loaded
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "console-map-offline-tiles.png"))
    finally:
        await context.close()
    assert outside == [], f"the console asked the internet for {outside}"
    assert errors == [], f"script errors on the page: {errors}"

"""The mahalla page never runs what a device's name says (stored XSS), in a real Chromium.

Exists because a public device's name is shown in the map's tooltip and Leaflet writes a
string tooltip as HTML: the page passes a text node instead, and ``/mahalla`` and
``/mahalla/report`` carry a strict Content-Security-Policy (own scripts only; images also from
the configured tile server) as a second wall.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import httpx
import pytest
from playwright.async_api import Browser
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.models import Device
from tests.web.conftest import LiveSite

from .helpers import BUTTON_EUI, build_city
from .test_mahalla_page import TEST_BUDGET_S, desk, log_in

NO_TILES: Final = "http://127.0.0.1:9/{z}/{x}/{y}.png"
MARKUP: Final = "<img src=x onerror=\"document.body.dataset.pwned='1'\">Gate"


@pytest.fixture
def site_options() -> dict[str, Any]:
    return {"tile_url": NO_TILES}


async def test_a_device_name_is_text_in_the_map_and_the_page_has_a_strict_csp(
    session_factory: async_sessionmaker[AsyncSession], site: LiveSite, browser: Browser
) -> None:
    await build_city(session_factory)
    async with unit_of_work(session_factory) as session:
        await session.execute(update(Device).where(Device.eui == BUTTON_EUI).values(name=MARKUP))

    async with httpx.AsyncClient(base_url=site.url) as client:
        for path in ("/mahalla", "/mahalla/report"):
            policy = (await client.get(path)).headers.get("content-security-policy", "")
            assert "script-src 'self';" in policy and "object-src 'none'" in policy, path
            assert "img-src 'self' data: http://127.0.0.1:9;" in policy, path

    async with asyncio.timeout(TEST_BUDGET_S), desk(browser, site) as (page, errors, _answers):
        await log_in(page, "team", "/mahalla")
        dot = page.locator("path.device-dot[aria-label*='<img']")
        await dot.dispatch_event("mouseover")  # what a pointer over the dot sends
        tooltip = page.locator(".leaflet-tooltip")
        await tooltip.wait_for()
        assert "<img src=x" in await tooltip.inner_text()
        assert await tooltip.locator("img").count() == 0
        assert await page.evaluate("document.body.dataset.pwned") is None
        assert errors == []

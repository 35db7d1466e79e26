"""The mahalla page (/mahalla, DESIGN §12) and its printable monthly report in a real Chromium
against the real app (``site`` and ``browser`` of ``tests/web/conftest.py``).

The mahalla team (observer) logs in and sees its own mahalla only: coverage against the target
with its bar, the open alert, incidents, response times, the offline public button by name and
offline homes as counts per street, the map's dots, and houses only as counts per street —
and no owner, address, note, call list, household or business device name or exact position
anywhere in the page or in what the page was sent (§10). A dispatcher picks any mahalla.
Screenshots go to ``test-artifacts/web/``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.models import utcnow
from tests.auth.helpers import PASSWORD
from tests.web.conftest import LiveSite

from .helpers import DEAD_BUTTON_EUI, STREET, build_city, leaked

ARTIFACTS: Final = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
# Nothing listens there: tiles fail at once, as on a machine without internet.
NO_TILES: Final = "http://127.0.0.1:9/{z}/{x}/{y}.png"
TIMEOUT_MS: Final = 15_000
TEST_BUDGET_S: Final = 120
# The Chorsu devices the team's map shows: home, shop, button, dead home, dead button.
CHORSU_DEVICES: Final = 5
# A text that is nothing but a catalog key ("exemplary.yes"): a text missing from the catalog.
RAW_KEY: Final = re.compile(r"^[a-z][a-z0-9-]*(?:\.[a-z0-9_-]+)+$")


@pytest.fixture
def site_options() -> dict[str, Any]:
    return {"tile_url": NO_TILES}


@asynccontextmanager
async def desk(
    browser: Browser, site: LiveSite
) -> AsyncIterator[tuple[Page, list[str], list[Any]]]:
    """A desk-sized page on ``site``: its uncaught errors, and every API answer it received."""
    context = await browser.new_context(
        viewport={"width": 1280, "height": 900},
        locale="en-GB",
        timezone_id="Asia/Tashkent",
        base_url=site.url,
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    errors: list[str] = []
    answers: list[Any] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    async def keep(response: Any) -> None:
        if "/api/" in response.url:
            try:
                answers.append(await response.text())
            except Exception:  # a body the browser no longer holds (a redirect)
                answers.append("")

    page.on("response", lambda response: asyncio.ensure_future(keep(response)))
    try:
        yield page, errors, answers
    finally:
        await context.close()


async def log_in(page: Page, username: str, target: str) -> None:
    await page.goto(target)
    await page.wait_for_url(re.compile(r"/login\?next="))
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_url(re.compile(re.escape(target.split("?")[0]) + r"(\?|$)"))
    await page.locator("body[data-ready='true']").wait_for()


async def shown_text(page: Page) -> str:
    text: str = await page.evaluate(
        "() => document.documentElement.outerHTML + '\\n' + document.body.innerText"
    )
    return text


async def test_the_mahalla_team_sees_its_mahalla_without_private_data(
    session_factory: async_sessionmaker[AsyncSession], site: LiveSite, browser: Browser
) -> None:
    city = await build_city(session_factory)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with asyncio.timeout(TEST_BUDGET_S), desk(browser, site) as (page, errors, answers):
        # Another mahalla asked for in the address: the team still gets its own.
        await log_in(page, "team", f"/mahalla?mahalla_id={city.bodomzor}")
        await expect(page.locator("#mahalla-name")).to_have_text("Chorsu")
        await expect(page.locator("#pick-wrap")).to_be_hidden()
        await expect(page.locator("#whoami-role")).to_have_text("observer")

        households = page.locator(".coverage-part[data-kind='households']")
        await expect(households).to_have_attribute("data-pct", "10")
        await expect(households).to_contain_text("1 of 10 protected: 10 %")
        await expect(households.locator("[role='progressbar']")).to_have_attribute(
            "aria-valuenow", "10"
        )
        await expect(page.locator(".coverage-verdict")).to_have_text("Below the target")

        await expect(page.locator(f"[data-alert-id='{city.open_alert}']")).to_contain_text(STREET)
        await expect(page.locator("#incidents")).to_contain_text("1 alert in all")
        await expect(page.locator("#response")).to_contain_text("press → on scene")
        offline = page.locator("#offline")
        await expect(offline.locator(f"[data-eui='{DEAD_BUTTON_EUI}']")).to_contain_text(
            "Kukeldash square"
        )
        await expect(offline.locator(".offline-streets tbody tr")).to_have_count(1)
        await expect(offline.locator(".offline-streets tbody")).to_contain_text(STREET)
        await expect(page.locator("path.device-dot")).to_have_count(CHORSU_DEVICES)
        await expect(page.locator("#map")).to_have_attribute("data-tiles", "unavailable")

        exemplary = page.locator("#exemplary")
        await expect(exemplary.locator(".exemplary-streets tbody tr").first).to_be_visible()
        await expect(exemplary.locator(".exemplary-by-street")).to_contain_text(STREET)
        assert await exemplary.locator(".exemplary-sites").count() == 0
        await expect(exemplary).to_contain_text("Houses are counted per street")

        await page.screenshot(path=str(ARTIFACTS / "mahalla-observer.png"), full_page=True)
        assert leaked(await shown_text(page)) == []
        lines = (await page.evaluate("document.body.innerText")).split("\n")
        assert not {"null", "undefined", "NaN"} & {word for line in lines for word in line.split()}
        assert [line for line in lines if RAW_KEY.match(line.strip())] == []
        devices = await page.evaluate("window.alertnetMahalla.loaded.devices")
        private = [device for device in devices if device["site"] != "public"]
        assert private and all(device["name"] == "" for device in private)
        assert all(
            round(device["lat"], 3) == device["lat"] and round(device["lon"], 3) == device["lon"]
            for device in private
        )

        # The printable monthly report of this month.
        month = utcnow().strftime("%Y-%m")
        async with page.expect_popup() as popup_info:
            await page.fill("#report-month", month)
            await page.click("#report-form button[type='submit']")
        report = await popup_info.value
        await report.locator("body[data-ready='true']").wait_for()
        await expect(report.locator("#report-title")).to_have_text(
            f"Monthly report: Chorsu, {month}"
        )
        await expect(report.locator("#report-incidents")).to_contain_text("Intrusion")
        await expect(report.locator("#report-offline")).to_contain_text("Kukeldash square")
        await report.emulate_media(media="print")
        await expect(report.locator("#print-report")).to_be_hidden()
        await expect(report.locator(".whoami")).to_be_hidden()
        await report.screenshot(path=str(ARTIFACTS / "mahalla-report-print.png"), full_page=True)
        assert leaked(await shown_text(report)) == []
        await report.close()

        await asyncio.sleep(0.2)  # the last answers' bodies are read in the background
        assert answers and [found for answer in answers if (found := leaked(answer))] == []
        assert errors == []


async def test_a_dispatcher_picks_any_mahalla(
    session_factory: async_sessionmaker[AsyncSession], site: LiveSite, browser: Browser
) -> None:
    city = await build_city(session_factory)
    async with asyncio.timeout(TEST_BUDGET_S), desk(browser, site) as (page, errors, _answers):
        await log_in(page, "disp", "/mahalla")
        await expect(page.locator("#mahalla-name")).to_have_text("Chorsu")
        await expect(page.locator("#exemplary .exemplary-sites")).to_contain_text("HOME-REF-7")
        await page.select_option("#mahalla-select", str(city.bodomzor))
        await expect(page.locator("#mahalla-name")).to_have_text("Bodomzor")
        await expect(page.locator(".coverage-part[data-kind='households']")).to_have_attribute(
            "data-pct", "1"
        )
        await expect(page.locator("path.device-dot")).to_have_count(1)
        assert f"mahalla_id={city.bodomzor}" in page.url
        await page.screenshot(path=str(ARTIFACTS / "mahalla-dispatcher.png"), full_page=True)
        assert errors == []

"""Starting a drill from the dispatch console, in a real Chromium against the real app.

The ``site`` and ``browser`` fixtures of ``tests/web/conftest.py`` (alertnet with its MQTT
ingest on a real Mosquitto, dispatcher, drill runner and realtime hub, served by uvicorn) and
the console helpers of ``tests/web/test_console.py``: a dispatcher logs in, opens the Drills
tab, chooses the mahalla, the number of devices and the spread, starts the drill, and sees its
report fill in as the runner creates the events, while the drill alerts reach the queue marked
DRILL. An observer sees the tab without the form. Screenshots go to ``test-artifacts/web/``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, expect

from alertnet.db import unit_of_work
from tests.auth.helpers import bearer, create_account, fast_password_hashing
from tests.dispatch.helpers import SessionFactory
from tests.support.factories import create_post
from tests.web.conftest import LiveSite, browser, site
from tests.web.console_page import NO_TILES, TEST_BUDGET_S, browser_tab, log_in, wait_live

from .helpers import build_town

__all__ = ["browser", "fast_password_hashing", "site"]
pytestmark = [pytest.mark.mosquitto, pytest.mark.usefixtures("fast_password_hashing")]


@pytest.fixture
def site_options() -> dict[str, Any]:
    return {"tile_url": NO_TILES}


async def test_a_dispatcher_starts_a_drill_from_the_console_and_reads_its_report(
    session_factory: SessionFactory, site: LiveSite, browser: Browser
) -> None:
    await build_town(session_factory)
    async with unit_of_work(session_factory) as session:
        await create_post(session, callsign="P-1")
        dispatcher = await create_account(session, "disp", "dispatcher")
        await create_account(session, "obs", "observer", mahalla_name="Chorsu")

    async with asyncio.timeout(TEST_BUDGET_S), browser_tab(browser, "drills-console") as tab:
        page = tab.page
        await log_in(tab, site.url, "disp")
        await wait_live(page)
        await page.get_by_role("tab", name="Drills").click()
        form = page.get_by_role("tabpanel", name="Drills")
        await expect(form.get_by_role("heading", name="Start a training drill")).to_be_visible()
        await form.get_by_label("Mahalla", exact=True).select_option(label="Chorsu")
        await form.get_by_label("Number of devices").fill("2")
        await form.get_by_label("Spread over (minutes)").fill("0")
        await form.get_by_role("button", name="Start drill").click()

        await expect(page.locator("#action-status")).to_contain_text("started in Chorsu")
        report = page.locator("#drill-report")
        await expect(report.locator("h3")).to_contain_text("Chorsu")
        # The runner creates both events; the report, refreshed every few seconds, says so.
        await expect(report.locator("tr.event-created")).to_have_count(2, timeout=20_000)
        await expect(report.locator("#drill-summary")).to_contain_text("Events created: 2/2")
        await expect(report).not_to_contain_text("null")
        await expect(page.locator("#drill-list > li")).to_have_count(1)
        # The drill alerts are in the queue as any alert, marked DRILL.
        await expect(page.locator("#queue-list .drill-badge")).to_have_count(2)
        await tab.shot("drills-console-started")

    async with httpx.AsyncClient(base_url=site.url) as client:
        drills = (await client.get("/api/v1/drills", headers=bearer(dispatcher))).json()
    assert [(d["mahalla"], d["started_by"], d["device_count"]) for d in drills] == [
        ("Chorsu", "disp", 2)
    ]
    assert drills[0]["events"]["created"] == 2

    # The mahalla team reads the drill but has no form to start one.
    async with asyncio.timeout(TEST_BUDGET_S), browser_tab(browser, "drills-observer") as tab:
        page = tab.page
        await log_in(tab, site.url, "obs")
        await wait_live(page)
        await page.get_by_role("tab", name="Drills").click()
        await expect(page.locator("#drill-list > li")).to_have_count(1)
        await expect(page.locator("#drill-form")).to_be_hidden()
        await page.locator("#drill-list button.drill-open").click()
        await expect(page.locator("#drill-report tr.drill-alert")).to_have_count(2)
        assert await page.locator("#drill-stop").count() == 0
        await tab.shot("drills-console-observer")

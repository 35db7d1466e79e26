"""Premises, call lists and silent alarms in a real Chromium against the real app: the
console's alert detail (``console/premises.js``) and the tablet of the offered post
(``tablet/premises.js``), on SQLite and PostgreSQL. Screenshots in ``test-artifacts/web/``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

from playwright.async_api import Browser, Page, expect
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.models import Alert, Device
from tests.auth.helpers import PASSWORD
from tests.support.factories import create_alert
from tests.web.conftest import LiveSite, PhoneFactory

from .helpers import HOME_EUI, HOME_KEY, NEAR, PREMISES, SHOP_PREMISES, build_city, press

ARTIFACTS: Final = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
TIMEOUT_MS: Final = 15_000
TEST_BUDGET_S: Final = 120
SILENT_TEXT: Final = "SILENT — do not call the site; approach without siren"

SessionFactory = async_sessionmaker[AsyncSession]


@contextlib.asynccontextmanager
async def desk(browser: Browser, site: LiveSite, username: str, name: str) -> AsyncIterator[Page]:
    """A desk-sized console logged in as ``username``; no script error may happen on it."""
    context = await browser.new_context(
        viewport={"width": 1440, "height": 900},
        locale="en-GB",
        timezone_id="Asia/Tashkent",
        base_url=site.url,
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        await page.goto("/console")
        await page.wait_for_url("**/login**")
        await page.fill("#username", username)
        await page.fill("#password", PASSWORD)
        await page.click("#login-submit")
        await page.wait_for_url("**/console")
        await expect(page.locator("body")).to_have_attribute("data-loaded", "true")
        yield page
    except BaseException:
        with contextlib.suppress(Exception):
            await shot(page, f"{name}-FAILED")
        raise
    finally:
        await context.close()
    assert errors == [], errors


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def open_alert(page: Page, alert_id: int) -> None:
    await page.locator(f'#queue-list > li[data-alert-id="{alert_id}"]').click()
    await expect(page.locator("#detail-title")).to_be_visible()
    await expect(page.locator("#detail")).to_contain_text(f"{alert_id}")


async def _alerts(session_factory: SessionFactory, city: Any) -> tuple[int, int]:
    async with unit_of_work(session_factory) as session:
        home = await session.get_one(Device, city.home_id)
        shop = await session.get_one(Device, city.shop_id)
        loud = await create_alert(session, home, category="intrusion")
        silent = await create_alert(session, shop, category="panic", silent=True)
    return loud.id, silent.id


async def test_console_shows_the_call_list_and_locks_it_on_a_silent_alarm(
    site: LiveSite, browser: Browser, session_factory: SessionFactory, db_url: str
) -> None:
    backend = "postgres" if db_url.startswith("postgresql") else "sqlite"
    city = await build_city(session_factory, posts_on_duty=False)
    loud, silent = await _alerts(session_factory, city)
    async with asyncio.timeout(TEST_BUDGET_S), desk(browser, site, "disp1", "premises") as page:
        await open_alert(page, loud)
        section = page.locator("#premises")
        await expect(section).to_contain_text("Premises and call list")
        await expect(section).to_contain_text(PREMISES["owner"])
        await expect(section).to_contain_text("Kirish hovlidan")
        links = page.locator("#call-list a.call-link")
        await expect(links).to_have_count(2)
        await expect(links.nth(0)).to_have_attribute("href", "tel:+998901234567")
        await expect(links.nth(1)).to_have_attribute("href", "tel:+998937654321")
        await expect(page.locator("#call-list li").nth(1)).to_contain_text("Karimov Aziz (son)")
        await expect(page.locator("#silent-banner")).to_have_count(0)
        await shot(page, f"premises-console-call-list-{backend}")

        # The silent alarm: red banner, the number shown but not callable until overridden.
        await open_alert(page, silent)
        banner = page.locator("#silent-banner")
        await expect(banner).to_contain_text(SILENT_TEXT)
        await expect(banner).to_have_css("background-color", "rgb(163, 0, 0)")
        locked = page.locator("#call-list a.call-link")
        await expect(locked).to_have_count(1)
        await expect(locked).to_have_attribute("aria-disabled", "true")
        assert await locked.get_attribute("href") is None
        await shot(page, f"premises-console-silent-locked-{backend}")

        await page.click("#override-open")
        await page.click("#override-confirm")  # no reason yet: refused in the page
        await expect(page.locator("#override-form .form-error")).to_have_text(
            "Write the reason first."
        )
        await page.fill("#override-reason", "crew needs the manager to open the back door")
        await shot(page, f"premises-console-silent-override-form-{backend}")
        await page.click("#override-confirm")
        await expect(page.locator("#override-note")).to_contain_text("Calls unlocked by disp1")
        unlocked = page.locator("#call-list a.call-link")
        await expect(unlocked).to_have_attribute("href", "tel:+998971112233")
        await expect(unlocked).not_to_have_attribute("aria-disabled", "true")
        await expect(page.locator("#override-open")).to_have_count(0)
        await expect(page.locator("#detail")).to_contain_text(
            "call override: crew needs the manager to open the back door"
        )
        await shot(page, f"premises-console-silent-unlocked-{backend}")

    async with session_factory() as session:
        stored = await session.get_one(Alert, silent)
        assert stored.call_override_by == "disp1"


async def test_an_observers_console_shows_the_street_and_nothing_personal(
    site: LiveSite, browser: Browser, session_factory: SessionFactory
) -> None:
    city = await build_city(session_factory, posts_on_duty=False)
    loud, silent = await _alerts(session_factory, city)
    async with unit_of_work(session_factory) as session:
        await session.execute(
            update(Device).where(Device.id == city.shop_id).values(status="offline")
        )
    async with asyncio.timeout(TEST_BUDGET_S), desk(browser, site, "obs1", "observer") as page:
        await open_alert(page, loud)
        section = page.locator("#premises")
        await expect(section).to_contain_text(PREMISES["street"])
        await expect(page.locator("#call-list")).to_have_count(0)
        await open_alert(page, silent)
        await expect(page.locator("#silent-banner")).to_contain_text(SILENT_TEXT)
        await expect(page.locator("#override-open")).to_have_count(0)
        text = await page.locator("body").inner_text()
        for personal in (PREMISES["owner"], "123-45-67", SHOP_PREMISES["owner"], "Orqa eshik"):
            assert personal not in text
        await shot(page, "premises-console-observer")

        # Device health: homes and shops without their health, offline ones counted per street.
        await page.get_by_role("tab", name="Device health").click()
        # The troubled list loads first (none of an observer's: homes have no health for it).
        await expect(page.locator("#devices-summary")).to_contain_text("devices shown")
        await page.get_by_label("Devices to list").select_option("all")
        home_row = page.locator(f'#devices-table tbody tr[data-eui="{HOME_EUI}"]')
        await expect(home_row).to_contain_text("not shown (counted per street)")
        await expect(home_row).not_to_contain_text("Dilnoza")
        await expect(page.locator("#devices-streets")).to_contain_text("Navoiy ko'chasi: 1")
        await shot(page, "premises-console-observer-devices")


async def _tablet_offer(
    site: LiveSite, phones: PhoneFactory, session_factory: SessionFactory, *, silent: bool
) -> None:
    await build_city(session_factory, home_silent=silent, posts_on_duty=False)
    label = "silent" if silent else "call-list"
    async with phones(geolocation=NEAR, label=label) as phone:
        page = phone.page
        await phone.login("crew1")
        await page.click("#go-available")
        await expect(page.locator("#position-line")).to_contain_text("Position sent")
        await press(site.runtime.pipeline, HOME_EUI, HOME_KEY, 1)
        await expect(page.locator("#offer")).to_be_visible(timeout=30_000)
        await expect(page.locator("#offer-address")).to_have_text(PREMISES["address"])
        await expect(page.locator("#offer-notes")).to_contain_text("Kirish hovlidan")
        calls = page.locator("#offer-premises a.call-link")
        if silent:
            await expect(page.locator("#offer-silent")).to_have_text(SILENT_TEXT)
            await expect(calls).to_have_count(0)
        else:
            await expect(page.locator("#offer-silent")).to_have_count(0)
            await expect(calls).to_have_count(2)
            await expect(calls.nth(0)).to_have_attribute("href", "tel:+998901234567")
            await expect(calls.nth(0)).to_contain_text("Karimova Dilnoza")
        await phone.shot("1-offer")
        await page.click("#accept")
        await expect(page.locator("#view-alert")).to_be_visible()
        told = "Silent alarm: the device was not told" if silent else "device was told"
        await expect(page.locator("#toast")).to_contain_text(told)
        held = page.locator("#alert-premises a.call-link")
        await expect(page.locator("#alert-notes")).to_contain_text("Kirish hovlidan")
        if silent:
            await expect(page.locator("#alert-silent")).to_have_text(SILENT_TEXT)
            await expect(held).to_have_count(0)
        else:
            await expect(held).to_have_count(2)
            await expect(held.nth(1)).to_have_attribute("href", "tel:+998937654321")
        await phone.shot("2-alert")
        assert phone.errors == []


async def test_the_tablet_shows_notes_and_the_call_list_to_the_offered_post(
    site: LiveSite, phones: PhoneFactory, session_factory: SessionFactory
) -> None:
    async with asyncio.timeout(TEST_BUDGET_S):
        await _tablet_offer(site, phones, session_factory, silent=False)


async def test_the_tablet_says_silent_and_gives_no_numbers_for_a_silent_alarm(
    site: LiveSite, phones: PhoneFactory, session_factory: SessionFactory
) -> None:
    async with asyncio.timeout(TEST_BUDGET_S):
        await _tablet_offer(site, phones, session_factory, silent=True)

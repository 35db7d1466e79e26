"""The pages in Uzbek, Russian and English, with Tashkent time, in a real Chromium (DESIGN §11).

Against the live site of ``tests/web/conftest.py``: login, console and tablet render in each
language the browser asks for (Accept-Language, from the context's locale), with no raw key
and the texts of that language's catalog (screenshots in ``test-artifacts/web/``); the
language chosen with a page's switcher persists per user (``PATCH /api/v1/users/me``) and
follows the user to another browser; clock times are 24-hour Asia/Tashkent even in a browser
that runs in New York with an American locale.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.models import utcnow
from tests.auth.helpers import PASSWORD, Account, bearer, create_account
from tests.support.factories import create_alert, create_device, create_mahalla, create_post
from tests.web.conftest import LiveSite

ARTIFACTS: Final = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
CATALOGS: Final = Path(__file__).resolve().parents[2] / "src/alertnet/web/static/i18n"
LOCALES: Final = {"uz": "uz-UZ", "ru": "ru-RU", "en": "en-GB"}
TIMEOUT_MS: Final = 15_000
TEST_BUDGET_S: Final = 120
TASHKENT: Final = ZoneInfo("Asia/Tashkent")
CHORSU: Final = (41.3111, 69.2797)
NEAR: Final = (41.3161, 69.2797)
NO_TILES: Final = "http://127.0.0.1:9/{z}/{x}/{y}.png"
RAW_KEY: Final = re.compile(r"(?m)^\s*[a-z][a-z0-9-]*(?:\.[a-z0-9_-]+)+\s*$")
CLOCK: Final = re.compile(r"\b\d{2}:\d{2}:\d{2}\b")


@pytest.fixture
def site_options() -> dict[str, Any]:
    return {"tile_url": NO_TILES, "offer_timeout_s": 600}


def text(language: str, page: str, key: str) -> str:
    sections = json.loads((CATALOGS / f"{language}.json").read_text(encoding="utf-8"))
    value: str = (sections["shared"] | sections[page])[key]
    return value


async def make_people(session_factory: async_sessionmaker[AsyncSession]) -> dict[str, Account]:
    """A dispatcher, a post's crew near a mahalla with a panic button and an open alert."""
    async with unit_of_work(session_factory) as session:
        chorsu = await create_mahalla(session, name="Chorsu", risk="red")
        device = await create_device(
            session, kind="panic_button", lat=CHORSU[0], lon=CHORSU[1], mahalla_id=chorsu.id
        )
        await create_alert(session, device, opened_at=utcnow() - timedelta(minutes=2))
        await create_post(session, callsign="P-1", lat=NEAR[0], lon=NEAR[1], status="off_duty")
        return {
            "disp": await create_account(session, "disp", "dispatcher"),
            "crew": await create_account(session, "crew", "post", post_callsign="P-1"),
        }


@contextlib.asynccontextmanager
async def desk(
    browser: Browser,
    site: LiveSite,
    shot_name: str,
    *,
    locale: str,
    timezone_id: str = "Asia/Tashkent",
    phone: bool = False,
) -> AsyncIterator[Page]:
    """A fresh browser (desk screen or phone) on ``site``; no script error may happen on it."""
    options: dict[str, Any] = {
        "base_url": site.url,
        "locale": locale,
        "timezone_id": timezone_id,
        "viewport": {"width": 390, "height": 844} if phone else {"width": 1440, "height": 900},
    }
    if phone:
        options |= {
            "is_mobile": True,
            "has_touch": True,
            "geolocation": {"latitude": NEAR[0], "longitude": NEAR[1]},
            "permissions": ["geolocation"],
        }
    context: BrowserContext = await browser.new_context(**options)
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    except BaseException:
        with contextlib.suppress(Exception):
            await shot(page, f"{shot_name}-FAILED")
        raise
    finally:
        await context.close()
    assert errors == [], errors


def in_tashkent(moment: datetime) -> datetime:
    """``moment`` (naive means UTC, as the models store it) on Tashkent's clock."""
    return moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(TASHKENT)


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


async def log_in(page: Page, path: str, username: str) -> None:
    await page.goto(path)
    await page.wait_for_url("**/login**")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_url(f"**{path}")


async def assert_speaks(page: Page, language: str, page_name: str) -> None:
    """The page is in ``language``: lang, title and switcher say so, no raw key is shown."""
    await expect(page.locator("html")).to_have_attribute("lang", language)
    await expect(page).to_have_title(text(language, page_name, "page.title"))
    await expect(page.locator("#language-select")).to_have_value(language)
    shown = await page.evaluate("document.body.innerText")
    assert RAW_KEY.findall(shown) == [], f"{page_name} in {language} shows raw keys"


@pytest.mark.parametrize("language", ["uz", "ru", "en"])
async def test_login_console_and_tablet_speak_the_browsers_language(
    site: LiveSite,
    browser: Browser,
    session_factory: async_sessionmaker[AsyncSession],
    language: str,
) -> None:
    await make_people(session_factory)
    async with asyncio.timeout(TEST_BUDGET_S):
        async with desk(
            browser, site, f"lang-console-{language}", locale=LOCALES[language]
        ) as page:
            await page.goto("/console")
            await page.wait_for_url("**/login**")
            await assert_speaks(page, language, "login")
            await expect(page.locator("label[for=username]")).to_have_text(
                text(language, "login", "page.username")
            )
            await shot(page, f"lang-login-{language}")
            await page.fill("#username", "disp")
            await page.fill("#password", "not the password")
            await page.click("#login-submit")
            await expect(page.locator("#login-error")).to_have_text(
                text(language, "login", "login.wrong")
            )
            await page.fill("#password", PASSWORD)
            await page.click("#login-submit")
            await page.wait_for_url("**/console")
            await expect(page.locator("body")).to_have_attribute("data-loaded", "true")
            await assert_speaks(page, language, "console")
            await expect(page.locator(".alert-row").first).to_contain_text(
                text(language, "console", "category.panic")
            )
            await shot(page, f"lang-console-{language}")

        async with desk(
            browser, site, f"lang-tablet-{language}", locale=LOCALES[language], phone=True
        ) as tablet:
            await log_in(tablet, "/tablet", "crew")
            await tablet.locator("body[data-view='idle']").wait_for()
            await assert_speaks(tablet, language, "tablet")
            await expect(tablet.locator("#status-badge")).to_have_text(
                text(language, "tablet", "post-status.off_duty")
            )
            await shot(tablet, f"lang-tablet-{language}")


async def test_times_are_24_hour_tashkent_in_a_new_york_browser(
    site: LiveSite, browser: Browser, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    async with unit_of_work(session_factory) as session:
        chorsu = await create_mahalla(session, name="Chorsu", risk="red")
        device = await create_device(session, lat=CHORSU[0], lon=CHORSU[1], mahalla_id=chorsu.id)
        # Tashkent is UTC+5 and New York UTC-5 or -4: the two clocks never show the same hour.
        opened = (utcnow() - timedelta(minutes=3)).replace(microsecond=0)
        alert = await create_alert(session, device, opened_at=opened)
        await create_post(session, callsign="P-1", lat=NEAR[0], lon=NEAR[1], status="off_duty")
        await create_account(session, "disp", "dispatcher")
        await create_account(session, "crew", "post", post_callsign="P-1")
    expected = in_tashkent(opened)

    async with asyncio.timeout(TEST_BUDGET_S):
        where: dict[str, Any] = {"locale": "en-US", "timezone_id": "America/New_York"}
        async with desk(browser, site, "time-console", **where) as page:
            await log_in(page, "/console", "disp")
            await expect(page.locator("body")).to_have_attribute("data-loaded", "true")
            age = page.locator(f"[data-alert-id='{alert.id}'] .age")
            title = await age.get_attribute("title")
            assert title is not None
            assert expected.strftime("%H:%M:%S") in title, title
            assert not re.search(r"\b(AM|PM)\b", title), title
            await shot(page, "time-console-new-york")

        async with desk(browser, site, "time-tablet", phone=True, **where) as tablet:
            await log_in(tablet, "/tablet", "crew")
            await tablet.locator("body[data-view='idle']").wait_for()
            before = utcnow()
            await tablet.click("#go-available")
            await expect(tablet.locator("#position-line")).to_contain_text(CLOCK)
            after = utcnow()
            line = await tablet.text_content("#position-line") or ""
            [clock] = CLOCK.findall(line)
            allowed = {
                moment.replace(tzinfo=moment.tzinfo or ZoneInfo("UTC"))
                .astimezone(TASHKENT)
                .strftime("%H")
                for moment in (before, after)
            }
            assert clock[:2] in allowed, line
            assert not re.search(r"\b(AM|PM)\b", line), line
            await shot(tablet, "time-tablet-new-york")


async def test_the_language_switch_persists_per_user(
    site: LiveSite, browser: Browser, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    people = await make_people(session_factory)
    async with asyncio.timeout(TEST_BUDGET_S):
        async with desk(browser, site, "switch-first", locale="en-GB") as page:
            await page.goto("/console")
            await page.wait_for_url("**/login**")
            await assert_speaks(page, "en", "login")
            # Before login the switch changes this browser's login page only...
            async with page.expect_navigation():
                await page.select_option("#language-select", "ru")
            await assert_speaks(page, "ru", "login")
            # ...and the choice made there becomes the user's when they log in.
            await page.fill("#username", "disp")
            await page.fill("#password", PASSWORD)
            await page.click("#login-submit")
            await page.wait_for_url("**/console")
            await assert_speaks(page, "ru", "console")
            # Signed in, the switch stores the choice on the user.
            async with page.expect_navigation():
                await page.select_option("#language-select", "uz")
            await assert_speaks(page, "uz", "console")
            await shot(page, "switch-console-uz")

        async with httpx.AsyncClient(base_url=site.url, timeout=10) as client:
            me = (await client.get("/api/v1/auth/me", headers=bearer(people["disp"]))).json()
        assert me["language"] == "uz"

        # Another browser that asks for English: once the user is in, the pages speak Uzbek.
        async with desk(browser, site, "switch-second", locale="en-GB") as page:
            await page.goto("/console")
            await page.wait_for_url("**/login**")
            await assert_speaks(page, "en", "login")
            await page.fill("#username", "disp")
            await page.fill("#password", PASSWORD)
            await page.click("#login-submit")
            await page.wait_for_url("**/console")
            await assert_speaks(page, "uz", "console")

        # The crew's tablet switches too, and keeps it.
        async with desk(browser, site, "switch-tablet", locale="en-GB", phone=True) as tablet:
            await log_in(tablet, "/tablet", "crew")
            await tablet.locator("body[data-view='idle']").wait_for()
            await assert_speaks(tablet, "en", "tablet")
            async with tablet.expect_navigation():
                await tablet.select_option("#language-select", "ru")
            await tablet.locator("body[data-view='idle']").wait_for()
            await assert_speaks(tablet, "ru", "tablet")
            await tablet.reload()
            await assert_speaks(tablet, "ru", "tablet")
            await shot(tablet, "switch-tablet-ru")

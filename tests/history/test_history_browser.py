"""The console's History tab and the printed shift report in a real Chromium against the real app
(``tests/web/conftest.py``'s live site: MQTT ingest on a real Mosquitto, dispatcher, hub).

A dispatcher opens History, narrows it with the filters, pages to older alerts, downloads the
CSV of exactly what the filters show (a Playwright download, read back as Excel would: BOM,
Cyrillic), opens a past alert's full timeline, then opens the shift report from its link (a
new tab, authenticated by the session cookie alone) and prints it to PDF with ``page.pdf()``;
``pdftoppm`` turns the PDF's pages into PNGs under ``test-artifacts/web/`` to be looked at.
An observer's History holds its own mahalla only.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.models import Device
from tests.auth.helpers import PASSWORD
from tests.history.helpers import (
    DISPATCHER_NOTE,
    PANIC_EUI,
    YUNUSOBOD,
    build_archive,
    local,
)
from tests.support.factories import create_alert
from tests.web.conftest import LiveSite

ARTIFACTS: Final = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
NO_TILES: Final = "http://127.0.0.1:9/{z}/{x}/{y}.png"
TIMEOUT_MS: Final = 15_000
TEST_BUDGET_S: Final = 150
# More than one page of the History tab (console/archive.js: PAGE_SIZE 50).
EXTRA_ALERTS: Final = 45


@pytest.fixture
def site_options() -> dict[str, Any]:
    """No map tiles can load (a closed network), which the console must bear."""
    return {"tile_url": NO_TILES}


@contextlib.asynccontextmanager
async def desk(browser: Browser, name: str) -> AsyncIterator[Page]:
    """A desk-sized page; uncaught script errors fail the test, a failure leaves a screenshot."""
    context = await browser.new_context(
        viewport={"width": 1440, "height": 900},
        locale="en-GB",
        timezone_id="Asia/Tashkent",
        accept_downloads=True,
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    except BaseException:
        with contextlib.suppress(Exception):
            await shot(page, f"{name}-FAILED")
        raise
    finally:
        await context.close()
    assert errors == [], errors


async def shot(page: Page, name: str, *, full_page: bool = False) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=full_page)
    return path


async def log_in(page: Page, site: LiveSite, username: str) -> None:
    await page.goto(f"{site.url}/console")
    await page.wait_for_url("**/login**")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_url("**/console")
    await expect(page.locator("body")).to_have_attribute("data-loaded", "true")


async def add_older_alerts(session_factory: async_sessionmaker[AsyncSession]) -> None:
    """Closed panics in the days after the archive: History needs a second page."""
    async with unit_of_work(session_factory) as session:
        device = await session.scalar(select(Device).where(Device.eui == PANIC_EUI))
        assert device is not None
        for n in range(EXTRA_ALERTS):
            opened = local(4, 0, 0) + timedelta(hours=3 * n)
            await create_alert(
                session,
                device,
                state="closed",
                outcome="false_alarm",
                opened_at=opened,
                closed_at=opened + timedelta(minutes=9),
            )


def archive_ids(page: Page) -> Any:
    return page.evaluate(
        "() => [...document.querySelectorAll('#archive-list > li')]"
        ".map((li) => Number(li.dataset.alertId))"
    )


def pdf_to_pngs(pdf: Path, prefix: Path) -> list[Path]:
    """The PDF's pages as PNGs (``pdftoppm`` from poppler-utils), for a person to look at."""
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed: the PDF was not rendered")
    subprocess.run(["pdftoppm", "-png", "-r", "80", str(pdf), str(prefix)], check=True, timeout=60)
    return sorted(prefix.parent.glob(f"{prefix.name}-*.png"))


@pytest.mark.mosquitto
async def test_history_filters_paging_csv_timeline_and_the_printed_shift_report(
    site: LiveSite,
    browser: Browser,
    session_factory: async_sessionmaker[AsyncSession],
    db_url: str,
) -> None:
    archive = await build_archive(session_factory)
    await add_older_alerts(session_factory)
    backend = "postgres" if db_url.startswith("postgresql") else "sqlite"
    name = f"history-{backend}"
    for old in ARTIFACTS.glob(f"{name}*"):
        old.unlink()
    async with asyncio.timeout(TEST_BUDGET_S), desk(browser, name) as page:
        await log_in(page, site, "disp")
        await page.click("#tab-archive")
        await expect(page.locator("#panel-archive")).to_be_visible()
        # The newest 50 of 54 alerts, newest first; "Older alerts" brings the rest.
        await expect(page.locator("#archive-list > li")).to_have_count(50)
        await expect(page.locator("#archive-summary")).to_have_text("50 alerts shown, newest first")
        first_page = await archive_ids(page)
        assert first_page == sorted(first_page, reverse=True)
        assert first_page[0] == archive.ids["A9"] + EXTRA_ALERTS
        await shot(page, f"{name}-1-history")
        await page.click("#archive-older")
        await expect(page.locator("#archive-list > li")).to_have_count(54)
        await expect(page.locator("#archive-older")).to_be_hidden()
        await expect(page.locator("#archive-summary")).to_contain_text("that is all that match")
        everything = await archive_ids(page)
        assert everything[:50] == first_page and len(set(everything)) == 54

        # Filters: the closed real alerts of Chorsu on the day shift of 2 March.
        await page.select_option("#archive-state", "closed")
        await page.select_option("#archive-mahalla", label="Chorsu")
        await page.select_option("#archive-drill", "false")
        await page.fill("#archive-from", "2026-03-02T08:00")
        await page.fill("#archive-to", "2026-03-02T20:00")
        await page.click("#archive-filters button[type=submit]")
        await expect(page.locator("#archive-list > li")).to_have_count(1)
        assert await archive_ids(page) == [archive.ids["A5"]]
        row = page.locator("#archive-list > li").first
        await expect(row).to_contain_text(f"Panic #{archive.ids['A5']}")
        await expect(row).to_contain_text("post P-1")
        await expect(row).to_contain_text("accepted after 40 s")
        # Free text finds the Cyrillic mahalla.
        await page.click("#archive-filters button[type=reset]")
        await expect(page.locator("#archive-list > li")).to_have_count(50)
        await page.fill("#archive-q", "Юнус")
        await page.press("#archive-q", "Enter")
        await expect(page.locator("#archive-list > li")).to_have_count(2)
        await shot(page, f"{name}-2-filtered")

        # The CSV of what is shown.
        async with page.expect_download() as download_info:
            await page.click("#archive-csv")
        download = await download_info.value
        assert download.suggested_filename.startswith("alertnet-alerts-")
        saved = ARTIFACTS / f"{name}.csv"
        await download.save_as(saved)
        content = saved.read_bytes()
        assert content.startswith(b"\xef\xbb\xbf")
        rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"), newline="")))
        assert sorted(int(r["id"]) for r in rows) == sorted((archive.ids["A3"], archive.ids["A6"]))
        assert {r["mahalla"] for r in rows} == {YUNUSOBOD}

        # A past alert opens with its full record: facts, offers, events and audit trail.
        await page.fill("#archive-q", "")
        await page.select_option("#archive-category", "intrusion")
        await page.click("#archive-filters button[type=submit]")
        await expect(page.locator("#archive-list > li")).to_have_count(2)
        await page.click(f'#archive-list > li[data-alert-id="{archive.ids["A2"]}"] button')
        await expect(page.locator("#panel-detail")).to_be_visible()
        detail = page.locator("#detail")
        await expect(detail).to_contain_text(f"Intrusion #{archive.ids['A2']}")
        audit = detail.locator(".audit-row")
        await expect(audit).to_have_count(6)
        await expect(detail).to_contain_text("no post eligible")
        await expect(detail).to_contain_text(DISPATCHER_NOTE)
        await audit.first.scroll_into_view_if_needed()
        await shot(page, f"{name}-3-past-alert")
        # Back in History, the list is as it was left.
        await page.click("#tab-archive")
        await expect(page.locator("#archive-list > li")).to_have_count(2)

        # The shift report of the day shift, from its link, in a new tab.
        await page.fill("#archive-from", "2026-03-02T08:00")
        await page.fill("#archive-to", "2026-03-02T20:00")
        await page.select_option("#archive-category", "")
        await page.click("#archive-filters button[type=submit]")
        await expect(page.locator("#archive-list > li")).to_have_count(7)
        link = page.locator("#archive-report")
        assert await link.get_attribute("target") == "_blank"
        async with page.context.expect_page() as opened:
            await link.click()
        report = await opened.value
        await report.wait_for_load_state()
        await expect(report.locator("h1")).to_have_text("Shift report")
        await expect(report.locator("article.alert")).to_have_count(7)
        await expect(report.locator("article.alert.is-drill")).to_have_count(1)
        await expect(report.locator(".toolbar")).to_be_visible()
        await report.screenshot(path=str(ARTIFACTS / f"{name}-4-report-screen.png"))
        await report.emulate_media(media="print")
        await expect(report.locator(".toolbar")).to_be_hidden()
        pdf = ARTIFACTS / f"{name}-5-report.pdf"
        await report.pdf(path=str(pdf), format="A4", print_background=False)
        assert pdf.read_bytes().startswith(b"%PDF-")
        pages = await asyncio.to_thread(pdf_to_pngs, pdf, ARTIFACTS / f"{name}-5-report-page")
        assert len(pages) >= 2, pages
        assert all(path.stat().st_size > 5000 for path in pages)


@pytest.mark.mosquitto
async def test_an_observers_history_is_its_own_mahalla(
    site: LiveSite,
    browser: Browser,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    archive = await build_archive(session_factory)
    async with asyncio.timeout(TEST_BUDGET_S), desk(browser, "history-observer") as page:
        await log_in(page, site, "obs-bodomzor")
        await page.click("#tab-archive")
        await expect(page.locator("#archive-list > li")).to_have_count(2)
        assert sorted(await archive_ids(page)) == sorted((archive.ids["A2"], archive.ids["A7"]))
        options = await page.locator("#archive-mahalla option").all_inner_texts()
        assert options == ["any mahalla", "Bodomzor"]
        await shot(page, "history-observer")

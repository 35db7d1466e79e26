"""An alarm panel on the dispatch console, in a real Chromium against the real app with its
DC-09 receiver on (``ALERTNET_DC09_LISTEN``): frames sent over TCP become an unknown-code
trouble that rings until acknowledged, and an alarm whose event rows show the panel's code,
zone and area (DESIGN §9.1). Screenshots go to ``test-artifacts/web/``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Final

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import select

from alertnet.db import unit_of_work
from alertnet.models import Alert
from tests.auth.helpers import PASSWORD, create_account
from tests.dc09_pipeline.helpers import (
    SessionFactory,
    answer_kind,
    cid,
    create_panel,
    free_tcp_and_udp_port,
)
from tests.support.factories import create_mahalla
from tests.web.conftest import LiveSite, browser, fast_password_hashing, site

__all__ = ["browser", "fast_password_hashing", "site"]

ARTIFACTS: Final = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"


@pytest.fixture
def dc09_port() -> int:
    return free_tcp_and_udp_port()


@pytest.fixture
def site_options(dc09_port: int) -> dict[str, Any]:
    """Tiles cannot load (no internet here); the receiver listens for panels."""
    return {
        "tile_url": "http://127.0.0.1:9/{z}/{x}/{y}.png",
        "dc09_listen": f"127.0.0.1:{dc09_port}",
    }


async def send(port: int, message: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(message)
        await writer.drain()
        async with asyncio.timeout(10):
            return await reader.readuntil(b"\r")
    finally:
        writer.close()


async def alert_of(session_factory: SessionFactory, category: str) -> Alert:
    async with session_factory() as session:
        alert = await session.scalar(select(Alert).where(Alert.category == category))
    assert alert is not None
    return alert


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_panel_on_the_console(
    session_factory: SessionFactory,
    site: LiveSite,
    browser: Browser,
    dc09_port: int,
    fast_password_hashing: None,
) -> None:
    async with unit_of_work(session_factory) as session:
        chorsu = await create_mahalla(session, name="Chorsu", risk="red")
        await create_panel(session, mahalla_id=chorsu.id, address="Chorsu bazaar, shop 12")
        await create_account(session, "disp", "dispatcher")
    context = await browser.new_context(
        viewport={"width": 1440, "height": 900}, locale="en-GB", timezone_id="Asia/Tashkent"
    )
    context.set_default_timeout(15_000)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        await page.goto(f"{site.url}/console")
        await page.wait_for_url("**/login**")
        await page.fill("#username", "disp")
        await page.fill("#password", PASSWORD)
        await page.click("#login-submit")
        await page.wait_for_url("**/console")
        body = page.locator("body")
        await expect(body).to_have_attribute("data-loaded", "true")
        await expect(body).to_have_attribute("data-alarm", "silent")

        # A code alertnet does not know: ACKed, and a trouble that rings until acknowledged.
        assert answer_kind(await send(dc09_port, cid(1, "1999 01 001"))) == "ACK"
        trouble = await alert_of(session_factory, "trouble")
        row = page.locator(f'#queue-list > li[data-alert-id="{trouble.id}"]')
        await expect(row).to_contain_text("unknown panel code")
        await expect(body).to_have_attribute("data-alarm", "ringing")
        await expect(page.locator("#alarm-bar")).to_contain_text(
            "1 alarm panel sent a code alertnet does not know"
        )
        await page.screenshot(path=str(ARTIFACTS / "console-dc09-unknown-code-rings.png"))
        await page.locator("#ack-all").click()
        await expect(body).to_have_attribute("data-alarm", "silent")

        # A burglary: its event row carries the panel's code, zone and area.
        assert answer_kind(await send(dc09_port, cid(2, "1130 01 015"))) == "ACK"
        intrusion = await alert_of(session_factory, "intrusion")
        row = page.locator(f'#queue-list > li[data-alert-id="{intrusion.id}"]')
        await row.locator("button.row-main").click()
        event = page.locator("#detail .event-row").first
        await expect(event).to_contain_text("intrusion")
        await expect(event.locator(".event-source")).to_have_text("code E130 · zone 015 · area 01")
        await event.scroll_into_view_if_needed()
        await page.screenshot(path=str(ARTIFACTS / "console-dc09-panel-event.png"))
    except BaseException:
        await page.screenshot(path=str(ARTIFACTS / "console-dc09-panel-FAILED.png"))
        raise
    finally:
        await context.close()
    assert errors == []

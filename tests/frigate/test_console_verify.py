"""Confirm and Dismiss on the dispatch console (DESIGN §9.3), in a real Chromium.

alertnet runs with its MQTT ingest and its Frigate adapter on a real Mosquitto; a test client
publishes ``frigate/events`` as Frigate does. A camera alert appears in the queue in
``verify`` with its snapshot link, rings once ALERTNET_VERIFY_TIMEOUT_S passed unanswered,
is silenced by an acknowledgement and rings again when another event merges in. Confirm sends
it to the nearest post; Dismiss cancels another as a false alarm. Screenshots go to
``test-artifacts/web/``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from tests.auth.helpers import create_account
from tests.frigate.support import TOPIC, after, message
from tests.support.factories import create_device, create_mahalla, create_post
from tests.support.mosquitto import MosquittoServer
from tests.web.conftest import LiveSite
from tests.web.console_page import (
    NO_TILES,
    TEST_BUDGET_S,
    Console,
    browser_tab,
    log_in,
    open_alert_of,
    queue_row,
    wait_live,
)

pytestmark = pytest.mark.mosquitto

FRIGATE_URL: Final = "http://nvr.example:5000"
GATE_EUI: Final = "70b3d57ed0009001"
BACK_EUI: Final = "70b3d57ed0009002"


@pytest.fixture
def site_options(mosquitto: MosquittoServer) -> dict[str, Any]:
    return {
        "tile_url": NO_TILES,
        "offer_timeout_s": 600,
        "frigate_mqtt_url": mosquitto.url,
        "frigate_url": FRIGATE_URL,
        "verify_timeout_s": 2,
    }


async def _frigate(mosquitto: MosquittoServer, obj: dict[str, Any]) -> None:
    async with mosquitto.harness_client("frigate") as client:
        await client.publish(TOPIC, message("new", obj), qos=1)


async def test_confirm_and_dismiss_camera_alerts_on_the_console(
    session_factory: async_sessionmaker[AsyncSession],
    site: LiveSite,
    mosquitto: MosquittoServer,
    browser: Browser,
) -> None:
    async with unit_of_work(session_factory) as session:
        chorsu = await create_mahalla(session, name="Chorsu", risk="red")
        for eui, name in ((GATE_EUI, "gate"), (BACK_EUI, "back")):
            await create_device(
                session, eui=eui, kind="camera", camera_name=name, mahalla_id=chorsu.id
            )
        await create_post(session, callsign="P-1")
        dispatcher = await create_account(session, "disp", "dispatcher")
    runtime = site.runtime
    await asyncio.wait_for(runtime.frigate.connected.wait(), 10)
    console = Console(site, mosquitto)

    async with asyncio.timeout(TEST_BUDGET_S), browser_tab(browser, "frigate-verify") as tab:
        page = tab.page
        body = page.locator("body")
        await log_in(tab, console.url, "disp")
        await wait_live(page)

        # A person at the gate: a camera alert waiting in verify, never offered to P-1.
        await _frigate(mosquitto, after("100.1-gate"))
        gate = await open_alert_of(console, dispatcher, GATE_EUI)
        assert (gate["state"], gate["category"]) == ("verify", "camera")
        row = queue_row(page, gate["id"])
        await expect(row).to_contain_text("VERIFY")
        await expect(row).to_contain_text("Camera")
        # Unanswered for ALERTNET_VERIFY_TIMEOUT_S (2 s here), it rings like an escalation.
        await expect(body).to_have_attribute("data-alarm", "ringing")
        await expect(page.locator("#alarm-bar")).to_contain_text("1 camera alert waiting")

        await row.click()
        section = page.locator("#detail section.verify")
        await expect(section).to_have_attribute("data-verify", "overdue")
        link = section.locator("a.snapshot-link")
        await expect(link).to_have_attribute(
            "href", f"{FRIGATE_URL}/api/events/100.1-gate/snapshot.jpg"
        )
        await expect(section).to_contain_text("person")
        await expect(page.locator('#detail [data-key="assign"]')).to_have_count(0)
        await tab.shot("frigate-verify-overdue")

        await section.locator('[data-key="verify-confirm"]').click()
        await expect(page.locator("#action-status")).to_contain_text("confirmed")
        await expect(row).to_have_attribute("data-state", "offered")
        await expect(row).to_contain_text("offered to P-1")
        await expect(body).to_have_attribute("data-alarm", "silent")
        confirmed = await console.api("GET", f"/api/v1/alerts/{gate['id']}", dispatcher)
        assert (confirmed["category"], confirmed["priority"]) == ("camera", 80)

        # Someone at the back: it rings; an acknowledgement silences it; a second person
        # merged into it rings again.
        await _frigate(mosquitto, after("200.1-back", "back"))
        back = await open_alert_of(console, dispatcher, BACK_EUI)
        back_row = queue_row(page, back["id"])
        await expect(body).to_have_attribute("data-alarm", "ringing")
        await page.locator("#ack-all").click()
        await expect(body).to_have_attribute("data-alarm", "silent")
        await _frigate(mosquitto, after("200.2-back", "back"))
        await expect(back_row).to_contain_text("2")
        await expect(body).to_have_attribute("data-alarm", "ringing")

        await back_row.click()
        section = page.locator("#detail section.verify")
        await expect(section.locator("a.snapshot-link")).to_have_count(2)
        await tab.shot("frigate-verify-two-events")
        await section.locator('[data-key="verify-dismiss"]').click()
        await expect(page.locator("#action-status")).to_contain_text("false alarm")
        await expect(back_row).to_have_count(0)
        await expect(body).to_have_attribute("data-alarm", "silent")
        dismissed = await console.api("GET", f"/api/v1/alerts/{back['id']}", dispatcher)
        assert (dismissed["state"], dismissed["outcome"]) == ("cancelled", "false_alarm")
        await tab.shot("frigate-verify-answered")

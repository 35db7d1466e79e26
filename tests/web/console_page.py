"""The dispatch console driven like a dispatcher: the test city, a browser tab, logging in.

Shared by the console's browser tests (``tests/web/test_console.py``, the sound, drill and
camera-verify tests): one place that knows how the page is opened and what the city holds.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import httpx
from playwright.async_api import Browser, BrowserContext, Locator, Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.models import Alert, Device, utcnow
from alertnet.protocol import EventCode, Uplink, up_topic
from tests.auth.helpers import PASSWORD, Account, bearer, create_account
from tests.support.factories import create_alert, create_device, create_mahalla, create_post
from tests.support.mosquitto import MosquittoServer
from tests.support.polling import eventually
from tests.web.conftest import LiveSite

ARTIFACTS: Final = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
# Nothing listens there: tiles fail at once, as they do on a machine without internet.
NO_TILES: Final = "http://127.0.0.1:9/{z}/{x}/{y}.png"
TIMEOUT_MS: Final = 15_000
# A browser test that is stuck fails after this, whatever it waits for.
TEST_BUDGET_S: Final = 120

# Chorsu (red) has a panic button and a dead alarm; Bodomzor (green), 2 km north, an
# intrusion alarm. P-1 stands between them; P-2 is 15 km away, beyond the 10 km of DESIGN §4.
PANIC_EUI: Final = "70b3d57ed0007001"
INTRUSION_EUI: Final = "70b3d57ed0007002"
DEAD_EUI: Final = "70b3d57ed0007003"
PANIC_KEY: Final = bytes(range(16))
INTRUSION_KEY: Final = bytes(range(16, 32))
CHORSU: Final = (41.3111, 69.2797)
BODOMZOR: Final = (41.3291, 69.2797)
P1_AT: Final = (41.3161, 69.2797)
P2_AT: Final = (41.4500, 69.2797)


@dataclass
class Console:
    """The live site with what the console tests do to it: presses and API checks."""

    site: LiveSite
    broker: MosquittoServer

    @property
    def url(self) -> str:
        return self.site.url

    async def press(
        self, eui: str, key: bytes, counter: int, event: EventCode, *, flags: int = 0
    ) -> None:
        """A device logs in and publishes a signed uplink over MQTT, as the firmware does."""
        frame = Uplink.build(key, eui, counter, event, flags=flags, battery=87).to_bytes()
        async with self.broker.device_client(eui, key) as client:
            await client.publish(up_topic(eui), frame, qos=1)

    async def api(self, method: str, path: str, who: Account, **kwargs: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as client:
            response = await client.request(method, path, headers=bearer(who), **kwargs)
        assert response.status_code == 200, response.text
        return response.json()


@dataclass
class Tab:
    """A desk-sized page with the uncaught script errors it raised (there must be none)."""

    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)

    async def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


@asynccontextmanager
async def browser_tab(
    browser: Browser, name: str, *, width: int = 1440, height: int = 900
) -> AsyncIterator[Tab]:
    """A fresh context (a desk screen by default); a failure inside leaves ``<name>-FAILED.png``."""
    context = await browser.new_context(
        viewport={"width": width, "height": height}, locale="en-GB", timezone_id="Asia/Tashkent"
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    tab = Tab(context, page)
    page.on("pageerror", lambda error: tab.errors.append(str(error)))
    try:
        yield tab
    except BaseException:
        with contextlib.suppress(Exception):
            await tab.shot(f"{name}-FAILED")
        raise
    finally:
        await context.close()
    assert tab.errors == [], f"script errors on the page: {tab.errors}"


async def log_in(tab: Tab, base_url: str, username: str, path: str = "/console") -> None:
    """Open ``path``, get sent to /login, log in there and come back."""
    page = tab.page
    await page.goto(f"{base_url}{path}")
    await page.wait_for_url("**/login**")
    await page.fill("#username", username)
    await page.fill("#password", PASSWORD)
    await page.click("#login-submit")
    await page.wait_for_url(f"**{path}")


async def wait_live(page: Page) -> None:
    await expect(page.locator("body")).to_have_attribute("data-stream", "live")
    await expect(page.locator("body")).to_have_attribute("data-loaded", "true")


# Every control has a name a screen reader can say: a label, aria-label or its own text.
UNNAMED_CONTROLS_JS: Final = """() =>
    [...document.querySelectorAll("button, select, textarea, input")]
    .filter((el) => el.offsetParent !== null || el.getClientRects().length > 0)
    .filter((el) => {
        const named = el.getAttribute("aria-label") || (el.labels && el.labels.length)
            || (el.tagName === "BUTTON" && el.textContent.trim());
        return !named;
    })
    .map((el) => el.outerHTML.slice(0, 120))"""


def queue_row(page: Page, alert_id: int) -> Locator:
    return page.locator(f'#queue-list > li[data-alert-id="{alert_id}"]')


def alert_pin(page: Page, alert_id: int) -> Locator:
    return page.locator(f'.leaflet-marker-pane .pin[data-alert-id="{alert_id}"]')


# --- the city ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class City:
    dispatcher: Account
    p1: Account
    p2: Account
    observer: Account  # of Bodomzor
    chorsu: int
    bodomzor: int
    trouble_alert: int


async def build_city(session_factory: async_sessionmaker[AsyncSession]) -> City:
    now = utcnow()
    async with unit_of_work(session_factory) as session:
        chorsu = await create_mahalla(
            session, name="Chorsu", risk="red", lat=CHORSU[0], lon=CHORSU[1]
        )
        bodomzor = await create_mahalla(
            session, name="Bodomzor", risk="green", lat=BODOMZOR[0], lon=BODOMZOR[1]
        )
        await create_device(
            session,
            eui=PANIC_EUI,
            key=PANIC_KEY,
            lat=CHORSU[0],
            lon=CHORSU[1],
            mahalla_id=chorsu.id,
            address="Chorsu bazaar, gate 3",
        )
        await create_device(
            session,
            eui=INTRUSION_EUI,
            key=INTRUSION_KEY,
            kind="intrusion_alarm",
            site="business",
            lat=BODOMZOR[0],
            lon=BODOMZOR[1],
            mahalla_id=bodomzor.id,
            address="Bodomzor 12, pharmacy",
        )
        dead = await create_device(
            session,
            eui=DEAD_EUI,
            lat=CHORSU[0] - 0.006,
            lon=CHORSU[1] - 0.01,
            mahalla_id=chorsu.id,
            status="offline",
            battery=12,
            last_seen_at=now - timedelta(hours=3),
            address="Chorsu metro exit",
        )
        trouble = await create_alert(
            session,
            dead,
            category="trouble",
            trouble="offline,low_battery",
            priority=20,
            opened_at=now - timedelta(hours=2),
        )
        await create_post(session, callsign="P-1", lat=P1_AT[0], lon=P1_AT[1])
        await create_post(session, callsign="P-2", lat=P2_AT[0], lon=P2_AT[1])
        return City(
            dispatcher=await create_account(session, "disp", "dispatcher"),
            p1=await create_account(session, "crew1", "post", post_callsign="P-1"),
            p2=await create_account(session, "crew2", "post", post_callsign="P-2"),
            observer=await create_account(
                session, "obs-bodomzor", "observer", mahalla_name="Bodomzor"
            ),
            chorsu=chorsu.id,
            bodomzor=bodomzor.id,
            trouble_alert=trouble.id,
        )


async def alert_state_of(session_factory: async_sessionmaker[AsyncSession], eui: str) -> str | None:
    """The state of the alert of device ``eui``, from the database (the HTTP side may be down)."""
    async with session_factory() as session:
        return await session.scalar(
            select(Alert.state).join(Device, Device.id == Alert.device_id).where(Device.eui == eui)
        )


async def open_alert_of(console: Console, who: Account, eui: str) -> dict[str, Any]:
    alerts = await eventually(
        lambda: console.api("GET", "/api/v1/alerts", who),
        lambda body: any(alert["device_eui"] == eui for alert in body),
        awaiting=f"an alert of {eui} in {who.username}'s list",
    )
    return next(alert for alert in alerts if alert["device_eui"] == eui)


# --- browser tests ----------------------------------------------------------------------------

"""The mobile post's tablet app in real Chromium, against a live alertnet and a real Mosquitto.

A signed press published over MQTT must reach the nearest post's tablet as a full-screen offer;
the crew accepts, arrives and closes it from the page, and the API shows the alert closed with
the outcome. A server outage shows the OFFLINE banner; once the server is back, the page
reconnects by itself with ``?after=`` and shows the offer that was made meanwhile.

Screenshots of each step are kept under ``test-artifacts/web/``.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx
import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.models import Offer, OfferState
from alertnet.protocol import FLAG_DRILL, EventCode, Uplink, up_topic
from tests.auth.helpers import PASSWORD, Account, bearer, create_account
from tests.support.factories import create_device, create_mahalla, create_post
from tests.support.mosquitto import MosquittoServer
from tests.support.polling import eventually
from tests.web.conftest import LiveSite, Phone, PhoneFactory

pytestmark = pytest.mark.mosquitto

KEY = bytes(range(16))
EUI = "70b3d57ed0007777"
ADDRESS = "Chorsu bazaar, gate 3 (Navoi street 12)"
DEVICE_AT = (41.3111, 69.2797)
NEAR = (41.3161, 69.2797)  # ~556 m north of the device
FAR = (41.3211, 69.2797)  # ~1.1 km north
RED = "rgb(163, 0, 0)"  # common.css --stop: the red risk class
TEST_BUDGET_S = 120
OFFER_WAIT_MS = 20_000


@dataclass(frozen=True)
class City:
    dispatcher: Account
    crew1: Account  # post P-1, near the device
    crew2: Account  # post P-2, farther away


async def build_city(session_factory: async_sessionmaker[AsyncSession]) -> City:
    """A red mahalla with one panic button and two off-duty posts north of it."""
    async with unit_of_work(session_factory) as session:
        chorsu = await create_mahalla(session, name="Chorsu", risk="red")
        await create_device(
            session,
            eui=EUI,
            key=KEY,
            kind="panic_button",
            lat=DEVICE_AT[0],
            lon=DEVICE_AT[1],
            mahalla_id=chorsu.id,
            address=ADDRESS,
        )
        await create_post(session, callsign="P-1", lat=NEAR[0], lon=NEAR[1], status="off_duty")
        await create_post(session, callsign="P-2", lat=FAR[0], lon=FAR[1], status="off_duty")
        return City(
            dispatcher=await create_account(session, "disp", "dispatcher"),
            crew1=await create_account(session, "crew1", "post", post_callsign="P-1"),
            crew2=await create_account(session, "crew2", "post", post_callsign="P-2"),
        )


async def press(
    mosquitto: MosquittoServer, counter: int, event: EventCode = EventCode.PANIC, flags: int = 0
) -> None:
    """The button logs in and publishes one signed uplink, as the firmware does (QoS 1)."""
    frame = Uplink.build(KEY, EUI, counter, event, flags=flags).to_bytes()
    async with mosquitto.device_client(EUI, KEY) as button:
        await button.publish(up_topic(EUI), frame, qos=1)


class Api:
    """The HTTP API of ``site`` as another client sees it (a dispatcher, the other crew)."""

    def __init__(self, site: LiveSite) -> None:
        self._client = httpx.AsyncClient(base_url=site.url, timeout=10)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._client.aclose()

    async def get(self, path: str, who: Account) -> Any:
        response = await self._client.get(path, headers=bearer(who))
        assert response.status_code == 200, response.text
        return response.json()

    async def post(self, path: str, who: Account, body: dict[str, Any] | None = None) -> Any:
        response = await self._client.post(path, json=body, headers=bearer(who))
        assert response.status_code == 200, response.text
        return response.json()

    async def on_duty(self, crew: Account, at: tuple[float, float]) -> None:
        await self.post("/api/v1/posts/me/status", crew, {"status": "available"})
        await self.post("/api/v1/posts/me/location", crew, {"lat": at[0], "lon": at[1]})


def countdown_s(text: str | None) -> int:
    assert text is not None and re.fullmatch(r"\d+:\d\d", text), text
    minutes, seconds = text.split(":")
    return int(minutes) * 60 + int(seconds)


async def offer_time_s(page: Page) -> int:
    """The seconds the offer's countdown shows."""
    return countdown_s(await page.text_content("#offer-time"))


async def go_available(phone: Phone) -> None:
    """Tap "Go available" and wait until the first position report has gone out."""
    page = phone.page
    await page.click("#go-available")
    await expect(page.locator("#status-badge")).to_have_text("Available")
    await expect(page.locator("#position-line")).to_contain_text("Position sent")


async def stream_info(phone: Phone) -> dict[str, Any]:
    info: dict[str, Any] = await phone.page.evaluate(
        """() => {
            const stream = window.alertnetTablet.stream;
            return {online: stream.online, lastSeq: stream.lastSeq, lastUrl: stream.lastUrl,
                    connects: stream.connects, recent: stream.recent};
        }"""
    )
    return info


async def test_press_over_mqtt_reaches_the_nearest_tablet_and_the_crew_closes_it(
    site: LiveSite,
    phones: PhoneFactory,
    mosquitto: MosquittoServer,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with asyncio.timeout(TEST_BUDGET_S), Api(site) as api:
        city = await build_city(session_factory)
        await api.on_duty(city.crew2, FAR)  # the farther crew is on duty too

        async with phones(geolocation=NEAR) as phone:
            page = phone.page
            await page.goto("/tablet")
            await page.wait_for_url(re.compile(r"/login\?next=%2Ftablet$"))
            await page.fill("#username", "crew1")
            await page.fill("#password", "not the password")
            await page.click("#login-submit")
            await expect(page.locator("#login-error")).to_have_text("Wrong username or password.")
            await phone.shot("1-login-refused")
            await phone.login("crew1")
            await expect(page.locator("#callsign")).to_have_text("P-1")
            await expect(page.locator("#status-badge")).to_have_text("Off duty")

            await go_available(phone)
            posts = await eventually(
                lambda: api.get("/api/v1/posts", city.dispatcher),
                lambda posts: any(
                    p["callsign"] == "P-1" and p["status"] == "available" for p in posts
                ),
                awaiting="P-1 available in the dispatcher's list",
            )
            p1 = next(p for p in posts if p["callsign"] == "P-1")
            assert (p1["lat"], p1["lon"]) == pytest.approx(NEAR)
            await phone.shot("2-available")

            await press(mosquitto, counter=1)
            offer = page.locator("#offer")
            await expect(offer).to_be_visible(timeout=OFFER_WAIT_MS)
            await expect(page.locator("#offer-title")).to_have_text("Panic button")
            await expect(page.locator("#offer-address")).to_have_text(ADDRESS)
            await expect(page.locator("#offer-kind")).to_have_text("panic button")
            await expect(page.locator("#offer-mahalla")).to_have_text("Chorsu")
            risk = page.locator("#offer-risk .risk")
            await expect(risk).to_have_text("RED risk")
            await expect(risk).to_have_css("background-color", RED)
            await expect(page.locator("#offer-distance")).to_have_text(re.compile(r"^5\d\d m$"))
            await expect(page.locator("#offer-drill")).to_be_hidden()
            await expect(page.locator("#offer-cancel")).to_be_hidden()
            await expect(page.locator("body")).to_have_attribute("data-alarm", "on")
            first = await offer_time_s(page)
            second = await eventually(
                lambda: offer_time_s(page),
                lambda left_s: left_s != first,
                awaiting="the offer's countdown to tick",
                timeout_s=1.6,
            )
            assert 0 < second < first <= 30
            await phone.shot("3-offer")

            # The nearest post got it, not the other one.
            assert (await api.get("/api/v1/posts/me", city.crew2))["offer"] is None

            await page.click("#accept")
            await expect(page.locator("#view-alert")).to_be_visible()
            await expect(offer).to_be_hidden()
            await expect(page.locator("#alert-state")).to_have_text("Accepted — on the way")
            await expect(page.locator("body")).to_have_attribute("data-alarm", "off")
            await expect(page.locator("#status-badge")).to_have_text("Busy")
            await expect(page.locator("#nav-geo")).to_have_attribute(
                "href", "geo:41.311100,69.279700?q=41.311100,69.279700"
            )
            await expect(page.locator("#nav-map")).to_have_attribute(
                "href",
                "https://www.openstreetmap.org/?mlat=41.311100&mlon=69.279700"
                "#map=17/41.311100/69.279700",
            )
            alert_id = int(await page.get_attribute("#view-alert", "data-alert-id") or 0)
            await phone.shot("4-accepted")

            await page.click("#arrived")
            await expect(page.locator("#alert-state")).to_have_text("On scene")
            await expect(page.locator("#arrived")).to_be_hidden()
            await phone.shot("5-on-scene")

            await page.click("#close-open")
            await page.click("#close-confirm")
            await expect(page.locator("#close-error")).to_have_text("Choose the outcome.")
            await page.check("input[name='outcome'][value='confirmed']")
            await page.fill("#close-note", "Fight at the gate; two people detained.")
            await phone.shot("6-close-form")
            await page.click("#close-confirm")
            await expect(page.locator("#toast")).to_contain_text(
                "Alert closed: confirmed emergency"
            )
            await expect(page.locator("body")).to_have_attribute("data-view", "idle")
            await expect(page.locator("#status-badge")).to_have_text("Available")
            await phone.shot("7-closed")
            assert phone.errors == []

        alert = await api.get(f"/api/v1/alerts/{alert_id}", city.dispatcher)
        assert alert["state"] == "closed"
        assert alert["outcome"] == "confirmed"
        assert alert["note"] == "Fight at the gate; two people detained."
        assert alert["post"] is None or alert["post"] == "P-1"
        assert [row["to"] for row in alert["audit"]] == [
            "new",
            "offered",
            "accepted",
            "on_scene",
            "closed",
        ]
        assert {row["actor"] for row in alert["audit"][2:]} == {"crew1"}
        assert [offer["post"] for offer in alert["offers"]] == ["P-1"]
        assert alert["events"][0]["receptions"][0]["transport"] == "mqtt"


@pytest.mark.parametrize("site_options", [{"offer_timeout_s": 90}])
async def test_outage_shows_offline_and_the_page_catches_up_when_the_server_returns(
    site: LiveSite,
    phones: PhoneFactory,
    mosquitto: MosquittoServer,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with asyncio.timeout(TEST_BUDGET_S), Api(site) as api:
        city = await build_city(session_factory)
        async with phones(geolocation=NEAR) as phone:
            page = phone.page
            await phone.login("crew1")
            await go_available(phone)
            await expect(page.locator("body")).to_have_attribute("data-link", "online")

            await site.stop()  # every connection is cut; presses keep being dispatched
            await expect(page.locator("#offline-banner")).to_be_visible(timeout=5_000)
            await expect(page.locator("body")).to_have_attribute("data-link", "offline")
            await expect(page.locator("#link-state")).to_have_text("Offline")
            cut_at = (await stream_info(phone))["lastSeq"]
            assert isinstance(cut_at, int) and cut_at > 0

            await press(mosquitto, counter=1)

            async def pending_offer() -> int | None:
                async with session_factory() as session:
                    return await session.scalar(
                        select(Offer.id).where(
                            Offer.post_id == city.crew1.post_id,
                            Offer.state == OfferState.PENDING,
                        )
                    )

            offer_id = await eventually(
                pending_offer, awaiting="P-1's offer made while the page is offline"
            )
            await expect(page.locator("#offer")).to_be_hidden()
            await phone.shot("1-offline")

            await site.start()
            await expect(page.locator("#offer")).to_be_visible(timeout=OFFER_WAIT_MS)
            await expect(page.locator("#offline-banner")).to_be_hidden()
            await expect(page.locator("body")).to_have_attribute("data-link", "online")
            await expect(page.locator("#offer")).to_have_attribute("data-offer-id", str(offer_id))
            await expect(page.locator("#offer-address")).to_have_text(ADDRESS)
            info = await stream_info(phone)
            # It resumed where it was cut off, and the stream replayed the offer it missed.
            assert info["connects"] >= 2
            assert info["lastUrl"].endswith(f"/api/v1/stream?after={cut_at}")
            assert any(
                m["type"] == "offer.created" and m["seq"] > cut_at for m in info["recent"]
            ), info["recent"]
            await phone.shot("2-recovered-offer")

            # A dispatcher takes the offer back: the screen clears with a message.
            await api.post(f"/api/v1/offers/{offer_id}/withdraw", city.dispatcher)
            await expect(page.locator("#offer")).to_be_hidden()
            await expect(page.locator("#toast")).to_have_text("Offer withdrawn by disp.")
            await expect(page.locator("body")).to_have_attribute("data-alarm", "off")
            await phone.shot("3-withdrawn")
            assert phone.errors == []


async def test_a_drill_with_a_cancel_press_waits_for_a_post_and_is_declined_with_a_reason(
    site: LiveSite,
    phones: PhoneFactory,
    mosquitto: MosquittoServer,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with asyncio.timeout(TEST_BUDGET_S), Api(site) as api:
        city = await build_city(session_factory)
        async with phones(geolocation=NEAR) as phone:
            page = phone.page
            await phone.login("crew1")

            # Nobody is on duty: the drill press waits in the console's queue, then a cancel.
            await press(mosquitto, counter=1, flags=FLAG_DRILL)
            await eventually(
                lambda: api.get("/api/v1/alerts", city.dispatcher),
                lambda alerts: bool(alerts) and alerts[0]["state"] == "escalated",
                awaiting="the drill escalated with nobody on duty",
            )
            await press(mosquitto, counter=2, event=EventCode.CANCEL, flags=FLAG_DRILL)
            alerts = await eventually(
                lambda: api.get("/api/v1/alerts", city.dispatcher),
                lambda alerts: alerts[0]["cancel_count"] == 1,
                awaiting="the cancel press counted on the alert",
            )
            alert_id = alerts[0]["id"]

            # Going available makes this post eligible: the waiting alert is offered at once.
            await page.click("#go-available")
            await expect(page.locator("#offer")).to_be_visible(timeout=OFFER_WAIT_MS)
            await expect(page.locator("#offer")).to_have_class(re.compile(r"\bis-drill\b"))
            await expect(page.locator("#offer-drill")).to_be_visible()
            await expect(page.locator("#offer-title")).to_have_text("DRILL: Panic button")
            await expect(page.locator("#offer-cancel")).to_be_visible()
            await expect(page.locator("#offer-cancel")).to_contain_text("CANCEL was pressed once")
            await phone.shot("1-drill-offer")

            await page.click("#decline-open")
            await page.click("#decline-confirm")
            await expect(page.locator("#decline-error")).to_have_text("Choose a reason.")
            await page.check("input[name='reason'][value='vehicle or equipment problem']")
            await phone.shot("2-decline-reasons")
            await page.click("#decline-confirm")
            await expect(page.locator("#offer")).to_be_hidden()
            await expect(page.locator("#toast")).to_contain_text("Declined")
            await phone.shot("3-declined")
            assert phone.errors == []

        alert = await api.get(f"/api/v1/alerts/{alert_id}", city.dispatcher)
        assert alert["drill"] is True
        [offer] = alert["offers"]
        assert offer["post"] == "P-1" and offer["state"] == "declined"
        assert "vehicle or equipment problem" in offer["reason"]


@pytest.mark.parametrize("site_options", [{"offer_timeout_s": 6}])
async def test_an_unanswered_offer_counts_down_and_clears_when_it_expires(
    site: LiveSite,
    phones: PhoneFactory,
    mosquitto: MosquittoServer,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with asyncio.timeout(TEST_BUDGET_S), Api(site) as api:
        city = await build_city(session_factory)
        async with phones(geolocation=NEAR) as phone:
            page = phone.page
            await phone.login("crew1")
            await go_available(phone)
            await press(mosquitto, counter=1)
            await expect(page.locator("#offer")).to_be_visible(timeout=OFFER_WAIT_MS)
            await expect(page.locator("#offer-countdown")).to_have_attribute(
                "data-urgency", "urgent"
            )
            offer_id = await page.get_attribute("#offer", "data-offer-id")
            await phone.shot("1-urgent")
            await expect(page.locator("#offer")).to_be_hidden(timeout=15_000)
            await expect(page.locator("#toast")).to_contain_text("expired")
            await expect(page.locator("body")).to_have_attribute("data-alarm", "off")
            await phone.shot("2-expired")
            assert phone.errors == []

        alerts = await api.get("/api/v1/alerts", city.dispatcher)
        offers = (await api.get(f"/api/v1/alerts/{alerts[0]['id']}", city.dispatcher))["offers"]
        assert [(str(o["id"]), o["state"]) for o in offers] == [(offer_id, "expired")]


async def test_a_blocked_location_is_shown_and_logging_out_goes_off_duty(
    site: LiveSite,
    phones: PhoneFactory,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with asyncio.timeout(TEST_BUDGET_S), Api(site) as api:
        city = await build_city(session_factory)
        async with phones(geolocation=None) as phone:
            page = phone.page
            await phone.login("crew1")
            await page.click("#go-available")
            message = page.locator("#geo-message")
            await expect(message).to_be_visible()
            await expect(message).to_have_attribute("data-kind", "denied")
            await expect(message).to_contain_text("LOCATION BLOCKED")
            await expect(page.locator("#geo-retry")).to_be_visible()
            await phone.shot("1-location-blocked")

            await page.click("#logout")
            await page.wait_for_url(re.compile(r"/login\?next=%2Ftablet$"))
            me = await api.get("/api/v1/posts/me", city.crew1)
            assert me["post"]["status"] == "off_duty"
            # The session is gone: the tablet sends the crew back to the login page.
            await page.goto("/tablet")
            await page.wait_for_url(re.compile(r"/login\?next=%2Ftablet$"))

            # A next= pointing at another site is ignored: a post lands on its tablet.
            await page.goto("/login?next=//evil.example/")
            await page.fill("#username", "crew1")
            await page.fill("#password", PASSWORD)
            await page.click("#login-submit")
            await page.wait_for_url(f"{site.url}/tablet")
            assert phone.errors == []

"""Sound and the dispatcher's view of fair dispatch (issue 15), in real Chromium against a live
alertnet: the tablet's "tap to turn sound on" prompt and its sound indicator, with the offer's
tone repeating until answered; the console's quieter drill tone that never sounds the
escalation alarm; the assign drawer saying why each post is or is not eligible (the server's
own verdicts), the map's line from an alert to its post with labels kept off the pins, and the
statistics table fitting a 1280 px screen.

Presses go in over HTTP (``POST /api/v1/uplinks``), signed as a device signs them.
Screenshots land in ``test-artifacts/web/``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

import httpx
import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.models import utcnow
from alertnet.protocol import FLAG_DRILL, EventCode, Uplink
from tests.auth.helpers import Account, bearer, create_account
from tests.support.factories import (
    create_alert,
    create_device,
    create_mahalla,
    create_offer,
    create_post,
)
from tests.support.polling import eventually
from tests.web.conftest import LiveSite, PhoneFactory, wait_until_true
from tests.web.console_page import NO_TILES, Tab, browser_tab, log_in, wait_live

pytestmark = pytest.mark.mosquitto

TEST_BUDGET_S: Final = 120
KEY: Final = bytes(range(16))
DRILL_KEY: Final = bytes(range(32, 48))
EUI: Final = "70b3d57ed000a001"
DRILL_EUI: Final = "70b3d57ed000a002"
HERE: Final = (41.3111, 69.2797)
NEAR: Final = (41.3156, 69.2797)  # 500 m north


@pytest.fixture
def site_options() -> dict[str, Any]:
    """No map tiles (as without internet); offers wait long enough to be looked at."""
    return {"tile_url": NO_TILES, "offer_timeout_s": 600}


async def press(site: LiveSite, eui: str, key: bytes, counter: int, *, drill: bool = False) -> None:
    frame = Uplink.build(
        key, eui, counter, EventCode.PANIC, flags=FLAG_DRILL if drill else 0
    ).to_bytes()
    async with httpx.AsyncClient(base_url=site.url, timeout=10) as client:
        response = await client.post(
            "/api/v1/uplinks",
            content=frame,
            headers={"content-type": "application/octet-stream"},
        )
    assert response.status_code == 200, response.text


async def api(site: LiveSite, method: str, path: str, who: Account, **kwargs: Any) -> Any:
    async with httpx.AsyncClient(base_url=site.url, timeout=10) as client:
        response = await client.request(method, path, headers=bearer(who), **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


async def tones(page: Page, path: str) -> dict[str, Any]:
    """What the page's tone player did: how many tones it played, and the last one."""
    played: dict[str, Any] = await page.evaluate(
        f"() => {{ const p = {path}; "
        "return {plays: p.plays, last: p.last, running: p.running}; }"
    )
    return played


# --- the tablet ---------------------------------------------------------------------------------


async def test_a_silent_tablet_asks_for_sound_and_the_offer_rings_until_answered(
    site: LiveSite, phones: PhoneFactory, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    async with asyncio.timeout(TEST_BUDGET_S):
        async with unit_of_work(session_factory) as session:
            await create_device(session, eui=EUI, key=KEY, lat=HERE[0], lon=HERE[1])
            await create_post(session, callsign="P-1", lat=NEAR[0], lon=NEAR[1], status="off_duty")
            crew = await create_account(session, "crew1", "post", post_callsign="P-1")

        async with phones(geolocation=NEAR) as phone:
            page = phone.page
            await phone.login("crew1")
            # On duty from another device's tap: this page has had no tap, so no sound yet.
            await api(site, "POST", "/api/v1/posts/me/status", crew, json={"status": "available"})
            await api(
                site,
                "POST",
                "/api/v1/posts/me/location",
                crew,
                json={"lat": NEAR[0], "lon": NEAR[1]},
            )
            indicator = page.locator("#sound-state")
            await expect(indicator).to_have_attribute("data-sound", "off")
            await expect(indicator).to_have_text("Sound off")
            prompt = page.locator("#sound-prompt")
            await expect(prompt).to_be_hidden()  # nothing rings: nothing to ask for

            await press(site, EUI, KEY, 1)
            await expect(page.locator("#offer")).to_be_visible(timeout=20_000)
            await expect(page.locator("body")).to_have_attribute("data-alarm", "on")
            await expect(prompt).to_be_visible()
            await expect(prompt).to_contain_text("Tap here to turn sound on")
            box = await prompt.bounding_box()
            viewport = page.viewport_size
            assert box is not None and viewport is not None
            assert box["width"] >= viewport["width"] - 20  # full width (inside the border)
            # The offer rings (its repeats are counted) but no tone can play yet.
            await eventually(
                lambda: page.evaluate("() => window.alertnetTablet.state.rings"),
                lambda rings: rings >= 2,
                awaiting="the offer to ring again",
            )
            assert (await tones(page, "window.alertnetTablet.alarm.tones"))["plays"] == 0
            await phone.shot("1-sound-prompt")

            await prompt.click()
            await expect(prompt).to_be_hidden()
            await expect(indicator).to_have_attribute("data-sound", "on")
            await expect(indicator).to_have_text("Sound on")
            # The tone sounds at once, then again until the offer is answered.
            played = await eventually(
                lambda: tones(page, "window.alertnetTablet.alarm.tones"),
                lambda played: played["plays"] >= 2,
                awaiting="the offer tone to repeat",
            )
            assert played["running"] and played["last"]["peakGain"] >= 0.3
            await phone.shot("2-sound-on")

            await page.click("#accept")
            await expect(page.locator("#view-alert")).to_be_visible()
            await expect(page.locator("body")).to_have_attribute("data-alarm", "off")
            assert await page.evaluate("() => window.alertnetTablet.alarm.timer") is None
            await expect(prompt).to_be_hidden()
            await expect(indicator).to_have_text("Sound on")
            await phone.shot("3-answered")
            assert phone.errors == []


# --- the console ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Desk:
    dispatcher: Account
    alert_id: int
    drill_id: int


async def build_desk(session_factory: async_sessionmaker[AsyncSession]) -> Desk:
    """A real panic on offer and posts in every situation the drawer explains.

    OFFERED (nearest) has the panic on offer; DRILLER holds a drill (eligible: it gives way);
    DECLINER declined the panic a minute ago; SLEEPY let an offer of it expire; STALE has an
    old position; FARAWAY is 15 km off; HOME is off duty.
    """
    now = utcnow()

    def north(metres: float) -> dict[str, float]:
        return {"lat": HERE[0] + metres / 111_200, "lon": HERE[1]}

    async with unit_of_work(session_factory) as session:
        chorsu = await create_mahalla(session, name="Chorsu", risk="red", lat=HERE[0], lon=HERE[1])
        device = await create_device(
            session,
            eui=EUI,
            key=KEY,
            mahalla_id=chorsu.id,
            address="Chorsu bazaar, gate 3",
            **north(0),
        )
        drill_device = await create_device(session, eui=DRILL_EUI, key=DRILL_KEY, **north(2_500))
        posts = {
            "OFFERED": await create_post(session, "OFFERED", **north(300)),
            "DRILLER": await create_post(session, "DRILLER", status="busy", **north(900)),
            "DECLINER": await create_post(session, "DECLINER", **north(-600)),
            "SLEEPY": await create_post(session, "SLEEPY", **north(-1_200)),
            "STALE": await create_post(
                session, "STALE", location_at=now - timedelta(minutes=20), **north(1_500)
            ),
            "FARAWAY": await create_post(session, "FARAWAY", **north(15_000)),
            "HOME": await create_post(session, "HOME", status="off_duty", **north(200)),
        }
        alert = await create_alert(
            session, device, category="panic", state="offered", last_counter=1, opened_at=now
        )
        await create_offer(session, alert, posts["OFFERED"], offered_at=now, timeout_s=3_600)
        await create_offer(
            session,
            alert,
            posts["DECLINER"],
            state="declined",
            offered_at=now - timedelta(seconds=90),
            decided_at=now - timedelta(seconds=60),
        )
        await create_offer(
            session,
            alert,
            posts["SLEEPY"],
            state="expired",
            offered_at=now - timedelta(seconds=60),
            decided_at=now - timedelta(seconds=30),
        )
        drill = await create_alert(
            session,
            drill_device,
            category="panic",
            state="accepted",
            drill=True,
            post_id=posts["DRILLER"].id,
        )
        return Desk(
            dispatcher=await create_account(session, "disp", "dispatcher"),
            alert_id=alert.id,
            drill_id=drill.id,
        )


async def test_the_assign_drawer_says_why_each_post_is_or_is_not_eligible(
    site: LiveSite, browser: Browser, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    async with asyncio.timeout(TEST_BUDGET_S):
        desk = await build_desk(session_factory)
        async with browser_tab(browser, "console-eligibility-drawer-FAILED") as tab:
            page = tab.page
            await log_in(tab, site.url, "disp")
            await wait_live(page)
            await page.locator(
                f'#queue-list > li[data-alert-id="{desk.alert_id}"] button.row-main'
            ).click()
            await page.get_by_role("button", name="Assign to a post…").click()
            drawer = page.locator("#detail-drawer")
            rows = drawer.locator(".candidate")
            await expect(rows).to_have_count(6)  # every post on duty

            def row(callsign: str) -> Any:
                return drawer.locator(".candidate", has_text=callsign)

            # Eligible first (nearest first), from the server's own verdicts.
            await expect(rows.nth(0)).to_contain_text("DRILLER")
            await expect(rows.nth(0)).to_have_attribute("data-reason", "holds_drill")
            await expect(rows.nth(0)).to_contain_text(
                f"eligible: its drill (alert #{desk.drill_id}) gives way to a real alert"
            )
            await expect(row("OFFERED")).to_contain_text("already offered this alert")
            await expect(row("DECLINER")).to_have_attribute("data-reason", "decline_pause")
            await expect(row("DECLINER")).to_contain_text(
                "declined this alert: not asked again until"
            )
            await expect(row("SLEEPY")).to_have_attribute("data-reason", "expiry_pause")
            await expect(row("SLEEPY")).to_contain_text("offer expire: not asked again until")
            await expect(row("STALE")).to_contain_text("position stale (last at")
            await expect(row("FARAWAY")).to_contain_text("too far: beyond 10 km")
            off_duty = drawer.locator(".off-duty-posts")
            await expect(off_duty.locator("summary")).to_have_text("Off duty: 1")
            await off_duty.locator("summary").click()
            await expect(off_duty.locator('li[data-reason="off_duty"]')).to_contain_text("HOME")

            # The times the drawer names are the pauses' ends, in the configured zone.
            verdicts = await api(
                site, "GET", f"/api/v1/alerts/{desk.alert_id}/eligibility", desk.dispatcher
            )
            decliner = next(v for v in verdicts if v["callsign"] == "DECLINER")
            until = await page.evaluate(
                """(iso) => new Intl.DateTimeFormat("en-GB", {hour: "2-digit", minute: "2-digit",
                    second: "2-digit", hourCycle: "h23", timeZone: "Asia/Tashkent"})
                    .format(new Date(iso))""",
                decliner["until"],
            )
            await expect(row("DECLINER")).to_contain_text(until)
            await tab.shot("console-eligibility-drawer-page")
            await drawer.screenshot(path=str(_artifact("console-eligibility-drawer")))

            # The map: a dashed line from the alert to the post it is offered to, under the
            # pins; post and mahalla labels stack below every alert pin.
            link = page.locator(f'path.alert-link.link-offered[data-alert-id="{desk.alert_id}"]')
            await expect(link).to_have_count(1)
            held = page.locator(f'path.alert-link.link-held[data-alert-id="{desk.drill_id}"]')
            await expect(held).to_have_count(1)
            stacking = await page.evaluate(
                """() => {
                    const z = (el) => Number(getComputedStyle(el).zIndex);
                    const all = (kind) => [...document.querySelectorAll(
                        `.leaflet-marker-pane .${kind}`)].map(z);
                    return {pins: all("alert-marker"), posts: all("post-marker"),
                            names: all("mahalla-marker")};
                }"""
            )
            assert stacking["pins"] and stacking["posts"] and stacking["names"], stacking
            assert min(stacking["pins"]) > max(stacking["posts"]) > max(stacking["names"])
            await page.evaluate(
                "([lat, lon]) => window.alertnetConsole.map.map.setView([lat, lon], 15)",
                [HERE[0] + 0.004, HERE[1]],
            )
            # A line drawn between the two (Playwright calls a vertical line "hidden": no width).
            drawn = await link.evaluate("(path) => path.getBoundingClientRect().height")
            assert drawn > 10, drawn
            await page.locator(".map-panel").screenshot(path=str(_artifact("console-map-links")))


async def test_a_drill_rings_a_quiet_tone_never_the_escalation_alarm(
    site: LiveSite, browser: Browser, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    async with asyncio.timeout(TEST_BUDGET_S):
        async with unit_of_work(session_factory) as session:
            await create_device(session, eui=DRILL_EUI, key=DRILL_KEY, lat=HERE[0], lon=HERE[1])
            await create_device(session, eui=EUI, key=KEY, lat=HERE[0], lon=HERE[1] + 0.01)
            await create_account(session, "disp", "dispatcher")
        async with browser_tab(browser, "console-drill-tone") as tab:
            page = tab.page
            await log_in(tab, site.url, "disp")
            await wait_live(page)
            await page.locator("h1").click()  # a dispatcher's first click: sound may play
            body = page.locator("body")

            await press(site, DRILL_EUI, DRILL_KEY, 1, drill=True)  # no post: it escalates
            await expect(body).to_have_attribute("data-alarm", "drill")
            bar = page.locator("#alarm-bar")
            await expect(bar).to_have_class("alarm-bar drill-only")
            await expect(bar).to_contain_text("1 escalated drill waiting (training, quiet tone)")
            sound = page.locator("#sound-enable")
            if await sound.is_visible():
                await sound.click()
            await wait_until_true(page, "Number(document.body.dataset.drillBeeps || 0) >= 1")
            drill_tone = await tones(page, "window.alertnetConsole.alarm.tones")
            assert drill_tone["last"]["name"] == "drill"
            assert await page.evaluate("() => document.body.dataset.beeps") is None
            await tab.shot("console-drill-tone")

            await press(site, EUI, KEY, 1)  # a real panic, no post either: the alarm
            await expect(body).to_have_attribute("data-alarm", "ringing")
            await expect(bar).to_have_class("alarm-bar")
            await expect(bar).to_contain_text("1 escalated alert waiting")
            await wait_until_true(page, "Number(document.body.dataset.beeps || 0) >= 1")
            alarm_tone = await tones(page, "window.alertnetConsole.alarm.tones")
            assert alarm_tone["last"]["name"] == "alarm"
            # Distinct (another pitch and wave) and quieter.
            assert drill_tone["last"]["frequencies"] != alarm_tone["last"]["frequencies"]
            assert drill_tone["last"]["type"] != alarm_tone["last"]["type"]
            assert drill_tone["last"]["peakGain"] * 3 <= alarm_tone["last"]["peakGain"]
            await tab.shot("console-real-alarm-over-drill")


async def test_the_statistics_table_fits_a_1280_px_screen(
    site: LiveSite, browser: Browser, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    now = utcnow()
    async with unit_of_work(session_factory) as session:
        for index, name in enumerate(("Shayxontohur-Kukcha darvoza", "Mirobod", "Bodomzor")):
            mahalla = await create_mahalla(session, name=name)
            device = await create_device(session, mahalla_id=mahalla.id)
            for minutes in (3, 17, 95):
                opened = now - timedelta(hours=1 + index, minutes=minutes)
                await create_alert(
                    session,
                    device,
                    state="closed",
                    opened_at=opened,
                    first_offered_at=opened + timedelta(seconds=4),
                    accepted_at=opened + timedelta(seconds=21 + minutes),
                    on_scene_at=opened + timedelta(minutes=9 + minutes),
                    closed_at=opened + timedelta(minutes=48 + minutes),
                    outcome="confirmed",
                    last_counter=minutes,
                )
        await create_account(session, "disp", "dispatcher")
    async with (
        asyncio.timeout(TEST_BUDGET_S),
        browser_tab(browser, "console-stats-1280", width=1280, height=800) as tab,
    ):
        page = tab.page
        await log_in(tab, site.url, "disp")
        await wait_live(page)
        await page.click("#tab-stats")
        table = page.locator("#stats-table")
        await expect(table.locator("tbody tr")).to_have_count(6)
        await expect(table.locator("td.figures").first).to_contain_text("/")
        fits = await page.evaluate(
            """() => {
                const wrap = document.querySelector("#stats-table").closest(".table-wrap");
                const table = document.querySelector("#stats-table");
                return {wrap: wrap.clientWidth, table: table.scrollWidth,
                        scrolls: wrap.scrollWidth > wrap.clientWidth};
            }"""
        )
        assert not fits["scrolls"] and fits["table"] <= fits["wrap"], fits
        await tab.page.locator("#panel-stats").screenshot(path=str(_artifact("console-stats-1280")))


def _artifact(name: str) -> Any:
    from tests.web.conftest import ARTIFACTS

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"{name}.png"


__all__ = ["Tab"]

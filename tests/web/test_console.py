"""The dispatch console (/console) in a real Chromium against the real app, and its read API.

Browser tests use the ``browser`` and ``site`` fixtures of ``tests/web/conftest.py`` (alertnet
with its MQTT ingest on a real Mosquitto, dispatcher and realtime hub, served by uvicorn on a
free port, the HTTP side restartable alone), log in through /login and drive the page like a
dispatcher: signed presses published over MQTT appear in the queue and on the map, an
escalated alert rises to the top and rings until acknowledged, the dispatcher assigns it and
the post's tablet gets the offer, cancels one with a reason (audited with the dispatcher's
name). An observer sees only its mahalla and no action. The HTTP listener is restarted under a live
page (the runtime keeps ingesting) to show the page reconnects, says so, and catches up.

The map's tile server is pointed at a closed port, as on a machine without internet: the
markers must still be drawn. Screenshots go to ``test-artifacts/web/`` (git-ignored).

Chromium is ``/usr/bin/chromium`` (nothing is downloaded): missing, the browser tests are
skipped locally and FAIL with ``CI=true`` (the conftest's policy).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.models import utcnow
from alertnet.protocol import FLAG_DRILL, EventCode
from tests.auth.helpers import bearer
from tests.support.asgi import AppClient
from tests.support.factories import create_alert, create_device
from tests.support.mosquitto import MosquittoServer
from tests.support.polling import eventually
from tests.web.conftest import LiveSite, wait_until_true
from tests.web.console_page import (
    DEAD_EUI,
    INTRUSION_EUI,
    INTRUSION_KEY,
    NO_TILES,
    PANIC_EUI,
    PANIC_KEY,
    TEST_BUDGET_S,
    TIMEOUT_MS,
    UNNAMED_CONTROLS_JS,
    Console,
    alert_pin,
    alert_state_of,
    browser_tab,
    build_city,
    log_in,
    open_alert_of,
    queue_row,
    wait_live,
)

# --- the browser and the server (fixtures of tests/web/conftest.py) -----------------------


@pytest.fixture
def site_options() -> dict[str, Any]:
    """The map's tiles cannot load; offers wait long enough for a test to look at them."""
    return {"tile_url": NO_TILES, "offer_timeout_s": 600}


@pytest_asyncio.fixture
async def console(site: LiveSite, mosquitto: MosquittoServer) -> Console:
    return Console(site, mosquitto)


@pytest.mark.mosquitto
async def test_dispatcher_sees_presses_escalation_and_assigns(
    session_factory: async_sessionmaker[AsyncSession],
    console: Console,
    browser: Browser,
) -> None:
    city = await build_city(session_factory)
    async with asyncio.timeout(TEST_BUDGET_S), browser_tab(browser, "console-dispatcher") as tab:
        page = tab.page
        await log_in(tab, console.url, "disp")
        await wait_live(page)
        await expect(page.locator("#whoami-name")).to_have_text("disp")
        # The device trouble raised before the page opened is in the queue, at the bottom.
        await expect(queue_row(page, city.trouble_alert)).to_contain_text("offline, low battery")
        # No tiles here: the map says so and draws on its plain background all the same.
        await expect(page.locator("#map")).to_have_attribute("data-tiles", "unavailable")
        await expect(page.locator("#map-note")).to_be_visible()

        # A press over MQTT: in the queue and on the map, offered to the nearest post P-1.
        await console.press(PANIC_EUI, PANIC_KEY, 1, EventCode.PANIC)
        panic = await open_alert_of(console, city.dispatcher, PANIC_EUI)
        row = queue_row(page, panic["id"])
        await expect(row).to_contain_text("Panic")
        await expect(row).to_contain_text("Chorsu")
        await expect(row).to_contain_text("red risk", ignore_case=True)
        await expect(row).to_contain_text("offered to P-1")
        await expect(row.locator(".countdown")).to_contain_text("left to answer")
        await expect(alert_pin(page, panic["id"])).to_be_visible()
        await expect(page.locator("#queue-list > li").first).to_have_attribute(
            "data-alert-id", str(panic["id"])
        )

        # The alarm nobody can serve (P-1 holds an offer, P-2 is too far) escalates and goes
        # to the top, above the higher-priority panic, and rings until acknowledged.
        await console.press(INTRUSION_EUI, INTRUSION_KEY, 1, EventCode.INTRUSION)
        intrusion = await open_alert_of(console, city.dispatcher, INTRUSION_EUI)
        assert intrusion["priority"] < panic["priority"]
        escalated = queue_row(page, intrusion["id"])
        await expect(escalated).to_have_attribute("data-state", "escalated")
        await expect(page.locator("#queue-list > li").first).to_have_attribute(
            "data-alert-id", str(intrusion["id"])
        )
        await expect(escalated).to_contain_text("ESCALATED")
        await expect(escalated).to_have_class(
            "alert-row cat-intrusion state-escalated unacknowledged"
        )
        await expect(alert_pin(page, intrusion["id"])).to_be_visible()
        body = page.locator("body")
        await expect(body).to_have_attribute("data-alarm", "ringing")
        await expect(page.locator("#alarm-bar")).to_contain_text("1 escalated alert waiting")
        # Browsers play sound only after a user gesture: until the dispatcher has clicked
        # into the page, the alarm bar offers a button that turns the sound on.
        sound_button = page.locator("#sound-enable")
        if await sound_button.is_visible():
            await sound_button.click()
        await wait_until_true(page, "Number(document.body.dataset.beeps || 0) >= 2", TIMEOUT_MS)
        await expect(sound_button).to_be_hidden()
        await tab.shot("console-escalated-on-top")

        # Keyboard only: the row's Acknowledge button silences the alarm.
        await escalated.locator("button.ack").focus()
        await page.keyboard.press("Enter")
        await expect(body).to_have_attribute("data-alarm", "silent")
        await expect(page.locator("#alarm-bar")).to_be_hidden()

        # Detail of the escalated alert, then assign it to P-2 from the nearest-first list.
        await escalated.locator("button.row-main").click()
        detail = page.locator("#detail")
        await expect(detail.locator(".detail-title")).to_contain_text(f"#{intrusion['id']}")
        await expect(detail).to_contain_text("Bodomzor 12, pharmacy")
        await expect(detail).to_contain_text(INTRUSION_EUI)
        await expect(detail.locator(".escalated-banner")).to_be_visible()
        await expect(detail.locator(".audit-row").last).to_contain_text("New → ESCALATED")
        await detail.get_by_role("button", name="Assign to a post…").click()
        candidates = page.locator("#detail-drawer .candidate")
        await expect(candidates).to_have_count(2)
        await expect(candidates.nth(0)).to_contain_text("P-1")
        await expect(candidates.nth(1)).to_contain_text("P-2")
        await expect(candidates.nth(1)).to_contain_text("km")
        await expect(candidates.nth(1)).to_contain_text("beyond 10 km")
        await expect(candidates.nth(0)).to_contain_text(f"has an offer for alert #{panic['id']}")
        assert await page.evaluate(UNNAMED_CONTROLS_JS) == []
        await tab.shot("console-assign-candidates")
        await page.get_by_role("button", name=f"Assign alert #{intrusion['id']} to P-2").click()
        await expect(page.locator("#action-status")).to_contain_text("offered to P-2")

        # The post's tablet receives the offer: over its API and on the tablet page.
        me = await eventually(
            lambda: console.api("GET", "/api/v1/posts/me", city.p2),
            lambda body: body["offer"] is not None,
            awaiting="P-2's tablet to get the offer",
        )
        assert me["offer"]["alert_id"] == intrusion["id"] and me["offer"]["state"] == "pending"
        await expect(escalated).to_have_attribute("data-state", "offered")
        await expect(escalated).to_contain_text("offered to P-2")
        await expect(detail.locator(".audit-row").last).to_contain_text("disp")
        await expect(detail.locator(".audit-row").last).to_contain_text("P-2")
        async with browser_tab(browser, "tablet", width=800, height=1100) as tablet:
            await log_in(tablet, console.url, "crew2", path="/tablet")
            offer_card = tablet.page.locator("#offer")
            await expect(offer_card).to_be_visible()
            await expect(offer_card).to_have_attribute("data-offer-id", str(me["offer"]["id"]))
            await tablet.shot("tablet-received-offer")

        # Cancel the panic with a reason: it leaves the queue, the audit names the dispatcher.
        await queue_row(page, panic["id"]).locator("button.row-main").click()
        await expect(detail.locator(".detail-title")).to_contain_text(f"#{panic['id']}")
        await detail.get_by_role("button", name="Cancel alert…").click()
        await page.get_by_label("Reason for cancelling").fill("caller phoned: child pressed it")
        await page.get_by_role("button", name=f"Cancel alert #{panic['id']}").click()
        await expect(queue_row(page, panic["id"])).to_have_count(0)
        await expect(alert_pin(page, panic["id"])).to_have_count(0)
        last_audit = detail.locator(".audit-row").last
        await expect(last_audit).to_contain_text("disp")
        await expect(last_audit).to_contain_text("caller phoned: child pressed it")
        await expect(detail.locator(".detail-title")).to_contain_text("Cancelled")
        await expect(detail.locator(".offer-row").first).to_contain_text("withdrawn")
        assert await page.evaluate(UNNAMED_CONTROLS_JS) == []
        await tab.shot("console-cancelled-detail")

        # Withdraw P-2's offer: P-1 is free again and nearest, so the alarm goes to P-1.
        await escalated.locator("button.row-main").click()
        await detail.get_by_role("button", name="Withdraw the offer to P-2").click()
        await expect(escalated).to_contain_text("offered to P-1")
        p2_now = await console.api("GET", "/api/v1/posts/me", city.p2)
        assert p2_now["offer"] is None

        # The posts, with status and how old their position is.
        await page.get_by_role("tab", name="Posts").click()
        posts = page.locator("#posts-table tbody tr")
        await expect(posts).to_have_count(2)
        await expect(posts.nth(0)).to_contain_text("P-1")
        await expect(posts.nth(0)).to_contain_text(f"alert #{intrusion['id']}")
        await expect(posts.nth(1)).to_contain_text("available")
        await expect(posts.nth(1)).to_contain_text("old")

        # Device health, filtered by mahalla; devices on the map on demand.
        await page.get_by_role("tab", name="Device health").click()
        devices = page.locator("#devices-table tbody tr")
        await expect(devices).to_have_count(1)
        await expect(devices.first).to_contain_text(DEAD_EUI)
        await expect(devices.first).to_contain_text("offline")
        await expect(devices.first).to_contain_text("low battery")
        await tab.shot("console-device-health")
        await page.get_by_label("Devices to list").select_option("all")
        await expect(devices).to_have_count(3)
        await (
            page.get_by_role("tabpanel", name="Device health")
            .get_by_label("Mahalla")
            .select_option(str(city.bodomzor))
        )
        await expect(devices).to_have_count(1)
        await expect(devices.first).to_contain_text(INTRUSION_EUI)
        await page.get_by_label("Show devices").check()
        await expect(page.locator("path.device-marker")).to_have_count(3)

        # Statistics: handling-time chart per mahalla, counts by category and outcome.
        await page.get_by_role("tab", name="Statistics").click()
        await expect(page.locator("#stats-chart svg")).to_be_visible()
        await page.get_by_label("Stage").select_option("to_offer_s")
        await expect(page.locator("#stats-chart svg .bar-p50")).to_have_count(4)
        await expect(page.locator("#stats-chart svg")).to_contain_text("p95")
        await expect(page.locator("#stats-table tbody")).to_contain_text("Chorsu")
        counts = page.locator("#stats-counts")
        await expect(counts).to_contain_text("Today")
        await expect(counts.locator("caption", has_text="By outcome, Today")).to_be_visible()
        await expect(counts).to_contain_text("cancelled")
        await tab.shot("console-statistics")


@pytest.mark.mosquitto
async def test_observer_sees_only_their_mahalla_without_actions(
    session_factory: async_sessionmaker[AsyncSession],
    console: Console,
    browser: Browser,
) -> None:
    city = await build_city(session_factory)
    async with asyncio.timeout(TEST_BUDGET_S), browser_tab(browser, "console-observer") as tab:
        await console.press(PANIC_EUI, PANIC_KEY, 1, EventCode.PANIC)
        panic = await open_alert_of(console, city.dispatcher, PANIC_EUI)
        page = tab.page
        await log_in(tab, console.url, "obs-bodomzor")
        await wait_live(page)
        await expect(page.locator("#whoami-role")).to_contain_text("read-only")

        # A press in the observer's mahalla arrives live; the Chorsu panic never shows.
        await console.press(INTRUSION_EUI, INTRUSION_KEY, 1, EventCode.INTRUSION)
        intrusion = await open_alert_of(console, city.dispatcher, INTRUSION_EUI)
        row = queue_row(page, intrusion["id"])
        await expect(row).to_contain_text("Bodomzor")
        await expect(alert_pin(page, intrusion["id"])).to_be_visible()
        await expect(page.locator("#queue-list > li")).to_have_count(1)
        await expect(page.locator(".leaflet-marker-pane .pin")).to_have_count(1)
        assert await queue_row(page, panic["id"]).count() == 0
        assert await queue_row(page, city.trouble_alert).count() == 0

        # Read-only: the detail has no action, nothing rings, posts are not theirs to see.
        # (The alert is opened from its map marker, with the keyboard.)
        await alert_pin(page, intrusion["id"]).locator("xpath=..").focus()
        await page.keyboard.press("Enter")
        await expect(page.locator("#detail .detail-title")).to_contain_text(f"#{intrusion['id']}")
        await expect(page.locator("#detail .audit-row").first).to_be_visible()
        assert await page.locator("button.action").count() == 0
        assert await page.locator("#detail .actions").count() == 0
        await expect(page.locator("body")).to_have_attribute("data-alarm", "silent")
        await expect(page.locator("#tab-posts")).to_be_hidden()

        await page.get_by_role("tab", name="Device health").click()
        await page.get_by_label("Devices to list").select_option("all")
        devices = page.locator("#devices-table tbody tr")
        await expect(devices).to_have_count(1)
        await expect(devices.first).to_contain_text(INTRUSION_EUI)
        await page.get_by_role("tab", name="Statistics").click()
        await expect(page.locator("#stats-table tbody")).to_contain_text("Bodomzor")
        await expect(page.locator("#stats-table tbody")).not_to_contain_text("Chorsu")
        await page.get_by_role("tab", name="Alert").click()
        await tab.shot("console-observer-read-only")

        # The server refuses an observer's action even if a page tried one.
        async with httpx.AsyncClient(base_url=console.url) as client:
            refused = await client.post(
                f"/api/v1/alerts/{intrusion['id']}/cancel",
                json={"reason": "not mine to cancel"},
                headers=bearer(city.observer),
            )
        assert refused.status_code == 403


@pytest.mark.mosquitto
async def test_console_survives_a_stream_reconnect_and_says_so(
    session_factory: async_sessionmaker[AsyncSession],
    console: Console,
    browser: Browser,
) -> None:
    city = await build_city(session_factory)
    async with asyncio.timeout(TEST_BUDGET_S), browser_tab(browser, "console-reconnect") as tab:
        page = tab.page
        await log_in(tab, console.url, "disp")
        await wait_live(page)
        body = page.locator("body")
        await expect(body).to_have_attribute("data-reconnects", "0")

        # The HTTP listener goes away (a restart, a proxy dropping connections); ingest goes on.
        await console.site.stop()
        await expect(body).to_have_attribute("data-stream", "reconnecting")
        await expect(page.locator("#stream-state")).to_contain_text("Reconnecting")
        await expect(page.locator("#connection-banner")).to_be_visible()
        await expect(page.locator("#connection-banner")).to_contain_text("interrupted")
        # Meanwhile a button is pressed and dispatched: the page cannot hear it yet.
        await console.press(PANIC_EUI, PANIC_KEY, 1, EventCode.PANIC)
        await eventually(
            lambda: alert_state_of(session_factory, PANIC_EUI),
            lambda state: state == "offered",
            awaiting="the press dispatched while the listener is down",
        )
        assert await page.locator("#queue-list > li.cat-panic").count() == 0
        await tab.shot("console-reconnecting")

        # The listener is back: the page reconnects with ?after= and catches up on the press.
        await console.site.start()
        await expect(body).to_have_attribute("data-stream", "live", timeout=30_000)
        await expect(body).to_have_attribute("data-reconnects", "1")
        await expect(page.locator("#connection-banner")).to_be_hidden()
        await expect(page.locator("#stream-state")).to_contain_text("caught up")
        panic = await open_alert_of(console, city.dispatcher, PANIC_EUI)
        await expect(queue_row(page, panic["id"])).to_contain_text("offered to P-1")
        await expect(alert_pin(page, panic["id"])).to_be_visible()

        # And it keeps working live after the reconnect: a drill, then a cancel press on it.
        await console.press(INTRUSION_EUI, INTRUSION_KEY, 1, EventCode.INTRUSION, flags=FLAG_DRILL)
        intrusion = await open_alert_of(console, city.dispatcher, INTRUSION_EUI)
        drill = queue_row(page, intrusion["id"])
        await expect(drill).to_have_attribute("data-state", "escalated")
        await expect(drill).to_contain_text("DRILL")
        await console.press(INTRUSION_EUI, INTRUSION_KEY, 2, EventCode.CANCEL)
        await expect(drill).to_contain_text("cancel pressed")
        await drill.locator("button.row-main").click()
        detail = page.locator("#detail")
        await expect(detail.locator(".drill-banner")).to_contain_text("DRILL")
        await expect(detail.locator(".cancel-banner")).to_contain_text("never stops a dispatch")
        await expect(detail.locator(".event-cancel")).to_contain_text("CANCEL pressed")
        await expect(detail.locator(".event-row")).to_have_count(2)
        await tab.shot("console-reconnected")


# --- the console's read API (no browser) --------------------------------------------------


async def test_device_health_lists_troubles_in_the_callers_scope(
    api: AppClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    city = await build_city(session_factory)
    async with unit_of_work(session_factory) as session:
        tampered = await create_device(session, mahalla_id=city.bodomzor, battery=90)
        await create_alert(session, tampered, category="tamper")
    dispatcher, observer = bearer(city.dispatcher), bearer(city.observer)

    troubled = (await api.get("/api/v1/devices?trouble=true", headers=dispatcher)).json()
    assert [(d["eui"], d["troubles"]) for d in troubled] == [
        (tampered.eui, ["tamper"]),
        (DEAD_EUI, ["offline", "low_battery"]),
    ]
    assert troubled[1]["trouble_alert_ids"] == [city.trouble_alert]
    assert troubled[1]["mahalla"] == "Chorsu" and troubled[1]["risk"] == "red"
    everything = (await api.get("/api/v1/devices", headers=dispatcher)).json()
    assert len(everything) == 4 and everything[-1]["troubles"] == []
    offline = (await api.get("/api/v1/devices?status=offline", headers=dispatcher)).json()
    assert [d["eui"] for d in offline] == [DEAD_EUI]
    chorsu = await api.get(f"/api/v1/devices?mahalla_id={city.chorsu}", headers=dispatcher)
    assert {d["eui"] for d in chorsu.json()} == {PANIC_EUI, DEAD_EUI}

    # An observer sees its own mahalla, asked for or not, and nothing else; a post nothing.
    own = (await api.get("/api/v1/devices", headers=observer)).json()
    assert {d["eui"] for d in own} == {INTRUSION_EUI, tampered.eui}
    foreign = await api.get(f"/api/v1/devices?mahalla_id={city.chorsu}", headers=observer)
    assert foreign.status_code == 403
    assert (await api.get("/api/v1/devices", headers=bearer(city.p1))).status_code == 403
    assert (await api.get("/api/v1/devices")).status_code == 401
    bad = await api.get("/api/v1/devices?status=broken", headers=dispatcher)
    assert bad.status_code == 422

    mahallas = (await api.get("/api/v1/mahallas", headers=dispatcher)).json()
    assert [(m["name"], m["risk"]) for m in mahallas] == [("Bodomzor", "green"), ("Chorsu", "red")]
    assert [m["name"] for m in (await api.get("/api/v1/mahallas", headers=observer)).json()] == [
        "Bodomzor"
    ]


async def test_counts_by_category_and_outcome_leave_drills_out(
    api: AppClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    city = await build_city(session_factory)
    now = utcnow()
    async with unit_of_work(session_factory) as session:
        in_chorsu = await create_device(session, mahalla_id=city.chorsu)
        in_bodomzor = await create_device(session, mahalla_id=city.bodomzor)
        await create_alert(session, in_chorsu, state="closed", outcome="false_alarm", closed_at=now)
        await create_alert(session, in_chorsu, category="fire", state="cancelled", closed_at=now)
        await create_alert(session, in_bodomzor, category="medical", state="offered")
        await create_alert(session, in_bodomzor, state="closed", outcome="confirmed", drill=True)
        await create_alert(
            session,
            in_bodomzor,
            state="closed",
            outcome="confirmed",
            opened_at=now - timedelta(days=3),
        )
    dispatcher = bearer(city.dispatcher)

    today = (await api.get("/api/v1/stats/counts?days=1", headers=dispatcher)).json()
    # The trouble alert of the city (opened two hours ago) counts as a trouble, still open.
    assert today["total"] == 4 and today["drills"] == 1
    assert today["by_category"] == {
        "panic": 1,
        "intrusion": 0,
        "fire": 1,
        "medical": 1,
        "tamper": 0,
        "camera": 0,
        "trouble": 1,
    }
    assert today["by_outcome"] == {"open": 2, "cancelled": 1, "false_alarm": 1}
    week = (await api.get("/api/v1/stats/counts?days=7", headers=dispatcher)).json()
    assert week["total"] == 5 and week["by_outcome"]["confirmed"] == 1

    observed = (await api.get("/api/v1/stats/counts?days=7", headers=bearer(city.observer))).json()
    assert observed["total"] == 2 and observed["by_category"]["medical"] == 1
    assert observed["drills"] == 1
    foreign = await api.get(
        f"/api/v1/stats/counts?mahalla_id={city.chorsu}", headers=bearer(city.observer)
    )
    assert foreign.status_code == 403
    posts = await api.get("/api/v1/stats/counts", headers=bearer(city.p1))
    assert posts.status_code == 403

"""Notes, acknowledgement and the action plan on two dispatchers' consoles at once (DESIGN §10),
in a real Chromium against the live app (``site`` and ``browser`` of ``tests/web/conftest.py``).

Two browser contexts are two dispatchers at two desks: a note written on one appears on the
other without a reload — while the other is halfway through a note of its own, which must
survive — an acknowledgement on one silences the escalation alarm on both, and a step ticked
on one shows as done, with who and when, on the other. The mahalla team's console shows none
of it. Screenshots go to ``test-artifacts/web/``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Page, expect

from tests.auth.helpers import PASSWORD
from tests.web.conftest import LiveSite
from tests.workflow.helpers import SessionFactory, create_city, new_alert

ARTIFACTS: Final = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
TIMEOUT_MS: Final = 15_000
TEST_BUDGET_S: Final = 120

# Every visible control has a name a screen reader can say (as in tests/web/test_console.py).
UNNAMED_CONTROLS_JS: Final = """() =>
    [...document.querySelectorAll("button, select, textarea, input")]
    .filter((el) => el.offsetParent !== null || el.getClientRects().length > 0)
    .filter((el) => {
        const named = el.getAttribute("aria-label") || (el.labels && el.labels.length)
            || (el.tagName === "BUTTON" && el.textContent.trim());
        return !named;
    })
    .map((el) => el.outerHTML.slice(0, 120))"""


@dataclass
class Desk:
    """One dispatcher's browser context, with the script errors its page raised."""

    context: BrowserContext
    page: Page
    name: str
    errors: list[str] = field(default_factory=list)

    async def shot(self, step: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(ARTIFACTS / f"{self.name}-{step}.png"))

    async def log_in(self, base_url: str, username: str) -> None:
        page = self.page
        await page.goto(f"{base_url}/console")
        await page.wait_for_url("**/login**")
        await page.fill("#username", username)
        await page.fill("#password", PASSWORD)
        await page.click("#login-submit")
        await page.wait_for_url("**/console")
        await expect(page.locator("body")).to_have_attribute("data-stream", "live")
        await expect(page.locator("body")).to_have_attribute("data-loaded", "true")

    async def open_alert(self, alert_id: int) -> Locator:
        row = self.page.locator(f'#queue-list > li[data-alert-id="{alert_id}"]')
        await row.locator("button.row-main").click()
        detail = self.page.locator("#detail")
        await expect(detail.locator(".detail-title")).to_contain_text(f"#{alert_id}")
        return detail


@asynccontextmanager
async def desk(browser: Browser, name: str) -> AsyncIterator[Desk]:
    context = await browser.new_context(
        viewport={"width": 1440, "height": 1000}, locale="en-GB", timezone_id="Asia/Tashkent"
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    opened = Desk(context, page, name)
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    try:
        yield opened
    except BaseException:
        with contextlib.suppress(Exception):
            await opened.shot("FAILED")
        raise
    finally:
        await context.close()
    assert opened.errors == [], f"script errors on {name}: {opened.errors}"


@pytest.mark.mosquitto
async def test_two_dispatchers_share_notes_acknowledgement_and_plan_ticks(
    session_factory: SessionFactory, site: LiveSite, browser: Browser
) -> None:
    city = await create_city(session_factory)
    alert_id = await new_alert(session_factory, city, category="panic")
    async with (
        asyncio.timeout(TEST_BUDGET_S),
        desk(browser, "workflow-dispatcher-a") as a,
        desk(browser, "workflow-dispatcher-b") as b,
    ):
        await a.log_in(site.url, "disp-a")
        await b.log_in(site.url, "disp-b")
        # The escalated alert rings on both desks until someone acknowledges it.
        for dispatcher in (a, b):
            await expect(dispatcher.page.locator("body")).to_have_attribute("data-alarm", "ringing")
        detail_a = await a.open_alert(alert_id)
        detail_b = await b.open_alert(alert_id)
        for detail in (detail_a, detail_b):
            await expect(detail.locator(".acknowledgement")).to_contain_text("Not acknowledged")
            steps = detail.locator(".plan-step")
            await expect(steps).to_have_count(3)
            await expect(steps.nth(0)).to_contain_text("Call the site")
            await expect(steps.nth(1)).to_contain_text("Send the nearest post")
            await expect(steps.nth(2)).to_contain_text("Inform the duty officer")
            await expect(detail.locator(".notes")).to_contain_text("No notes yet.")

        # B starts a note of its own; A's note arrives on B's screen meanwhile.
        box_b = b.page.get_by_label("Add a note (every dispatcher sees it)")
        await box_b.fill("Second caller: a neighbour")
        await a.page.get_by_label("Add a note (every dispatcher sees it)").fill(
            "Caller whispers: two men at the till.\nBack door open."
        )
        await detail_a.get_by_role("button", name="Add note").click()
        await expect(a.page.locator("#action-status")).to_contain_text(
            f"Note added to alert #{alert_id}"
        )
        note_b = detail_b.locator(".note")
        await expect(note_b).to_have_count(1)
        await expect(note_b).to_contain_text("Caller whispers: two men at the till.")
        await expect(note_b).to_contain_text("Back door open.")
        await expect(note_b.locator(".note-meta")).to_contain_text("disp-a")
        # B's half-written note is still there, and still has the keyboard.
        await expect(box_b).to_have_value("Second caller: a neighbour")
        await expect(box_b).to_be_focused()
        await b.page.keyboard.press("Control+Enter")
        await expect(detail_a.locator(".note")).to_have_count(2)
        await expect(detail_a.locator(".note").nth(1)).to_contain_text("Second caller: a neighbour")
        await expect(detail_a.locator(".note").nth(1).locator(".note-meta")).to_contain_text(
            "disp-b"
        )
        await expect(box_b).to_have_value("")

        # A acknowledges: the alarm stops on both desks, and B sees who did it.
        await detail_a.get_by_role(
            "button", name=f"Acknowledge alert #{alert_id} for every dispatcher"
        ).click()
        for dispatcher in (a, b):
            await expect(dispatcher.page.locator("body")).to_have_attribute("data-alarm", "silent")
            await expect(dispatcher.page.locator("#alarm-bar")).to_be_hidden()
        await expect(detail_b.locator(".acknowledgement")).to_contain_text("Acknowledged by disp-a")
        await expect(detail_b.locator('[data-key="detail-ack"]')).to_have_count(0)
        row_b = b.page.locator(f'#queue-list > li[data-alert-id="{alert_id}"]')
        await expect(row_b).not_to_have_class("unacknowledged")

        # B ticks "send the nearest post": A sees it done, by B.
        await detail_b.get_by_label("Send the nearest post and check that it accepted").check()
        await expect(b.page.locator("#action-status")).to_contain_text(
            f"Alert #{alert_id}: step 2 done"
        )
        step_a = detail_a.locator('.plan-step[data-n="2"]')
        await expect(step_a).to_have_class("plan-step plan-done")
        await expect(step_a).to_contain_text("disp-b")
        await expect(step_a.locator("input")).to_be_checked()
        await expect(step_a.locator("input")).to_be_disabled()
        assert await a.page.evaluate(UNNAMED_CONTROLS_JS) == []
        await detail_a.locator(".plan").scroll_into_view_if_needed()
        await a.shot("detail")
        await b.shot("detail")

    # The mahalla team opens the same alert: no plan, no notes, nothing to acknowledge.
    async with asyncio.timeout(TEST_BUDGET_S), desk(browser, "workflow-observer") as observer:
        await observer.log_in(site.url, "obs")
        detail = await observer.open_alert(alert_id)
        await expect(detail.locator(".facts")).to_be_visible()
        for section in (".notes", ".plan", ".acknowledgement"):
            await expect(detail.locator(section)).to_have_count(0)
        await expect(detail).not_to_contain_text("two men at the till")

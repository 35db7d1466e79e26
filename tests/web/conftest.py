"""Real Chromium against a live alertnet, for the web page tests.

``browser``: one headless Chromium (Debian's ``/usr/bin/chromium``, or
``ALERTNET_TEST_CHROMIUM``) driven by Playwright's async API for the whole run. Playwright's
own browser downloads are never used. Policy as in ``tests.support.services``: without
Chromium a test is skipped locally and FAILS with ``CI=true``.

``site``: the real app (``create_app``) with a real Mosquitto, whose runtime (MQTT ingest,
dispatcher, realtime hub) lives for the whole test, served by uvicorn on a fixed loopback
port that ``LiveSite.stop()`` / ``start()`` take down and bring back — a network outage as a
browser sees it, while presses keep being ingested and dispatched. Tests tune its settings by
parametrizing ``site_options``.

``phones``: phone-sized browser contexts (390x844, touch) on ``site``, with the location
granted at a given position or denied. Screenshots go to ``test-artifacts/web/`` (git-ignored);
a test that fails while a phone is open leaves a ``-FAILED.png`` of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest
import pytest_asyncio
import uvicorn
from fastapi import FastAPI

from alertnet.app import create_app
from alertnet.config import Settings
from alertnet.web import router as web_router
from tests.auth.helpers import PASSWORD, fast_password_hashing
from tests.support import services
from tests.support.mosquitto import MosquittoServer, free_port
from tests.support.polling import eventually

__all__ = ["fast_password_hashing"]

CHROMIUM: Final = os.environ.get("ALERTNET_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS: Final = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
NO_CHROMIUM_TAG: Final = "[alertnet:no-chromium]"
ARTIFACTS: Final = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
PHONE: Final = {"width": 390, "height": 844}
# Every Playwright wait is bounded by this unless a call says otherwise.
ACTION_TIMEOUT_MS: Final = 10_000
SERVER_START_TIMEOUT_S: Final = 15.0
EXPECTED_CONSOLE_ERRORS: Final = ("Failed to load resource:", "WebSocket connection to ")


@pytest.fixture(autouse=True)
def _fast_password_hashing(fast_password_hashing: None) -> None:
    """Accounts are created per test; see ``tests.auth.helpers.fast_password_hashing``."""


# --- Chromium ---------------------------------------------------------------------------


@functools.cache
def chromium_unavailable() -> str | None:
    """Why the browser tests cannot run here (``None`` when they can)."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError as exc:
        return f"playwright is not installed ({exc}): pip install -e '.[dev]'"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or ALERTNET_TEST_CHROMIUM)"
    return None


def chromium_missing(reason: str) -> None:
    """Skip the test, or fail it when ``CI=true`` (CI must never go green by skipping)."""
    if services.in_ci():
        pytest.fail(f"{NO_CHROMIUM_TAG} Chromium is required when CI=true: {reason}", pytrace=False)
    pytest.skip(f"{NO_CHROMIUM_TAG} Chromium unavailable: {reason}")


def require_chromium() -> None:
    reason = chromium_unavailable()
    if reason is not None:
        chromium_missing(reason)


async def wait_until_true(page: Any, expression: str, timeout_ms: int = ACTION_TIMEOUT_MS) -> None:
    """Poll ``expression`` (a JavaScript expression) in ``page`` until it is truthy.

    Playwright's ``wait_for_function`` compiles its expression inside the page, which a page's
    Content-Security-Policy without 'unsafe-eval' refuses; ``evaluate`` is not bound by it.
    """
    deadline = asyncio.get_running_loop().time() + timeout_ms / 1000
    while not await page.evaluate(expression):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still false after {timeout_ms} ms: {expression}")
        await asyncio.sleep(0.05)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Any]:
    """One headless Chromium for the run (a fresh context per test keeps tests apart)."""
    require_chromium()
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import async_playwright, expect

    # expect() has its own bound (5 s by default): the same one, so a busy machine (CI runs
    # PostgreSQL, Mosquitto, alertnet and Chromium on two cores) slows a test, never fails it.
    expect.set_options(timeout=ACTION_TIMEOUT_MS)

    async with async_playwright() as playwright:
        try:
            chromium = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=30_000
            )
        except PlaywrightError as exc:
            chromium_missing(f"{CHROMIUM} did not start: {exc}")
        try:
            yield chromium
        finally:
            await chromium.close()


# --- a live alertnet --------------------------------------------------------------------


def has_web_pages(app: FastAPI) -> bool:
    return any(getattr(route, "path", None) == "/tablet" for route in app.routes)


class LiveSite:
    """``app`` served by uvicorn on one fixed port; ``stop`` and ``start`` cut and restore it.

    The app's lifespan is entered by the fixture, not by uvicorn, so the runtime keeps
    ingesting and dispatching while the HTTP side is down.
    """

    host: Final = "127.0.0.1"

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.port = free_port()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    @property
    def up(self) -> bool:
        return self._task is not None

    async def start(self) -> None:
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.port,
            lifespan="off",
            log_level="warning",
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(), name=f"uvicorn:{self.port}")

        def listening() -> bool:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            return server.started

        await eventually(
            listening,
            awaiting=f"uvicorn to listen on {self.url}",
            timeout_s=SERVER_START_TIMEOUT_S,
            interval_s=0.02,
        )
        self._server, self._task = server, task

    async def stop(self) -> None:
        """Close the listener and every connection (WebSockets get 1012), then return."""
        server, task = self._server, self._task
        self._server = self._task = None
        if server is None or task is None:
            return
        server.should_exit = True
        async with asyncio.timeout(SERVER_START_TIMEOUT_S):
            await task


@pytest.fixture
def site_options() -> dict[str, Any]:
    """Settings for ``site`` beyond the database and broker; parametrize to change them."""
    return {}


@pytest_asyncio.fixture
async def site(
    db_url: str, mosquitto: MosquittoServer, site_options: dict[str, Any]
) -> AsyncIterator[LiveSite]:
    settings = Settings(
        database_url=db_url,
        mqtt_url=mosquitto.url,
        mqtt_client_id="alertnet-web-test",
        **site_options,
    )
    app = create_app(settings)
    if not has_web_pages(app):  # until app.py includes the web router itself
        app.include_router(web_router)
    async with app.router.lifespan_context(app):
        runtime = app.state.runtime
        async with asyncio.timeout(SERVER_START_TIMEOUT_S):
            await runtime.mqtt.connected.wait()
        await eventually(
            lambda: runtime.hub.ready,
            awaiting="the realtime hub to be ready",
            timeout_s=SERVER_START_TIMEOUT_S,
            interval_s=0.02,
        )
        live = LiveSite(app)
        await live.start()
        try:
            yield live
        finally:
            await live.stop()


# --- a phone in the browser -------------------------------------------------------------


@dataclass
class Phone:
    """One browser context with a phone's screen, and what its page did wrong."""

    context: Any
    page: Any
    name: str
    # Uncaught exceptions, and console errors other than failed requests (a refused login,
    # a server that is down on purpose): a CSP violation or a script error lands here.
    errors: list[str] = field(default_factory=list)
    shots: list[Path] = field(default_factory=list)

    def on_console(self, message: Any) -> None:
        if message.type != "error":
            return
        text: str = message.text
        if text.startswith(EXPECTED_CONSOLE_ERRORS):
            return
        self.errors.append(f"console: {text}")

    async def shot(self, step: str) -> Path:
        """A full-page screenshot under ``test-artifacts/web/<test>-<step>.png``."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}-{step}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)
        return path

    async def login(self, username: str, password: str = PASSWORD) -> None:
        """Open /tablet, get sent to /login, log in, and come back to /tablet."""
        page = self.page
        await page.goto("/tablet")
        await page.wait_for_url(re.compile(r"/login\?next=%2Ftablet$"))
        await page.fill("#username", username)
        await page.fill("#password", password)
        await page.click("#login-submit")
        await page.wait_for_url(re.compile(r"/tablet$"))
        await page.locator("body[data-view='idle']").wait_for()


def artifact_name(request: pytest.FixtureRequest) -> str:
    """``<test function without test_>-<database>``, e.g. ``press_…_closes_it-sqlite``."""
    name = request.node.originalname.removeprefix("test_")
    callspec = getattr(request.node, "callspec", None)
    backend = callspec.params.get("db_url") if callspec is not None else None
    return f"{name}-{backend}" if backend else name


def clear_artifacts(name: str) -> None:
    """Remove the screenshots an earlier run of this test left (a stale FAILED one above all)."""
    for old in ARTIFACTS.glob(f"{name}-*.png"):
        old.unlink(missing_ok=True)


PhoneFactory = Callable[..., contextlib.AbstractAsyncContextManager[Phone]]


@pytest_asyncio.fixture
async def phones(
    browser: Any, site: LiveSite, request: pytest.FixtureRequest
) -> AsyncIterator[PhoneFactory]:
    """``async with phones(geolocation=(lat, lon)) as phone:`` — a fresh phone on ``site``.

    A test that fails inside the block leaves a ``FAILED`` screenshot of the phone.
    """
    base = artifact_name(request)
    clear_artifacts(base)

    @contextlib.asynccontextmanager
    async def make(
        *, geolocation: tuple[float, float] | None, label: str = ""
    ) -> AsyncIterator[Phone]:
        name = f"{base}-{label}" if label else base
        async with phone_context(browser, site, name, geolocation=geolocation) as phone:
            try:
                yield phone
            except BaseException:
                with contextlib.suppress(Exception):
                    await phone.shot("FAILED")
                raise

    yield make


@contextlib.asynccontextmanager
async def phone_context(
    browser: Any,
    site: LiveSite,
    name: str,
    *,
    geolocation: tuple[float, float] | None,
) -> AsyncIterator[Phone]:
    """A phone-sized context on ``site``; location granted at ``geolocation`` (None: denied)."""
    options: dict[str, Any] = {
        "viewport": PHONE,
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
        "base_url": site.url,
        "locale": "en-GB",
        "timezone_id": "Asia/Tashkent",
    }
    if geolocation is not None:
        options["geolocation"] = {"latitude": geolocation[0], "longitude": geolocation[1]}
        options["permissions"] = ["geolocation"]
    context = await browser.new_context(**options)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    page = await context.new_page()
    phone = Phone(context, page, name)
    page.on("pageerror", lambda error: phone.errors.append(f"uncaught: {error}"))
    page.on("console", phone.on_console)
    try:
        yield phone
    finally:
        await context.close()

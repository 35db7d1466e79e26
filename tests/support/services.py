"""Whether the real services the tests need are present, and what happens when one is not.

The policy lives here and nowhere else: with ``CI=true`` a test that needs PostgreSQL or
Mosquitto FAILS when the service is missing (CI must never turn green by skipping);
locally it is skipped, and the session summary says loudly how many tests were skipped for
which service. Each check runs once per session.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from typing import Final

import pytest
from sqlalchemy.engine import make_url

POSTGRES: Final = "postgres"
MOSQUITTO: Final = "mosquitto"
LABELS: Final = {POSTGRES: "PostgreSQL", MOSQUITTO: "Mosquitto"}

DEFAULT_PG_ADMIN_URL: Final = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
DEFAULT_MOSQUITTO: Final = "/usr/sbin/mosquitto"
_PROBE_TIMEOUT_S: Final = 5.0


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def pg_admin_url() -> str:
    """A database URL on the test server that may create and drop databases."""
    return os.environ.get("ALERTNET_TEST_PG_URL", DEFAULT_PG_ADMIN_URL)


def asyncpg_dsn(url: str) -> str:
    """The libpq-style DSN asyncpg takes for a SQLAlchemy ``postgresql+asyncpg://`` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def mosquitto_binary() -> str | None:
    """``ALERTNET_TEST_MOSQUITTO``, else ``mosquitto`` on PATH, else the Debian location."""
    configured = os.environ.get("ALERTNET_TEST_MOSQUITTO")
    candidates = [configured] if configured else [shutil.which("mosquitto"), DEFAULT_MOSQUITTO]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


@functools.cache
def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used (``None`` when it can)."""
    import asyncpg

    async def probe() -> None:
        connection = await asyncpg.connect(asyncpg_dsn(pg_admin_url()), timeout=_PROBE_TIMEOUT_S)
        await connection.close()

    # A private event loop in a worker thread: pytest-asyncio owns the main thread's loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            pool.submit(asyncio.run, probe()).result(timeout=_PROBE_TIMEOUT_S * 2)
        except Exception as exc:
            where = make_url(pg_admin_url()).render_as_string(hide_password=True)
            return f"cannot connect to {where}: {type(exc).__name__}: {exc}"
    return None


@functools.cache
def mosquitto_unavailable() -> str | None:
    """Why a test Mosquitto cannot be started (``None`` when it can)."""
    if mosquitto_binary() is None:
        return "no mosquitto executable (apt-get install mosquitto, or ALERTNET_TEST_MOSQUITTO)"
    return None


def unavailable(service: str) -> str | None:
    return {POSTGRES: postgres_unavailable, MOSQUITTO: mosquitto_unavailable}[service]()


def require(service: str) -> None:
    """Return if ``service`` is usable; otherwise skip the test, or fail it under CI."""
    reason = unavailable(service)
    if reason is None:
        return
    label = LABELS[service]
    if in_ci():
        pytest.fail(f"{tag(service)} {label} is required when CI=true: {reason}", pytrace=False)
    pytest.skip(f"{tag(service)} {label} unavailable: {reason}")


def require_postgres() -> None:
    require(POSTGRES)


def require_mosquitto() -> None:
    require(MOSQUITTO)


def tag(service: str) -> str:
    """The marker put in skip/fail messages so the session summary can count them."""
    return f"[alertnet:no-{service}]"


def service_missing_in(report: pytest.TestReport) -> str | None:
    """Which service a skipped or failed test report blames, if any."""
    if not (report.skipped or report.failed):
        return None
    text = str(report.longrepr)
    return next((service for service in LABELS if tag(service) in text), None)

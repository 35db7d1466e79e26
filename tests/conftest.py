"""Fixtures every alertnet test can use: migrated databases, real brokers, the service policy.

Databases: ``db_url`` runs a test on SQLite and on PostgreSQL (ids ``sqlite``/``postgres``),
each time on the run's migrated database, emptied before the test, so tests commit for real.
``engine`` and ``session_factory`` share that database's pooled engine. ``pg_url`` and
``sqlite_url`` are the same session databases, NOT emptied; ``empty_db_url`` is a brand-new,
unmigrated database per test (migration tests).

The app: ``api`` is the real app on ``db_url`` with its runtime running and an in-process
HTTP client on it (``support.asgi``).

Brokers: ``mosquitto`` (one per test), ``mosquitto_factory`` (several, with users),
``session_mosquitto`` (shared; never restart it).

Services: a test needing PostgreSQL or Mosquitto (by marker or by fixture) is skipped when the
service is missing, or FAILS when ``CI=true`` (``support.services``). The end of the session
prints one loud line about skipped services and how many tests ran on each database.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from alertnet.db import create_session_factory

# Test modules import helpers as ``tests.support.…`` (pyproject sets pytest's pythonpath).
from tests.support import services
from tests.support.asgi import AppClient, alertnet_api
from tests.support.database import POSTGRES, SQLITE, SessionDatabases
from tests.support.database import sqlite_url as sqlite_file_url
from tests.support.mosquitto import MosquittoServer
from tests.support.postgres import temporary_database

# The database fixtures a test can be parametrized through, and the backend each implies.
_BACKEND_FIXTURES = ("db_url", "empty_db_url")
_SESSION_DB_FIXTURES = {"pg_url": POSTGRES, "sqlite_url": SQLITE}
_MOSQUITTO_FIXTURES = ("mosquitto", "mosquitto_factory", "session_mosquitto")
_BACKEND_PROPERTY = "alertnet_database"

BACKEND_PARAMS = [
    pytest.param(SQLITE, id="sqlite"),
    pytest.param(POSTGRES, id="postgres", marks=pytest.mark.postgres),
]


# --- databases --------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def session_databases(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[SessionDatabases]:
    """The run's databases, created and migrated on first use, dropped at the end."""
    databases = SessionDatabases(tmp_path_factory.mktemp("databases"))
    try:
        yield databases
    finally:
        await databases.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def pg_url(session_databases: SessionDatabases) -> str:
    """The run's fresh PostgreSQL database, migrated once (shared, never emptied)."""
    return (await session_databases.get(POSTGRES)).url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def sqlite_url(session_databases: SessionDatabases) -> str:
    """The run's SQLite file in a temporary directory, migrated once (shared, never emptied)."""
    return (await session_databases.get(SQLITE)).url


@pytest_asyncio.fixture(params=BACKEND_PARAMS)
async def db_url(request: pytest.FixtureRequest, session_databases: SessionDatabases) -> str:
    """A migrated database with no rows, on SQLite and on PostgreSQL in turn."""
    database = await session_databases.get(request.param)
    await database.wipe()
    return database.url


@pytest.fixture
def engine(db_url: str, session_databases: SessionDatabases) -> AsyncEngine:
    """The pooled engine of ``db_url``'s database (shared by the run: do not dispose it)."""
    return session_databases.for_url(db_url).engine


@pytest.fixture
def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions as the application makes them (``expire_on_commit=False``)."""
    return create_session_factory(engine)


@pytest_asyncio.fixture(params=BACKEND_PARAMS)
async def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A brand-new database with no schema at all, dropped after the test."""
    if request.param == SQLITE:
        yield sqlite_file_url(tmp_path / "empty.db")
        return
    services.require_postgres()
    async with temporary_database(prefix="alertnet_scratch") as url:
        yield url


# --- the app ----------------------------------------------------------------------------


@pytest_asyncio.fixture
async def api(db_url: str) -> AsyncIterator[AppClient]:
    """The real app on ``db_url``, lifespan running, with an in-process client on it."""
    async with alertnet_api(db_url) as client:
        yield client


# --- brokers ----------------------------------------------------------------------------


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoServer]:
    """A project-configured, anonymous Mosquitto for this test alone (persistence on)."""
    services.require_mosquitto()
    with MosquittoServer(tmp_path / "mosquitto") as server:
        yield server


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[Callable[..., MosquittoServer]]:
    """``make(users=..., persistence=..., autosave_interval_s=...)`` → a started broker.

    Every broker it made is stopped after the test.
    """
    services.require_mosquitto()
    servers: list[MosquittoServer] = []

    def make(**options: Any) -> MosquittoServer:
        server = MosquittoServer(tmp_path / f"mosquitto-{len(servers)}", **options)
        servers.append(server)
        return server.start()

    try:
        yield make
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="session")
def session_mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    """One anonymous broker for the whole run, for tests that only need a broker to exist."""
    services.require_mosquitto()
    with MosquittoServer(tmp_path_factory.mktemp("mosquitto")) as server:
        yield server


# --- service policy and the summary -----------------------------------------------------


def _backends_of(item: pytest.Item) -> set[str]:
    backends: set[str] = set()
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        backends.update(
            callspec.params[name] for name in _BACKEND_FIXTURES if name in callspec.params
        )
    fixturenames: list[str] = getattr(item, "fixturenames", [])
    backends.update(
        backend for name, backend in _SESSION_DB_FIXTURES.items() if name in fixturenames
    )
    if item.get_closest_marker("postgres") is not None:
        backends.add(POSTGRES)
    return backends


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests by the services their fixtures need, so ``-m 'not postgres'`` works."""
    for item in items:
        fixturenames: list[str] = getattr(item, "fixturenames", [])
        if "pg_url" in fixturenames and item.get_closest_marker("postgres") is None:
            item.add_marker(pytest.mark.postgres)
        if any(name in fixturenames for name in _MOSQUITTO_FIXTURES):
            if item.get_closest_marker("mosquitto") is None:
                item.add_marker(pytest.mark.mosquitto)
        for backend in sorted(_backends_of(item)):
            item.user_properties.append((_BACKEND_PROPERTY, backend))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Apply the skip/fail policy before any fixture runs."""
    if item.get_closest_marker("postgres") is not None:
        services.require_postgres()
    if item.get_closest_marker("mosquitto") is not None:
        services.require_mosquitto()


_missing_service_tests: Counter[str] = Counter()
_backend_tests: Counter[str] = Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    missing = services.service_missing_in(report)
    if missing is not None:
        _missing_service_tests[missing] += 1
        return
    if report.when == "call":
        for name, value in report.user_properties:
            if name == _BACKEND_PROPERTY:
                _backend_tests[value] += 1


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if _missing_service_tests:
        verb = "FAILED (CI=true)" if services.in_ci() else "SKIPPED"
        parts = [
            f"{count} test(s) {verb}: {services.LABELS[service]} missing "
            f"({services.unavailable(service)})"
            for service, count in sorted(_missing_service_tests.items())
        ]
        terminalreporter.write_sep("!", "alertnet: " + "; ".join(parts), red=True, bold=True)
    if _backend_tests or _missing_service_tests:
        terminalreporter.write_line(
            f"alertnet: {_backend_tests[POSTGRES]} tests on PostgreSQL, "
            f"{_backend_tests[SQLITE]} on SQLite"
        )

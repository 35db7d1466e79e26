"""The fuzz city on a fresh PostgreSQL database, and the real app serving it in-process.

PostgreSQL, not SQLite: it is the stricter of the two (``varchar(n)`` lengths, 32-bit
``INTEGER``, no NUL in text), so what passes here passes on both.

The app runs, with a Mosquitto of its own, in schemathesis' ASGI client, which serves it from
an event loop of its own in a worker thread, lifespan and all (pipeline, dispatcher, hub). The
fuzz tests reach it through ``requests`` sessions of that client, so no engine is ever shared
across event loops. The city is registered before the app starts; its first alerts are opened
the way a city's are, by devices pressing over ``POST /uplinks``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Final

import pytest
import pytest_asyncio
from fastapi import FastAPI
from schemathesis.python import asgi

from alertnet import db
from alertnet.app import create_app
from alertnet.config import Settings
from tests.fuzz.city import (
    PRESSING_DEVICES,
    REQUEST_TIMEOUT_S,
    City,
    app_client,
    press,
    requests_made,
    seed_city,
)
from tests.support import services
from tests.support.database import migrate
from tests.support.mosquitto import MosquittoServer
from tests.support.postgres import create_database, drop_database

READY_WITHIN_S: Final = 15.0


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def fuzz_city() -> AsyncIterator[City]:
    """The city in a migrated PostgreSQL database of its own, dropped at the end."""
    services.require_postgres()
    url = await create_database(prefix="alertnet_fuzz")
    try:
        await migrate(url)
        engine = db.create_engine(url)
        try:
            async with db.unit_of_work(db.create_session_factory(engine)) as session:
                city = await seed_city(session, url)
        finally:
            await engine.dispose()
        yield city
    finally:
        await drop_database(url)


@pytest.fixture(scope="session")
def fuzz_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    """A broker of the fuzz app's own: its MQTT logins are nobody else's in the run."""
    services.require_mosquitto()
    with MosquittoServer(tmp_path_factory.mktemp("fuzz-mosquitto")) as server:
        yield server


@pytest.fixture(scope="session")
def fuzz_app(fuzz_city: City, fuzz_broker: MosquittoServer) -> Iterator[FastAPI]:
    """The real app on the city and its broker, ready, with the first alarms raised."""
    app = create_app(Settings(database_url=fuzz_city.database_url, mqtt_url=fuzz_broker.url))
    try:
        with app_client(app) as client:  # starts the app's lifespan, kept until shutdown
            deadline = time.monotonic() + READY_WITHIN_S
            while client.get("/readyz", timeout=REQUEST_TIMEOUT_S).status_code != 200:
                if time.monotonic() > deadline:
                    pytest.fail(f"the fuzzed app was not ready within {READY_WITHIN_S} s")
                time.sleep(0.1)
            for device in fuzz_city.devices[:PRESSING_DEVICES]:
                response = press(client, fuzz_city, device)
                assert response.status_code == 200, response.text
        yield app
    finally:
        asgi.shutdown_lifespans()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if requests_made:
        parts = ", ".join(f"{name} {count}" for name, count in requests_made.items())
        terminalreporter.write_line(f"alertnet fuzz: requests made: {parts}")

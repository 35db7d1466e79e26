"""The device cache across real ``alertnet serve`` processes on one PostgreSQL (issue 18, §13).

Process B has the device cached (it just took a frame of it); the device is disabled through
process A's admin API, then re-keyed by a plain UPDATE (any writer): B's very next frame is
judged on the new facts — quarantined ``disabled_device``, then ``bad_mic`` under the old key,
accepted under the new one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import update

from alertnet.auth.tokens import create_token
from alertnet.auth.users import create_user
from alertnet.db import create_engine, create_session_factory, unit_of_work
from alertnet.models import Device
from alertnet.protocol import EventCode, Uplink
from tests.faults.harness import AlertnetProcess
from tests.support import services
from tests.support.database import migrate
from tests.support.factories import create_device
from tests.support.mosquitto import MosquittoServer
from tests.support.postgres import temporary_database

pytestmark = [pytest.mark.postgres, pytest.mark.mosquitto, pytest.mark.slow]

KEY = bytes(range(16))
NEW_KEY = bytes(range(16, 32))
EUI = "70b3d57ed0c0ffee"


@pytest_asyncio.fixture
async def cache_db() -> AsyncIterator[str]:
    services.require_postgres()
    async with temporary_database(prefix="alertnet_hotpath") as url:
        await migrate(url)
        yield url


async def _uplink(client: httpx.AsyncClient, counter: int, key: bytes = KEY) -> httpx.Response:
    frame = Uplink.build(key, EUI, counter, EventCode.HEARTBEAT, battery=90)
    return await client.post(
        "/api/v1/uplinks",
        content=frame.to_bytes(),
        headers={"content-type": "application/octet-stream"},
    )


def _reason(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    return str(response.json()["code"])


async def test_disable_and_rekey_reach_the_other_process_at_once(
    cache_db: str, session_mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    engine = create_engine(cache_db)
    session_factory = create_session_factory(engine)
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)
        admin, _password = await create_user(
            session, "cache-admin", "admin", password="a long enough passphrase 18"
        )
        token = await create_token(session, admin.id)
    servers = [
        AlertnetProcess(
            cache_db,
            session_mosquitto.url,
            tmp_path / f"{name}.log",
            env={"ALERTNET_MQTT_CLIENT_ID": f"alertnet-hotpath-{name}-{id(tmp_path)}"},
        )
        for name in ("a", "b")
    ]
    try:
        await asyncio.gather(*(server.start() for server in servers))
        a, b = servers
        async with (
            httpx.AsyncClient(base_url=a.base_url, timeout=10.0) as to_a,
            httpx.AsyncClient(base_url=b.base_url, timeout=10.0) as to_b,
        ):
            for counter in (1, 2):  # B reads the device, then answers from its cache
                response = await _uplink(to_b, counter)
                assert response.status_code == 200, response.text
                assert response.headers["x-alertnet-outcome"] == "heartbeat"

            patch = await to_a.patch(
                f"/api/v1/devices/{EUI}",
                json={"status": "disabled"},
                headers={"authorization": f"Bearer {token}"},
            )
            assert patch.status_code == 200, patch.text
            assert _reason(await _uplink(to_b, 3)) == "disabled_device"

            async with unit_of_work(session_factory) as session:
                await session.execute(
                    update(Device).where(Device.eui == EUI).values(status="active", key=NEW_KEY)
                )
            assert _reason(await _uplink(to_b, 4)) == "bad_mic"
            accepted = await _uplink(to_b, 5, NEW_KEY)
            assert accepted.status_code == 200, accepted.text
            assert accepted.headers["x-alertnet-outcome"] == "heartbeat"
    finally:
        for server in servers:
            server.stop()
        await engine.dispose()

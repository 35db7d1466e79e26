"""A gateway relay whose broker restarts: what it heard meanwhile reaches alertnet afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.ingest.gateway_bridge import GatewayRelay
from alertnet.ingest.mqtt_client import BrokerAddress
from alertnet.models import Event, Reception
from alertnet.protocol import EventCode, Uplink, format_rcv
from tests.support.factories import create_device
from tests.support.mosquitto import MosquittoServer
from tests.support.polling import eventually

from .helpers import EUI, KEY, FakeModule, running_alertnet

pytestmark = pytest.mark.mosquitto

SessionFactory = async_sessionmaker[AsyncSession]
GATEWAY = "gw-relay"


def _line(counter: int) -> bytes:
    return format_rcv(3, Uplink.build(KEY, EUI, counter, EventCode.TEST).to_bytes(), -90, 5)


async def _relayed(session_factory: SessionFactory) -> list[int]:
    async with session_factory() as session:
        rows = await session.scalars(
            select(Event.counter)
            .join(Reception, Reception.event_id == Event.id)
            .where(Reception.gateway_id == GATEWAY)
            .order_by(Event.counter)
        )
        return list(rows.all())


async def test_frames_heard_while_the_broker_restarts_are_relayed_after_it(
    session_factory: SessionFactory, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)
    module = FakeModule(tmp_path, "ttyUSB-relay")
    relay = GatewayRelay(module.path, GATEWAY, BrokerAddress.parse(mosquitto.gateway_url(GATEWAY)))
    try:
        async with running_alertnet(session_factory, mqtt_url=mosquitto.url) as net:
            assert net.mqtt is not None
            relay_task = asyncio.create_task(relay.run())
            try:
                async with asyncio.timeout(10):
                    await relay.connected.wait()
                    await relay.module.port.opened.wait()
                await module.write(_line(1))
                await eventually(
                    lambda: _relayed(session_factory),
                    lambda c: c == [1],
                    awaiting="press 1 relayed to alertnet",
                )

                await asyncio.to_thread(mosquitto.stop)
                await eventually(
                    lambda: not relay.connected.is_set(),
                    awaiting="the relay to notice the broker is gone",
                )
                for counter in (2, 3):
                    await module.write(_line(counter))
                await eventually(  # held for the reconnect
                    lambda: relay.backlog == 2, awaiting="presses 2 and 3 held by the relay"
                )

                await asyncio.to_thread(mosquitto.restart)
                back_at = time.monotonic()
                async with asyncio.timeout(10):
                    await relay.connected.wait()
                print(f"relay reconnected {time.monotonic() - back_at:.2f} s after the restart")
                counters = await eventually(
                    lambda: _relayed(session_factory),
                    lambda c: c == [1, 2, 3],
                    awaiting="the held presses relayed after the restart",
                )
            finally:
                relay_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await relay_task
    finally:
        module.close()
    assert counters == [1, 2, 3]
    assert (relay.published, relay.dropped, relay.backlog) == (3, 0, 0)

"""MQTT ingest end to end: a real Mosquitto, a running alertnet runtime, a device client."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.app import Runtime
from alertnet.config import Settings
from alertnet.db import unit_of_work
from alertnet.models import Alert, Event, Quarantine
from alertnet.protocol import (
    AckState,
    EventCode,
    Uplink,
    decode_downlink,
    decode_downlink_json,
    down_topic,
    up_topic,
)
from tests.ingest.helpers import EUI, KEY
from tests.support.factories import create_device
from tests.support.mosquitto import MosquittoServer
from tests.support.polling import eventually

pytestmark = pytest.mark.mosquitto

#: Long enough that the old schedule (0.2 s doubling to 10 s) had grown past 3 s.
BROKER_OUTAGE_S = 3.5
#: Attempts at most 1 s apart in an outage's first minute, plus slack for a loaded machine
#: (the old schedule came back 2.7 s after the broker here).
MAX_RECONNECT_S = 1.8


async def _event_counters(session_factory: async_sessionmaker[AsyncSession]) -> list[int]:
    async with session_factory() as session:
        return list((await session.scalars(select(Event.counter))).all())


@contextlib.asynccontextmanager
async def running_runtime(db_url: str, mqtt_url: str) -> AsyncIterator[Runtime]:
    runtime = Runtime(
        Settings(database_url=db_url, mqtt_url=mqtt_url, mqtt_client_id="alertnet-test")
    )
    await runtime.start()
    try:
        await asyncio.wait_for(runtime.mqtt.connected.wait(), 10)
        yield runtime
    finally:
        await runtime.stop()


async def test_three_retries_and_a_json_copy_give_one_alert_and_four_acks(
    db_url: str, session_factory: async_sessionmaker[AsyncSession], mosquitto: MosquittoServer
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)
    press = Uplink.build(KEY, EUI, 42, EventCode.PANIC, battery=87)
    async with (
        running_runtime(db_url, mosquitto.url),
        mosquitto.device_client(EUI, KEY) as device,
    ):
        await device.subscribe(down_topic(EUI), qos=1)
        for payload in [press.to_bytes()] * 3 + [press.to_json()]:
            await device.publish(up_topic(EUI), payload, qos=1)
        acks: list[bytes] = []

        async def collect() -> None:
            async for message in device.messages:
                assert isinstance(message.payload, bytes)
                acks.append(message.payload)
                if len(acks) == 4:
                    return

        await asyncio.wait_for(collect(), 15)

    binary = [decode_downlink(a) for a in acks if not a.startswith(b"{")]
    json = [decode_downlink_json(a, EUI) for a in acks if a.startswith(b"{")]
    assert len(binary) == 3 and len(json) == 1
    for ack in binary + json:
        assert (ack.counter, ack.state, ack.verify(KEY)) == (42, AckState.RECEIVED, True)
    async with session_factory() as session:
        assert (await session.execute(select(Event.counter, Event.reception_count))).all() == [
            (42, 4)
        ]
        assert await session.scalar(select(func.count()).select_from(Alert)) == 1


async def test_bad_topic_and_garbage_are_quarantined_and_ingest_goes_on(
    db_url: str, session_factory: async_sessionmaker[AsyncSession], mosquitto: MosquittoServer
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)
    async with (
        running_runtime(db_url, mosquitto.url) as runtime,
        mosquitto.harness_client("noisy") as device,
    ):
        await device.publish("alertnet/v1/up/NOT-AN-EUI", b"x", qos=1)
        await device.publish(up_topic(EUI), b"\xff" * 5, qos=1)
        await device.publish("alertnet/v1/gw/gw-9/rx", b"{not json", qos=1)
        await device.publish(
            up_topic(EUI), Uplink.build(KEY, EUI, 1, EventCode.PANIC).to_bytes(), qos=1
        )
        await eventually(
            lambda: _event_counters(session_factory), awaiting="the one valid press stored"
        )
        assert runtime.broker_connected()
    async with session_factory() as session:
        reasons = sorted((await session.scalars(select(Quarantine.reason))).all())
        assert reasons == ["bad_length", "bad_topic", "malformed_json"]
        assert await session.scalar(select(func.count()).select_from(Event)) == 1


async def test_ingest_reconnects_after_a_broker_restart(
    db_url: str, session_factory: async_sessionmaker[AsyncSession], mosquitto: MosquittoServer
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)
    async with running_runtime(db_url, mosquitto.url) as runtime:
        connections = runtime.mqtt.connections
        await asyncio.to_thread(mosquitto.restart)
        back_at = time.monotonic()
        await eventually(
            lambda: runtime.mqtt.connections > connections,
            awaiting="ingest to connect again after the restart",
            timeout_s=20,
        )
        await asyncio.wait_for(runtime.mqtt.connected.wait(), 20)
        print(f"MQTT ingest reconnected {time.monotonic() - back_at:.2f} s after the restart")
        async with mosquitto.device_client(EUI, KEY) as device:
            await device.publish(
                up_topic(EUI), Uplink.build(KEY, EUI, 9, EventCode.PANIC).to_bytes(), qos=1
            )
        await eventually(
            lambda: _event_counters(session_factory), awaiting="the press after the restart stored"
        )
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Event)) == 1


async def test_ingest_is_back_within_a_second_of_the_broker_after_an_outage(
    db_url: str, session_factory: async_sessionmaker[AsyncSession], mosquitto: MosquittoServer
) -> None:
    """Issue 12: the backoff had grown to 10 s, so ingest came back 6.4 s after the broker."""
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)
    async with running_runtime(db_url, mosquitto.url) as runtime:
        ingest = runtime.mqtt
        connections = ingest.connections
        await asyncio.to_thread(mosquitto.stop)
        await eventually(
            lambda: not ingest.connected.is_set(), awaiting="ingest to notice the broker is gone"
        )
        await asyncio.sleep(BROKER_OUTAGE_S)  # ingest keeps retrying a broker that is away
        assert ingest.connections == connections
        await asyncio.to_thread(mosquitto.restart)  # returns once the broker listens again
        back_at = time.monotonic()
        await asyncio.wait_for(ingest.connected.wait(), 20)
        reconnect_s = time.monotonic() - back_at
        print(f"MQTT ingest reconnected {reconnect_s:.2f} s after the broker listened again")
        assert ingest.connections == connections + 1
        assert reconnect_s < MAX_RECONNECT_S
        async with mosquitto.device_client(EUI, KEY) as device:
            await device.publish(
                up_topic(EUI), Uplink.build(KEY, EUI, 7, EventCode.PANIC).to_bytes(), qos=1
            )
        assert await eventually(
            lambda: _event_counters(session_factory), awaiting="the press after the outage stored"
        ) == [7]

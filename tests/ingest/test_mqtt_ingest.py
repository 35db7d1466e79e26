"""MQTT ingest end to end: a real Mosquitto, a running alertnet runtime, a device client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiomqtt
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.app import Runtime
from alertnet.config import Settings
from alertnet.db import unit_of_work
from alertnet.ingest.mqtt_client import BrokerAddress
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

pytestmark = pytest.mark.mosquitto


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
    address = BrokerAddress.parse(mosquitto.url)
    async with (
        running_runtime(db_url, mosquitto.url),
        aiomqtt.Client(address.host, address.port, identifier="device-70b3") as device,
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
    address = BrokerAddress.parse(mosquitto.url)
    async with (
        running_runtime(db_url, mosquitto.url) as runtime,
        aiomqtt.Client(address.host, address.port, identifier="noisy") as device,
    ):
        await device.publish("alertnet/v1/up/NOT-AN-EUI", b"x", qos=1)
        await device.publish(up_topic(EUI), b"\xff" * 5, qos=1)
        await device.publish("alertnet/v1/gw/gw-9/rx", b"{not json", qos=1)
        await device.publish(
            up_topic(EUI), Uplink.build(KEY, EUI, 1, EventCode.PANIC).to_bytes(), qos=1
        )
        for _ in range(100):
            async with session_factory() as session:
                if await session.scalar(select(func.count()).select_from(Event)):
                    break
            await asyncio.sleep(0.1)
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
    address = BrokerAddress.parse(mosquitto.url)
    async with running_runtime(db_url, mosquitto.url) as runtime:
        await asyncio.to_thread(mosquitto.restart)
        await asyncio.wait_for(runtime.mqtt.connected.wait(), 20)
        async with aiomqtt.Client(address.host, address.port, identifier="after") as device:
            await device.publish(
                up_topic(EUI), Uplink.build(KEY, EUI, 9, EventCode.PANIC).to_bytes(), qos=1
            )
        for _ in range(100):
            async with session_factory() as session:
                if await session.scalar(select(func.count()).select_from(Event)):
                    break
            await asyncio.sleep(0.1)
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Event)) == 1

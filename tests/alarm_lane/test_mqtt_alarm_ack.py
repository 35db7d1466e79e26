"""An alarm's "received" ack leaves as soon as it commits, not behind earlier heartbeats' PUBACKs.

PUBACKs go out in arrival order (DESIGN §6.1), so an alarm's PUBACK may wait for heartbeats
that reached alertnet before it; its commit and the device's ack must not. Real Mosquitto,
real runtime on PostgreSQL: heartbeats held in their transaction by a row lock the test holds,
then a press whose ack must arrive while that lock is still held.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from alertnet.app import Runtime
from alertnet.config import Settings
from alertnet.db import unit_of_work
from alertnet.models import Device
from alertnet.protocol import AckState, EventCode, Uplink, decode_downlink, down_topic, up_topic
from tests.support.factories import create_device
from tests.support.mosquitto import MosquittoServer
from tests.support.polling import eventually

pytestmark = pytest.mark.mosquitto

POSTGRES_ONLY = pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)
HEARTBEATS = 50
#: Bounds a hang only.
ACK_TIMEOUT_S = 20.0


async def _waiting_on_locks(session_factory: async_sessionmaker[AsyncSession]) -> int:
    async with session_factory() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return int(waiting or 0)


@pytest.mark.parametrize("db_url", [POSTGRES_ONLY], indirect=True)
async def test_a_press_is_acked_while_heartbeats_before_it_are_held_in_their_transaction(
    db_url: str,
    engine: AsyncEngine,
    session_factory: async_sessionmaker[AsyncSession],
    mosquitto: MosquittoServer,
) -> None:
    async with unit_of_work(session_factory) as session:
        presser = await create_device(session)
        beating = [await create_device(session) for _ in range(HEARTBEATS)]
    runtime = Runtime(Settings(database_url=db_url, mqtt_url=mosquitto.url))
    lock = await engine.connect()
    transaction = await lock.begin()
    await lock.execute(
        select(Device.id).where(Device.id.in_([d.id for d in beating])).with_for_update()
    )
    await runtime.start()
    try:
        assert runtime.mqtt is not None
        await asyncio.wait_for(runtime.mqtt.connected.wait(), ACK_TIMEOUT_S)
        async with (
            mosquitto.harness_client("heartbeats") as heartbeats,
            mosquitto.device_client(presser.eui, presser.key) as device,
        ):
            await device.subscribe(down_topic(presser.eui), qos=1)
            for beat in beating:
                frame = Uplink.build(beat.key, beat.eui, 1, EventCode.HEARTBEAT)
                await heartbeats.publish(up_topic(beat.eui), frame.to_bytes(), qos=1)
            await eventually(
                lambda: _waiting_on_locks(session_factory),
                awaiting="the heartbeats' batch to wait on the test's row lock",
            )
            press = Uplink.build(presser.key, presser.eui, 1, EventCode.PANIC)
            await device.publish(up_topic(presser.eui), press.to_bytes(), qos=1)

            async def received_ack() -> None:
                async for message in device.messages:
                    assert isinstance(message.payload, bytes)
                    ack = decode_downlink(message.payload)
                    if ack.counter == 1 and ack.state == AckState.RECEIVED:
                        assert ack.verify(presser.key)
                        return

            await asyncio.wait_for(received_ack(), ACK_TIMEOUT_S)
            # The heartbeats are still in their transaction: the ack did not wait for them.
            assert await _waiting_on_locks(session_factory) >= 1
            await transaction.rollback()

            async def heartbeats_committed() -> bool:
                async with session_factory() as session:
                    seen = await session.scalars(
                        select(Device.last_seen_at).where(Device.id.in_([d.id for d in beating]))
                    )
                    return all(at is not None for at in seen)

            await eventually(heartbeats_committed, awaiting="the held heartbeats to commit")
    finally:
        await lock.close()
        await runtime.stop()

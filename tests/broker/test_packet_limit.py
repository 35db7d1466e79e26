"""Issue 12 / DESIGN §14: a packet over 64 KiB costs its sender its connection, nothing else.

Mosquitto's ``message_size_limit`` would drop such a message silently and keep the sender;
``max_packet_size`` disconnects the sender (the broker logs why), and the oversized payload
never reaches alertnet, its quarantine or anyone else's queue.
"""

from __future__ import annotations

import aiomqtt
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.broker.mosquitto import MAX_PACKET_BYTES
from alertnet.db import unit_of_work
from alertnet.models import Quarantine
from alertnet.protocol import EventCode, Uplink, up_topic
from tests.broker.helpers import events_once_settled, running_runtime
from tests.support.factories import create_device
from tests.support.mosquitto import MosquittoServer

pytestmark = pytest.mark.mosquitto


async def test_an_oversized_packet_disconnects_its_sender_and_nobody_else(
    db_url: str, session_factory: async_sessionmaker[AsyncSession], mosquitto: MosquittoServer
) -> None:
    async with unit_of_work(session_factory) as session:
        sender = await create_device(session)
        neighbour = await create_device(session)
    await mosquitto.allow_registry(db_url)

    async with running_runtime(db_url, mosquitto.url) as runtime:
        async with mosquitto.device_client(neighbour.eui, neighbour.key) as other:
            with pytest.raises(aiomqtt.MqttError):
                async with mosquitto.device_client(sender.eui, sender.key) as big:
                    oversized = b"\xff" * (MAX_PACKET_BYTES + 1)
                    await big.publish(up_topic(sender.eui), oversized, qos=1, timeout=5)
            press = Uplink.build(neighbour.key, neighbour.eui, 1, EventCode.PANIC).to_bytes()
            await other.publish(up_topic(neighbour.eui), press, qos=1)
            assert await events_once_settled(session_factory, 1) == 1
        assert runtime.broker_connected()

    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Quarantine)) == 0
    assert f"Client {sender.eui} disconnected due to oversize packet" in mosquitto.log_text()

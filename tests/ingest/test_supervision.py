"""Supervision: a device silent past twice its interval plus grace is offline until heard."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.config import Settings
from alertnet.db import unit_of_work
from alertnet.devices.supervision import Supervisor
from alertnet.ingest.pipeline import RawUplink
from alertnet.metrics import Metrics
from alertnet.models import Alert, Device, Transport, utcnow
from alertnet.protocol import EventCode, Uplink
from tests.ingest.helpers import EUI, KEY, running_pipeline
from tests.support.factories import create_device


async def test_silent_device_goes_offline_and_back(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with unit_of_work(session_factory) as session:
        device = await create_device(session, eui=EUI, key=KEY, supervision_interval_s=900)
    supervisor = Supervisor(session_factory, Settings(), Metrics())
    assert await supervisor.check(utcnow()) == []
    later = utcnow() + timedelta(seconds=2 * 900 + 121)
    assert await supervisor.check(later) == [EUI]
    assert await supervisor.check(later) == []  # raised once, not again
    async with session_factory() as session:
        stored = await session.get_one(Device, device.id)
        trouble = await session.scalar(select(Alert).where(Alert.category == "trouble"))
        assert stored.status == "offline"
        assert trouble is not None and (trouble.trouble, trouble.state) == ("offline", "new")
    async with running_pipeline(session_factory) as pipeline:
        heartbeat = Uplink.build(KEY, EUI, 1, EventCode.HEARTBEAT).to_bytes()
        await pipeline.submit(RawUplink(heartbeat, Transport.MQTT))
    async with session_factory() as session:
        stored = await session.get_one(Device, device.id)
        trouble = await session.scalar(select(Alert).where(Alert.category == "trouble"))
        assert stored.status == "active"
        assert trouble is not None and trouble.state == "closed"

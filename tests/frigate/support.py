"""What the Frigate tests share: alertnet with its Frigate adapter on a real Mosquitto, a test
client publishing as Frigate does, camera devices, and Frigate-shaped messages."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.app import Runtime
from alertnet.config import Settings
from alertnet.db import unit_of_work
from alertnet.models import Alert, Device, Event, Quarantine
from tests.support.asgi import NO_BROKER
from tests.support.factories import create_device
from tests.support.mosquitto import MosquittoServer

TOPIC = "frigate/events"
#: 2025-11-30 23:30 in Tashkent (UTC+5): inside 22-06.
NIGHT = 1_764_527_400.0
#: 2025-11-30 12:00 in Tashkent: outside 22-06.
NOON = 1_764_486_000.0


def after(
    frigate_id: str,
    camera: str = "gate",
    label: str = "person",
    *,
    start_time: float = NIGHT,
    end_time: float | None = None,
    entered_zones: Sequence[str] = (),
    current_zones: Sequence[str] | None = None,
    false_positive: bool = False,
    score: float = 0.83,
) -> dict[str, Any]:
    """A tracked object as Frigate writes it in a message's ``after``."""
    return {
        "id": frigate_id,
        "camera": camera,
        "frame_time": start_time + 1,
        "label": label,
        "sub_label": None,
        "top_score": score,
        "score": score,
        "false_positive": false_positive,
        "start_time": start_time,
        "end_time": end_time,
        "current_zones": list(entered_zones if current_zones is None else current_zones),
        "entered_zones": list(entered_zones),
        "has_snapshot": True,
        "has_clip": True,
        "stationary": False,
    }


def message(kind: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": kind, "before": obj, "after": obj}).encode()


async def create_camera(
    session_factory: async_sessionmaker[AsyncSession],
    name: str = "gate",
    *,
    labels: str = "person",
    zones: str = "",
    hours: str | None = None,
    **fields: Any,
) -> int:
    async with unit_of_work(session_factory) as session:
        device = await create_device(
            session,
            kind="camera",
            camera_name=name,
            camera_labels=labels,
            camera_zones=zones,
            camera_hours=hours,
            supervision_interval_s=604_800,
            **fields,
        )
        return device.id


@contextlib.asynccontextmanager
async def frigate_runtime(
    db_url: str, mosquitto: MosquittoServer, **settings: Any
) -> AsyncIterator[Runtime]:
    """alertnet with its Frigate adapter subscribed on ``mosquitto`` (no other MQTT)."""
    runtime = Runtime(
        Settings(
            database_url=db_url,
            mqtt_url=NO_BROKER,
            frigate_mqtt_url=mosquitto.url,
            mqtt_client_id="alertnet-test",
            **settings,
        )
    )
    await runtime.start()
    try:
        assert runtime.frigate is not None
        await asyncio.wait_for(runtime.frigate.connected.wait(), 10)
        yield runtime
    finally:
        await runtime.stop()


async def camera_events(session_factory: async_sessionmaker[AsyncSession]) -> list[Event]:
    async with session_factory() as session:
        return list((await session.scalars(select(Event).order_by(Event.id))).all())


async def alerts(session_factory: async_sessionmaker[AsyncSession]) -> list[Alert]:
    async with session_factory() as session:
        return list((await session.scalars(select(Alert).order_by(Alert.id))).all())


async def quarantined(session_factory: async_sessionmaker[AsyncSession]) -> list[Quarantine]:
    async with session_factory() as session:
        return list((await session.scalars(select(Quarantine).order_by(Quarantine.id))).all())


async def device_of(session_factory: async_sessionmaker[AsyncSession], device_id: int) -> Device:
    async with session_factory() as session:
        device = await session.get(Device, device_id)
        assert device is not None
        return device

"""Which devices a drill takes when a dispatcher asks for a number (DESIGN §12).

Active devices of the mahalla that make a police alert, with no open alert and no drill event
still waiting: public buttons first, then other public devices, then homes' and businesses';
hold-up (silent) buttons after the other buttons. Offline, disabled, busy devices, cameras and
other mahallas' devices are never taken.
"""

from __future__ import annotations

import random

import pytest
from sqlalchemy import select

from alertnet.db import unit_of_work
from alertnet.drills.service import DrillRequest, NotEnoughDrillDevices, start_drill
from alertnet.models import Device, DrillEvent
from tests.dispatch.helpers import T0, SessionFactory
from tests.support.factories import create_alert, create_device

from .helpers import build_town

DEVICES = (
    ("button", "panic_button", "public", 0, 100),
    ("fire", "fire_alarm", "public", 0, 200),
    ("shop", "intrusion_alarm", "business", 0, 300),
    ("holdup", "panic_button", "public", 0, 400),
    ("offline", "panic_button", "public", 0, 500),
    ("busy", "panic_button", "public", 0, 600),
    ("camera", "camera", "public", 0, 700),
)


async def _town(session_factory: SessionFactory) -> dict[int, str]:
    town = await build_town(session_factory, DEVICES)
    async with unit_of_work(session_factory) as session:
        devices = {name: await session.get_one(Device, id_) for name, id_ in town.devices.items()}
        devices["holdup"].silent = True
        devices["offline"].status = "offline"
        await create_alert(session, devices["busy"], opened_at=T0)
        await create_device(session, mahalla_id=town.other_mahalla_id)  # next door
    return {id_: name for name, id_ in town.devices.items()}


async def _chosen(session_factory: SessionFactory, count: int, seed: int) -> set[str] | None:
    names = await _town(session_factory)
    try:
        async with unit_of_work(session_factory) as session:
            drill = await start_drill(
                session,
                DrillRequest("Chorsu", count, 0),
                started_by="disp",
                now=T0,
                rng=random.Random(seed),
            )
            rows = await session.scalars(
                select(DrillEvent.device_id).where(DrillEvent.drill_id == drill.id)
            )
            return {names[device_id] for device_id in rows}
    except NotEnoughDrillDevices:
        return None


@pytest.mark.parametrize("seed", [1, 2])  # chance orders only equals, and there are none here
@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (1, {"button"}),
        (2, {"button", "holdup"}),
        (3, {"button", "holdup", "fire"}),
        (4, {"button", "holdup", "fire", "shop"}),
        (5, None),
    ],
)
async def test_public_buttons_first_and_only_devices_free_for_a_drill(
    session_factory: SessionFactory, count: int, expected: set[str] | None, seed: int
) -> None:
    assert await _chosen(session_factory, count, seed) == expected


async def test_a_device_waiting_for_a_drill_event_is_not_taken_twice(
    session_factory: SessionFactory,
) -> None:
    names = await _town(session_factory)
    taken: list[set[str]] = []
    for _ in range(2):
        async with unit_of_work(session_factory) as session:
            drill = await start_drill(
                session, DrillRequest("Chorsu", 2, 600), started_by="disp", now=T0
            )
            rows = await session.scalars(
                select(DrillEvent.device_id).where(DrillEvent.drill_id == drill.id)
            )
            taken.append({names[device_id] for device_id in rows})
    assert taken[0].isdisjoint(taken[1])
    assert taken[0] | taken[1] == {"button", "holdup", "fire", "shop"}

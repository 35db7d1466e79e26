"""Builders for the drill tests: a mahalla with devices around the dispatch tests' base point,
a running pipeline and drill runner, drills started at the tests' fixed instant ``T0``.

Time is injected as in ``tests.dispatch.helpers``: the runner's passes, the dispatcher's passes
and the posts' answers each get an explicit ``now``; nothing sleeps.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from alertnet.db import unit_of_work
from alertnet.drills.runner import DrillRunner
from alertnet.drills.service import DrillRequest, start_drill
from alertnet.models import Alert, Drill, DrillEvent, Event
from tests.dispatch.helpers import T0, SessionFactory, point
from tests.ingest.helpers import running_pipeline
from tests.support.factories import create_device, create_mahalla


@dataclass(frozen=True)
class Town:
    """One mahalla (and a second one next door) and the devices made in it, by name."""

    mahalla_id: int
    mahalla: str
    other_mahalla_id: int
    devices: dict[str, int]  # name → device id
    euis: dict[str, str]  # name → EUI


# name, kind, site, north_m, east_m
DEFAULT_DEVICES: tuple[tuple[str, str, str, float, float], ...] = (
    ("bazaar", "panic_button", "public", 0, 100),
    ("school", "panic_button", "public", 200, 0),
    ("metro", "panic_button", "public", -200, 0),
)


async def build_town(
    session_factory: SessionFactory,
    devices: Sequence[tuple[str, str, str, float, float]] = DEFAULT_DEVICES,
    **device_fields: Any,
) -> Town:
    async with unit_of_work(session_factory) as session:
        mahalla = await create_mahalla(session, name="Chorsu", risk="red")
        other = await create_mahalla(session, name="Bodomzor", risk="green")
        ids: dict[str, int] = {}
        euis: dict[str, str] = {}
        for index, (name, kind, site, north_m, east_m) in enumerate(devices, start=1):
            lat, lon = point(north_m, east_m)
            device = await create_device(
                session,
                eui=f"70b3d57ed00d{index:04x}",
                kind=kind,
                site=site,
                name=name,
                lat=lat,
                lon=lon,
                mahalla_id=mahalla.id,
                **device_fields,
            )
            ids[name] = device.id
            euis[name] = device.eui
        return Town(mahalla.id, mahalla.name, other.id, ids, euis)


async def start(
    session_factory: SessionFactory,
    town: Town,
    devices: int | Sequence[str],
    *,
    spread_s: int = 0,
    now: datetime = T0,
    started_by: str = "disp",
) -> int:
    """Start a drill in the town's mahalla (``devices``: a count, or device names); its id."""
    named = devices if isinstance(devices, int) else [town.euis[name] for name in devices]
    async with unit_of_work(session_factory) as session:
        drill = await start_drill(
            session,
            DrillRequest(town.mahalla, named, spread_s),
            started_by=started_by,
            now=now,
        )
        return drill.id


@contextlib.asynccontextmanager
async def drill_runner(session_factory: SessionFactory) -> AsyncIterator[DrillRunner]:
    """A drill runner on a running pipeline (its passes are driven by the test: ``step``)."""
    async with running_pipeline(session_factory) as pipeline:
        yield DrillRunner(session_factory, pipeline)


async def drill_rows(session_factory: SessionFactory, drill_id: int) -> list[DrillEvent]:
    async with session_factory() as session:
        return list(
            await session.scalars(
                select(DrillEvent).where(DrillEvent.drill_id == drill_id).order_by(DrillEvent.n)
            )
        )


async def get_drill(session_factory: SessionFactory, drill_id: int) -> Drill:
    async with session_factory() as session:
        return await session.get_one(Drill, drill_id)


async def drill_alert_ids(session_factory: SessionFactory, drill_id: int) -> dict[int, int]:
    """``{n: alert id}`` of the drill's created events."""
    async with session_factory() as session:
        rows = await session.execute(
            select(DrillEvent.n, Event.alert_id)
            .join(Event, Event.id == DrillEvent.event_id)
            .where(DrillEvent.drill_id == drill_id)
        )
        return {n: alert_id for n, alert_id in rows if alert_id is not None}


async def alert_of_device(session_factory: SessionFactory, device_id: int, *, drill: bool) -> Alert:
    async with session_factory() as session:
        return (
            await session.scalars(
                select(Alert)
                .where(Alert.device_id == device_id, Alert.drill.is_(drill))
                .order_by(Alert.id.desc())
            )
        ).first() or _missing(device_id, drill)


def _missing(device_id: int, drill: bool) -> Alert:
    raise AssertionError(f"no {'drill' if drill else 'real'} alert of device {device_id}")

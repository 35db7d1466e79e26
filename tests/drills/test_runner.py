"""Drill events are created inside the pipeline (DESIGN §2.3, §12), on schedule, exactly once.

Each due row of a drill becomes one event keyed ``drill:<drill_id>:<n>``: no counter, no
reception, the device neither marked as heard nor its replay window moved; its alert is a drill
pointing at its drill. A row handed over twice (a restart between the commit and the mark) is
still one event. Rows fall due over the spread; a device with a real alert open, or disabled
meanwhile, is skipped with the reason.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from alertnet.db import unit_of_work
from alertnet.drills.runner import REAL_ALERT_OPEN_NOTE, drill_key
from alertnet.ingest.outcomes import Disposition
from alertnet.ingest.sources import SourceEvent, SourceKind
from alertnet.models import (
    Alert,
    AlertAudit,
    AlertCategory,
    Device,
    Event,
    Quarantine,
    Reception,
    Transport,
)
from tests.dispatch.helpers import T0, SessionFactory, at
from tests.support.factories import create_alert

from .helpers import build_town, drill_rows, drill_runner, get_drill, start


async def test_each_due_row_becomes_one_drill_event_and_alert_with_its_key(
    session_factory: SessionFactory,
) -> None:
    town = await build_town(
        session_factory, last_transport="mqtt", window_highest=41, window_seen=1
    )
    async with session_factory() as session:
        before = {
            d.id: (d.last_seen_at, d.last_transport) for d in await session.scalars(select(Device))
        }
    drill_id = await start(session_factory, town, 3)
    async with drill_runner(session_factory) as runner:
        assert await runner.step(now=at(1)) is None  # nothing left to fall due

    rows = await drill_rows(session_factory, drill_id)
    assert [(row.n, row.state) for row in rows] == [(1, "created"), (2, "created"), (3, "created")]
    assert (await get_drill(session_factory, drill_id)).state == "complete"
    async with session_factory() as session:
        events = list(await session.scalars(select(Event).order_by(Event.id)))
        assert sorted(event.dedup_key for event in events) == [
            drill_key(drill_id, n) for n in (1, 2, 3)
        ]
        assert {row.event_id for row in rows} == {event.id for event in events}
        for event in events:
            assert (event.counter, event.drill, event.reception_count) == (None, True, 0)
            assert event.first_transport == Transport.DRILL
            assert event.received_at == at(1)
        assert await session.scalar(select(func.count()).select_from(Reception)) == 0
        # The devices heard nothing: last seen, transport and replay window as they were.
        for device in await session.scalars(select(Device)):
            assert (device.last_seen_at, device.last_transport) == before[device.id]
            assert device.window_highest == 41
        alerts = list(await session.scalars(select(Alert).order_by(Alert.id)))
        assert len(alerts) == 3
        assert all(alert.drill and alert.drill_id == drill_id for alert in alerts)
        assert {alert.category for alert in alerts} == {"panic"}
        assert {alert.opened_at for alert in alerts} == {at(1)}
        reasons = set(
            await session.scalars(select(AlertAudit.reason).where(AlertAudit.from_state.is_(None)))
        )
        assert all(f"drill #{drill_id}" in reason and "disp" in reason for reason in reasons)


async def test_a_row_handed_over_again_after_a_restart_is_still_one_event(
    session_factory: SessionFactory,
) -> None:
    """The pipeline committed the event, then the process died before the row was marked:
    the next pass hands it over again and gets the stored event back as a duplicate."""
    town = await build_town(session_factory)
    drill_id = await start(session_factory, town, ["bazaar"])
    async with drill_runner(session_factory) as runner:
        first = await runner._pipeline.submit_event(  # what the dead pass had handed over
            SourceEvent(
                device_id=town.devices["bazaar"],
                dedup_key=drill_key(drill_id, 1),
                kind=SourceKind.ALARM,
                code="panic",
                transport=Transport.DRILL,
                received_at=at(0),
                category=AlertCategory.PANIC,
                drill=True,
                drill_id=drill_id,
                reception=False,
                heard=False,
            )
        )
        assert first.disposition is Disposition.NEW
        assert (await drill_rows(session_factory, drill_id))[0].state == "pending"
        await runner.step(now=at(2))

    [row] = await drill_rows(session_factory, drill_id)
    assert (row.state, row.event_id) == ("created", first.event_id)
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Event)) == 1
        assert await session.scalar(select(func.count()).select_from(Alert)) == 1
        assert await session.scalar(select(Event.reception_count)) == 0


async def test_rows_fall_due_over_the_spread(session_factory: SessionFactory) -> None:
    town = await build_town(session_factory)
    drill_id = await start(session_factory, town, 3, spread_s=60)
    rows = await drill_rows(session_factory, drill_id)
    assert [row.due_at for row in rows] == [T0, at(30), at(60)]
    async with drill_runner(session_factory) as runner:
        assert await runner.step(now=at(0)) == at(30)
        assert [r.state for r in await drill_rows(session_factory, drill_id)] == [
            "created",
            "pending",
            "pending",
        ]
        assert (await get_drill(session_factory, drill_id)).state == "running"
        assert await runner.step(now=at(29)) == at(30)
        assert await runner.step(now=at(45)) == at(60)
        assert await runner.step(now=at(60)) is None
    async with session_factory() as session:
        opened = sorted(await session.scalars(select(Alert.opened_at)))
    assert opened == [at(0), at(45), at(60)]
    drill = await get_drill(session_factory, drill_id)
    assert (drill.state, drill.ended_at) == ("complete", at(60))


async def test_a_device_with_a_real_alert_or_disabled_meanwhile_is_skipped(
    session_factory: SessionFactory,
) -> None:
    town = await build_town(session_factory)
    drill_id = await start(session_factory, town, ["bazaar", "school", "metro"])
    async with unit_of_work(session_factory) as session:
        bazaar = await session.get_one(Device, town.devices["bazaar"])
        await create_alert(session, bazaar, state="accepted", opened_at=at(0))  # a real one
        school = await session.get_one(Device, town.devices["school"])
        school.status = "disabled"
    async with drill_runner(session_factory) as runner:
        await runner.step(now=at(1))

    rows = {row.n: row for row in await drill_rows(session_factory, drill_id)}
    assert (rows[1].state, rows[1].note) == ("skipped", REAL_ALERT_OPEN_NOTE)
    assert rows[2].state == "skipped" and "disabled" in rows[2].note
    assert rows[3].state == "created"
    assert (await get_drill(session_factory, drill_id)).state == "complete"
    async with session_factory() as session:
        drills = await session.scalar(select(func.count()).select_from(Alert).where(Alert.drill))
        assert drills == 1
        # The refused event is kept as data, like any refused input (DESIGN §6.5).
        assert await session.scalar(select(Quarantine.reason)) == "disabled_device"


async def test_a_stopped_drill_creates_no_more_events(session_factory: SessionFactory) -> None:
    from alertnet.drills.service import DRILL_STOPPED_NOTE, stop_drill

    town = await build_town(session_factory)
    drill_id = await start(session_factory, town, 3, spread_s=600)
    async with drill_runner(session_factory) as runner:
        await runner.step(now=at(0))
        async with unit_of_work(session_factory) as session:
            await stop_drill(session, drill_id, now=at(10))
        assert await runner.step(now=at(700)) is None
    rows = await drill_rows(session_factory, drill_id)
    assert [row.state for row in rows] == ["created", "skipped", "skipped"]
    assert rows[1].note == DRILL_STOPPED_NOTE
    drill = await get_drill(session_factory, drill_id)
    assert (drill.state, drill.ended_at) == ("stopped", at(10))
    assert drill.started_at + timedelta(seconds=10) == drill.ended_at


def _drill_event(device_id: int, drill_id: int, n: int, when: float) -> SourceEvent:
    """The event a pass hands to the pipeline for row ``n`` (as ``DrillRunner`` builds it)."""
    return SourceEvent(
        device_id=device_id,
        dedup_key=drill_key(drill_id, n),
        kind=SourceKind.ALARM,
        code="panic",
        transport=Transport.DRILL,
        received_at=at(when),
        category=AlertCategory.PANIC,
        drill=True,
        drill_id=drill_id,
        reception=False,
        heard=False,
    )


async def test_a_drill_event_never_opens_beside_a_real_alert_that_opened_after_the_read(
    session_factory: SessionFactory,
) -> None:
    """The pass read the row before the real alert opened (here: the event handed over after
    the real alert, as a racing pass would): the pipeline itself opens no drill alert beside the
    real one, and the row ends skipped, not created."""
    town = await build_town(session_factory)
    drill_id = await start(session_factory, town, ["bazaar"])
    async with unit_of_work(session_factory) as session:
        bazaar = await session.get_one(Device, town.devices["bazaar"])
        real = await create_alert(session, bazaar, category="panic", state="new", opened_at=at(0))
    async with drill_runner(session_factory) as runner:
        outcome = await runner._pipeline.submit_event(
            _drill_event(town.devices["bazaar"], drill_id, 1, 1)
        )
        assert (outcome.disposition, outcome.alert_id) == (Disposition.NEW, None)
        await runner.step(now=at(2))  # the row is handed over again: a duplicate, no alert
    [row] = await drill_rows(session_factory, drill_id)
    assert (row.state, row.note) == ("skipped", REAL_ALERT_OPEN_NOTE)
    async with session_factory() as session:
        assert list(await session.scalars(select(Alert.id))) == [real.id]


async def test_an_in_flight_event_of_a_stopped_drill_leaves_its_row_skipped(
    session_factory: SessionFactory,
) -> None:
    from alertnet.drills.service import DRILL_STOPPED_NOTE, stop_drill

    town = await build_town(session_factory)
    drill_id = await start(session_factory, town, ["bazaar"])
    async with drill_runner(session_factory) as runner:
        outcome = await runner._pipeline.submit_event(  # handed over, answer not yet recorded
            _drill_event(town.devices["bazaar"], drill_id, 1, 0)
        )
        assert outcome.event_id is not None
        async with unit_of_work(session_factory) as session:
            await stop_drill(session, drill_id, now=at(1))
        await runner._record({(drill_id, 1): outcome.event_id}, {}, at(2))
    [row] = await drill_rows(session_factory, drill_id)
    assert (row.state, row.note, row.event_id) == ("skipped", DRILL_STOPPED_NOTE, None)

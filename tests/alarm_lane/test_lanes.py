"""Alarms never wait for heartbeats in the pipeline (DESIGN §6.6, issue 18 "Alarms never wait").

The urgent lane commits an alarm while a large routine batch is held in its transaction by a
row lock the test holds (PostgreSQL); on SQLite, whose single writer makes the lanes take
turns, an alarm still overtakes a queued heartbeat backlog, and the two lanes never trip over
each other ("database is locked" would show as a failed, retried batch). Either lane puts
back what it held when ``run()`` is stopped mid-transaction, or while still collecting a batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.ingest.pipeline import BatchResult, Disposition, Outcome, Pipeline, RawUplink
from alertnet.metrics import Metrics
from alertnet.models import Alert, Device, Transport
from alertnet.protocol import EventCode, Uplink
from tests.ingest.helpers import running_pipeline
from tests.support.factories import create_device
from tests.support.polling import eventually

SessionFactory = async_sessionmaker[AsyncSession]

POSTGRES_ONLY = pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)
ROUTINE_BATCH = 200
#: Bounds a hang only: every outcome here comes within a second on a quiet machine.
OUTCOME_TIMEOUT_S = 30.0


async def _devices(session_factory: SessionFactory, count: int) -> list[Device]:
    async with unit_of_work(session_factory) as session:
        return [await create_device(session) for _ in range(count)]


def _uplink(device: Device, counter: int, event: EventCode) -> RawUplink:
    frame = Uplink.build(device.key, device.eui, counter, event)
    return RawUplink(frame.to_bytes(), Transport.MQTT, topic_eui=device.eui)


def _heartbeats(
    pipeline: Pipeline, devices: Sequence[Device], rounds: int
) -> list[asyncio.Future[Outcome]]:
    return [
        pipeline.submit(_uplink(device, counter, EventCode.HEARTBEAT))
        for counter in range(1, rounds + 1)
        for device in devices
    ]


async def _waiting_on_locks(session_factory: SessionFactory) -> int:
    """Backends of this database blocked on a lock (PostgreSQL)."""
    async with session_factory() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return int(waiting or 0)


async def _alerts(session_factory: SessionFactory) -> int:
    async with session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(Alert)) or 0)


def _failed_batches(metrics: Metrics) -> float:
    return metrics.registry.get_sample_value("alertnet_ingest_batch_failures_total") or 0.0


@pytest.mark.parametrize("db_url", [POSTGRES_ONLY], indirect=True)
async def test_an_alarm_commits_while_a_routine_batch_is_held_in_its_transaction(
    engine: AsyncEngine, session_factory: SessionFactory
) -> None:
    [presser] = await _devices(session_factory, 1)
    beating = await _devices(session_factory, ROUTINE_BATCH)
    committed: list[BatchResult] = []

    async def on_commit(result: BatchResult) -> None:
        committed.append(result)

    lock = await engine.connect()
    transaction = await lock.begin()
    try:
        await lock.execute(
            select(Device.id).where(Device.id.in_([d.id for d in beating])).with_for_update()
        )
        async with running_pipeline(
            session_factory, max_batch=ROUTINE_BATCH, on_commit=on_commit
        ) as pipeline:
            # One full batch held in its transaction, another queued behind it.
            heartbeats = _heartbeats(pipeline, beating, rounds=2)
            await eventually(
                lambda: _waiting_on_locks(session_factory),
                awaiting="the routine batch to wait on the test's row lock",
            )
            press = pipeline.submit(_uplink(presser, 1, EventCode.PANIC))
            outcome = await asyncio.wait_for(press, OUTCOME_TIMEOUT_S)

            assert outcome.disposition is Disposition.NEW
            assert not any(heartbeat.done() for heartbeat in heartbeats)
            assert await _alerts(session_factory) == 1  # committed, seen by another session
            assert [result.opened_alert_ids for result in committed] == [[outcome.alert_id]]

            await transaction.rollback()
            outcomes = await asyncio.wait_for(asyncio.gather(*heartbeats), OUTCOME_TIMEOUT_S)
    finally:
        await lock.close()
    assert {o.disposition for o in outcomes} == {Disposition.HEARTBEAT}
    assert len(committed) >= 3  # the press, then both routine batches: on_commit for each


async def test_alarms_overtake_a_heartbeat_backlog_and_the_lanes_never_collide(
    db_url: str, session_factory: SessionFactory
) -> None:
    """Both databases; on SQLite the lanes take turns, never waiting on the backlog.

    A press is submitted as each of the first routine batches commits, so it meets the
    routine lane mid-backlog every time; each counts the heartbeats still unanswered when it
    is answered.
    """
    pressers = await _devices(session_factory, 5)
    beating = await _devices(session_factory, 50)
    metrics = Metrics()
    heartbeats: list[asyncio.Future[Outcome]] = []
    presses: list[asyncio.Future[Outcome]] = []
    unanswered_at_press: list[int] = []

    def count_unanswered(_press: asyncio.Future[Outcome]) -> None:
        unanswered_at_press.append(sum(not heartbeat.done() for heartbeat in heartbeats))

    async def on_commit(result: BatchResult) -> None:
        if result.opened_alert_ids or len(presses) == len(pressers):
            return
        press = pipeline.submit(_uplink(pressers[len(presses)], 1, EventCode.PANIC))
        press.add_done_callback(count_unanswered)
        presses.append(press)

    pipeline = Pipeline(session_factory, metrics=metrics, max_batch=100, on_commit=on_commit)
    runner = asyncio.create_task(pipeline.run())
    try:
        heartbeats += _heartbeats(pipeline, beating, rounds=80)  # 4,000 in 40 batches
        outcomes = await asyncio.wait_for(asyncio.gather(*heartbeats), OUTCOME_TIMEOUT_S)
        pressed = await asyncio.wait_for(asyncio.gather(*presses), OUTCOME_TIMEOUT_S)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)

    assert [press.disposition for press in pressed] == [Disposition.NEW] * len(pressers)
    # Behind the backlog, the first press would have found every heartbeat answered. On SQLite
    # it waits for one routine batch at most; on PostgreSQL the routine lane keeps committing
    # beside it (opening an alert is several heartbeat batches' work), hence only "half".
    assert unanswered_at_press[0] >= 4_000 // 2, unanswered_at_press
    assert {o.disposition for o in outcomes} == {Disposition.HEARTBEAT}
    assert _failed_batches(metrics) == 0
    assert await _alerts(session_factory) == len(pressers)


@pytest.mark.parametrize("db_url", [POSTGRES_ONLY], indirect=True)
async def test_both_lanes_put_back_what_they_held_when_run_stops(
    engine: AsyncEngine, session_factory: SessionFactory
) -> None:
    [presser, beating] = await _devices(session_factory, 2)
    pipeline = Pipeline(session_factory, metrics=Metrics())
    lock = await engine.connect()
    transaction = await lock.begin()
    await lock.execute(select(Device.id).with_for_update())
    first = asyncio.create_task(pipeline.run())
    press = pipeline.submit(_uplink(presser, 1, EventCode.PANIC))
    heartbeat = pipeline.submit(_uplink(beating, 1, EventCode.HEARTBEAT))
    try:
        await eventually(
            lambda: _waiting_on_locks(session_factory),
            lambda waiting: waiting >= 2,
            awaiting="both lanes to wait on the test's row lock",
        )
        first.cancel()  # as a stop would; a crash takes the same way out
        await asyncio.gather(first, return_exceptions=True)
    finally:
        await transaction.rollback()
        await lock.close()
    assert not press.done() and not heartbeat.done()
    second = asyncio.create_task(pipeline.run())
    try:
        outcomes = await asyncio.wait_for(asyncio.gather(press, heartbeat), OUTCOME_TIMEOUT_S)
    finally:
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)
    assert [o.disposition for o in outcomes] == [Disposition.NEW, Disposition.HEARTBEAT]


async def test_a_lane_stopped_while_collecting_puts_back_what_it_took(
    session_factory: SessionFactory,
) -> None:
    """The routine lane holds a heartbeat while it waits for more to fill its batch; a stop
    (or the other lane's crash) then must not lose it."""
    beating = await _devices(session_factory, 2)
    pipeline = Pipeline(session_factory, metrics=Metrics(), max_batch=2, max_wait_s=3600.0)
    first = asyncio.create_task(pipeline.run())
    held = pipeline.submit(_uplink(beating[0], 1, EventCode.HEARTBEAT))
    try:
        await eventually(
            lambda: not pipeline._routine.queue,  # no public sign of a lane's collecting
            awaiting="the routine lane to take the heartbeat and wait for a second",
        )
    finally:
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
    assert not held.done()
    assert pipeline.oldest_wait_s() > 0, "the heartbeat the lane held is not back in line"
    second = asyncio.create_task(pipeline.run())
    try:
        filling = pipeline.submit(_uplink(beating[1], 1, EventCode.HEARTBEAT))  # a full batch
        outcomes = await asyncio.wait_for(asyncio.gather(held, filling), OUTCOME_TIMEOUT_S)
    finally:
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)
    assert [o.disposition for o in outcomes] == [Disposition.HEARTBEAT] * 2

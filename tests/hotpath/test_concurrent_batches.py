"""Ingest batches that meet on the same devices (issue 18, DESIGN §13): never a deadlock.

Two pipelines with their own engines stand for two ingest processes. One's cache is stale for
a device; were its compare-and-set to lock only the devices it writes and lock the stale one
afterwards, the two would wait on each other in a circle (PostgreSQL). A race lost anyway
(deadlock, serialization failure) is retried as the whole batch, not split. On SQLite the
batch holds the single write lock from its first read, so a change another writer commits
meanwhile can never be overwritten by what the batch read before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import alertnet.ingest.batch as batch_module
from alertnet import db
from alertnet.db import create_engine, create_session_factory, unit_of_work
from alertnet.ingest.device_cache import DeviceFacts
from alertnet.ingest.pipeline import BatchResult, Disposition, Pipeline, RawUplink
from alertnet.metrics import Metrics
from alertnet.models import Device, DeviceStatus, Transport
from alertnet.protocol import EventCode, Uplink
from tests.support.factories import create_device
from tests.support.polling import eventually

SessionFactory = async_sessionmaker[AsyncSession]

POSTGRES_ONLY = pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)
SQLITE_ONLY = pytest.param("sqlite", id="sqlite")
#: Bounds a hang only: every outcome here comes within a second on a quiet machine.
OUTCOME_TIMEOUT_S = 30.0


def _frame(device: Device, counter: int, event: EventCode = EventCode.HEARTBEAT) -> RawUplink:
    uplink = Uplink.build(device.key, device.eui, counter, event, battery=50)
    return RawUplink(uplink.to_bytes(), Transport.MQTT, topic_eui=device.eui)


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


@pytest.mark.parametrize("db_url", [POSTGRES_ONLY], indirect=True)
async def test_a_stale_cache_never_deadlocks_two_processes(
    db_url: str, session_factory: SessionFactory
) -> None:
    async with unit_of_work(session_factory) as session:
        first = await create_device(session)
        second = await create_device(session)
    assert first.id < second.id
    # The plan of a production-sized table: devices reached by primary key, in id order.
    by_index = {"server_settings": {"enable_seqscan": "off"}}
    engines = [create_engine(db_url, connect_args=by_index) for _ in range(2)]
    stale, fresh = (Pipeline(create_session_factory(e), metrics=Metrics()) for e in engines)
    try:
        await stale.process([_frame(first, 1), _frame(second, 1)])  # caches both at 1
        await fresh.process([_frame(first, 2)])  # ``stale`` is now stale for ``first`` only
        async with session_factory() as holder, holder.begin():
            # Any other transaction holding ``first`` for a moment (the other lane, a batch).
            await holder.execute(
                select(Device.id).where(Device.id == first.id).with_for_update(key_share=True)
            )
            fresh_batch = asyncio.create_task(fresh.process([_frame(first, 3), _frame(second, 3)]))
            await eventually(
                lambda: _waiting_on_locks(session_factory),
                awaiting="the fresh process's batch to wait on the first device",
            )
            stale_batch = asyncio.create_task(stale.process([_frame(first, 4), _frame(second, 4)]))
            await eventually(
                lambda: _waiting_on_locks(session_factory),
                lambda waiting: waiting >= 2,
                awaiting="the stale process's batch to wait on the first device too",
            )
        results = await asyncio.wait_for(
            asyncio.gather(fresh_batch, stale_batch, return_exceptions=True), OUTCOME_TIMEOUT_S
        )
    finally:
        for engine in engines:
            await engine.dispose()
    assert [type(result) for result in results] == [BatchResult, BatchResult], results
    for result in results:
        assert isinstance(result, BatchResult)
        assert [o.disposition for o in result.outcomes] == [Disposition.HEARTBEAT] * 2


async def _a_real_deadlock(engine: AsyncEngine, devices: Sequence[Device]) -> DBAPIError:
    """Two transactions locking two devices in opposite orders: PostgreSQL's 40P01."""
    one = await engine.connect()
    other = await engine.connect()
    try:
        await one.begin()
        await other.begin()
        lock = text("SELECT id FROM devices WHERE id = :id FOR NO KEY UPDATE")
        await one.execute(lock, {"id": devices[0].id})
        await other.execute(lock, {"id": devices[1].id})
        results = await asyncio.gather(
            one.execute(lock, {"id": devices[1].id}),
            other.execute(lock, {"id": devices[0].id}),
            return_exceptions=True,
        )
    finally:
        await one.close()
        await other.close()
    [deadlock] = [result for result in results if isinstance(result, DBAPIError)]
    assert db.is_retryable(deadlock) and not db.is_transient(deadlock)
    return deadlock


@pytest.mark.parametrize("db_url", [POSTGRES_ONLY], indirect=True)
async def test_a_batch_that_lost_a_race_is_retried_whole(
    engine: AsyncEngine, session_factory: SessionFactory
) -> None:
    async with unit_of_work(session_factory) as session:
        devices = [await create_device(session) for _ in range(5)]
    deadlock = await _a_real_deadlock(engine, devices)
    pipeline = Pipeline(session_factory, metrics=Metrics(), max_batch=len(devices))
    process = pipeline.process
    tried: list[int] = []

    async def losing_three_races(
        raws: Sequence[RawUplink], items: Sequence[object] | None = None
    ) -> BatchResult:
        tried.append(len(raws))
        if len(tried) <= 3:
            raise deadlock
        return await process(raws, items)  # type: ignore[arg-type]

    pipeline.process = losing_three_races  # type: ignore[method-assign]
    heartbeats = [pipeline.submit(_frame(device, 1)) for device in devices]
    runner = asyncio.create_task(pipeline.run())
    try:
        outcomes = await asyncio.wait_for(asyncio.gather(*heartbeats), OUTCOME_TIMEOUT_S)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    assert [o.disposition for o in outcomes] == [Disposition.HEARTBEAT] * len(devices)
    assert tried == [len(devices)] * 4  # three lost races, then the same batch, never split


@pytest.mark.parametrize("db_url", [SQLITE_ONLY], indirect=True)
async def test_no_change_slips_between_a_batchs_read_and_its_write(
    db_url: str, session_factory: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite: an offline device takes the slow path (read, then written back); the admin's
    disable, tried in between, must wait for the batch rather than be overwritten by it."""
    async with unit_of_work(session_factory) as session:
        device = await create_device(session, status=DeviceStatus.OFFLINE)
    admin_engine = create_engine(db_url)
    read_devices = batch_module.read_devices
    admin_refused: list[bool] = []

    async def read_then_admin_disables(
        session: AsyncSession, euis: Sequence[str], ids: Sequence[int], *, lock: bool
    ) -> list[DeviceFacts]:
        facts = await read_devices(session, euis, ids, lock=lock)
        if lock and not admin_refused:
            async with admin_engine.connect() as admin:
                await admin.exec_driver_sql("PRAGMA busy_timeout = 100")
                await admin.commit()
                try:
                    async with admin.begin():
                        await admin.execute(
                            update(Device)
                            .where(Device.id == device.id)
                            .values(status=DeviceStatus.DISABLED)
                        )
                    admin_refused.append(False)
                except OperationalError as exc:
                    assert "locked" in str(exc)
                    admin_refused.append(True)
        return facts

    monkeypatch.setattr(batch_module, "read_devices", read_then_admin_disables)
    try:
        result = await Pipeline(session_factory, metrics=Metrics()).process(
            [_frame(device, 1, EventCode.PANIC)]
        )
    finally:
        await admin_engine.dispose()
    async with session_factory() as session:
        status = await session.scalar(select(Device.status).where(Device.id == device.id))
    assert admin_refused == [True], "the disable committed between the batch's read and write"
    assert (result.outcomes[0].disposition, status) == (Disposition.NEW, DeviceStatus.ACTIVE)

"""The ingest pipeline outlives any batch that cannot commit, and its quarantine fallback too.

Issue 12: when the fallback itself raised, the pipeline task died and every later uplink hung.
Here the database really refuses: first the ``receptions`` table is gone (each accepted uplink
fails alone and is quarantined as ``processing_error``), then ``quarantine`` is gone as well
(nothing can be stored: the uplink is still answered, the failure logged and counted). Each
time the next uplink is answered as usual. A fresh PostgreSQL database per test, since its
schema is broken on purpose.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from alertnet.db import create_engine, create_session_factory, unit_of_work
from alertnet.ingest.pipeline import Disposition, Outcome, Pipeline, RawUplink
from alertnet.metrics import Metrics
from alertnet.models import Quarantine, Transport
from alertnet.protocol import EventCode, Reason, Uplink
from tests.ingest.helpers import EUI, KEY
from tests.support import services
from tests.support.database import migrate
from tests.support.factories import create_device
from tests.support.polling import eventually
from tests.support.postgres import temporary_database

pytestmark = pytest.mark.postgres

OUTCOME_TIMEOUT_S = 20.0


@pytest_asyncio.fixture
async def scratch_engine() -> AsyncIterator[AsyncEngine]:
    services.require_postgres()
    async with temporary_database(prefix="alertnet_survival") as url:
        await migrate(url)
        engine = create_engine(url)
        try:
            yield engine
        finally:
            await engine.dispose()


def _press(counter: int) -> RawUplink:
    return RawUplink(Uplink.build(KEY, EUI, counter, EventCode.PANIC).to_bytes(), Transport.MQTT)


async def test_a_batch_that_can_never_commit_is_quarantined_and_ingest_goes_on(
    scratch_engine: AsyncEngine,
) -> None:
    session_factory = create_session_factory(scratch_engine)
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)
    metrics = Metrics()
    pipeline = Pipeline(session_factory, metrics=metrics)
    task = asyncio.create_task(pipeline.run())
    try:

        async def answer(raw: RawUplink) -> Outcome:
            return await asyncio.wait_for(pipeline.submit(raw), OUTCOME_TIMEOUT_S)

        async with scratch_engine.begin() as connection:
            await connection.execute(text("ALTER TABLE receptions RENAME TO receptions_away"))
        stuck = await answer(_press(1))
        assert (stuck.disposition, stuck.reason) == (
            Disposition.QUARANTINED,
            Reason.PROCESSING_ERROR,
        )
        junk = await answer(RawUplink(b"\x01\x02", Transport.MQTT))
        assert junk.reason is Reason.BAD_LENGTH
        async with session_factory() as session:
            rows = (await session.execute(select(Quarantine.reason, Quarantine.raw))).all()
        assert [(r.reason, r.raw) for r in rows] == [
            ("processing_error", _press(1).payload),
            ("bad_length", b"\x01\x02"),
        ]

        async with scratch_engine.begin() as connection:
            await connection.execute(text("ALTER TABLE quarantine RENAME TO quarantine_away"))
        lost = await answer(_press(2))
        assert lost.reason is Reason.PROCESSING_ERROR
        assert "nor stored" in lost.detail
        errors = metrics.registry.get_sample_value(
            "alertnet_loop_errors_total", {"loop": "quarantine"}
        )
        assert errors == 2  # the full row, then the bare one

        async with scratch_engine.begin() as connection:
            await connection.execute(text("ALTER TABLE receptions_away RENAME TO receptions"))
            await connection.execute(text("ALTER TABLE quarantine_away RENAME TO quarantine"))
        again = await answer(_press(3))
        assert again.disposition is Disposition.NEW
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_crashed_run_leaves_its_uplinks_for_the_next_run(
    scratch_engine: AsyncEngine,
) -> None:
    """Should ``run()`` end mid-batch, the next ``run()`` answers the uplinks it held."""
    session_factory = create_session_factory(scratch_engine)
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)
    pipeline = Pipeline(session_factory, metrics=Metrics())
    lock = await scratch_engine.connect()
    transaction = await lock.begin()
    await lock.execute(text("SELECT id FROM devices FOR UPDATE"))
    first = asyncio.create_task(pipeline.run())
    pending = [pipeline.submit(_press(counter)) for counter in (1, 2)]
    await eventually(
        lambda: pipeline.oldest_wait_s() >= 0.3,
        awaiting="the held uplinks to have waited 0.3 s",
        interval_s=0.05,
    )
    first.cancel()  # as a stop would; a crash takes the same way out
    await asyncio.gather(first, return_exceptions=True)
    await transaction.rollback()
    await lock.close()
    second = asyncio.create_task(pipeline.run())
    try:
        outcomes = await asyncio.wait_for(asyncio.gather(*pending), OUTCOME_TIMEOUT_S)
    finally:
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)
    assert [o.disposition for o in outcomes] == [Disposition.NEW, Disposition.NEW]

"""The ingest device cache (issue 18): fast, and never wrong about a device (DESIGN §2.3, §13).

Each pipeline below has its own engine, as two ingest processes would. Whatever one of them
cached, a change another writer commits (disable, re-key, a mahalla's risk) decides the very
next frame, and frames of one device spread over both pipelines are each counted once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from sqlalchemy import inspect, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import create_engine, create_session_factory, unit_of_work
from alertnet.ingest.device_cache import DeviceCache, DeviceFacts
from alertnet.ingest.pipeline import Disposition, Outcome, Pipeline, RawUplink
from alertnet.metrics import Metrics
from alertnet.models import Alert, Device, Event, Mahalla, Quarantine, Transport
from alertnet.protocol import EventCode, ReplayWindow, Uplink
from tests.support.database import downgrade, migrate
from tests.support.factories import create_device, create_mahalla

SessionFactory = async_sessionmaker[AsyncSession]

KEY = bytes(range(16))
NEW_KEY = bytes(range(16, 32))
EUI = "70b3d57ed0c0ffee"
HEARD = frozenset({Disposition.NEW, Disposition.HEARTBEAT})


@pytest_asyncio.fixture
async def pipelines(db_url: str) -> AsyncIterator[tuple[Pipeline, Pipeline]]:
    """Two pipelines on one database, each with its own engine (two processes' worth)."""
    engines = [create_engine(db_url), create_engine(db_url)]
    try:
        yield (
            Pipeline(create_session_factory(engines[0]), metrics=Metrics()),
            Pipeline(create_session_factory(engines[1]), metrics=Metrics()),
        )
    finally:
        for engine in engines:
            await engine.dispose()


async def _device(session_factory: SessionFactory, risk: str = "red") -> Device:
    async with unit_of_work(session_factory) as session:
        mahalla = await create_mahalla(session, risk=risk)
        return await create_device(session, eui=EUI, key=KEY, mahalla_id=mahalla.id)


def _frame(counter: int, event: EventCode = EventCode.HEARTBEAT, key: bytes = KEY) -> RawUplink:
    uplink = Uplink.build(key, EUI, counter, event, battery=counter % 100)
    return RawUplink(uplink.to_bytes(), Transport.MQTT, topic_eui=EUI)


async def _send(pipeline: Pipeline, *frames: RawUplink) -> list[Outcome]:
    return (await pipeline.process(list(frames))).outcomes


async def _change(session_factory: SessionFactory, **values: object) -> None:
    """Another writer (the admin API, the CLI, a hand-typed UPDATE) changes the device."""
    async with unit_of_work(session_factory) as session:
        await session.execute(update(Device).where(Device.eui == EUI).values(**values))


async def _revisions(session_factory: SessionFactory) -> dict[str, int]:
    async with unit_of_work(session_factory) as session:
        rows = await session.execute(select(Device.eui, Device.revision))
        return {eui: revision for eui, revision in rows}


async def test_the_revision_moves_with_what_ingest_caches_and_not_with_its_writes(
    session_factory: SessionFactory,
) -> None:
    device = await _device(session_factory)
    async with unit_of_work(session_factory) as session:
        other = await create_device(session, eui="70b3d57ed0000002", key=KEY)
    assert await _revisions(session_factory) == {EUI: 0, other.eui: 0}
    await _change(
        session_factory,
        window_highest=9,
        window_seen=1,
        last_seen_at=datetime.now(UTC),
        battery=50,
        last_transport="http",
        last_gateway_id="gw-1",
        status="active",  # set to what it is: no change
    )
    assert await _revisions(session_factory) == {EUI: 0, other.eui: 0}
    await _change(session_factory, status="disabled")
    await _change(session_factory, key=NEW_KEY)
    await _change(session_factory, lat=device.lat + 0.01)
    assert await _revisions(session_factory) == {EUI: 3, other.eui: 0}
    async with unit_of_work(session_factory) as session:
        mahalla = update(Mahalla).where(Mahalla.id == device.mahalla_id)
        await session.execute(mahalla.values(name="renamed"))
        assert (await _revisions(session_factory))[EUI] == 3
        await session.execute(mahalla.values(risk="green"))
    assert await _revisions(session_factory) == {EUI: 4, other.eui: 0}


async def test_a_warm_cache_commits_what_a_cold_read_does(
    session_factory: SessionFactory, pipelines: tuple[Pipeline, Pipeline]
) -> None:
    device = await _device(session_factory)
    pipeline, _other = pipelines
    cold = await _send(pipeline, _frame(1), _frame(2), _frame(3))
    warm = await _send(pipeline, _frame(5), _frame(4), _frame(5), _frame(6, EventCode.PANIC))
    assert [o.disposition for o in cold] == [Disposition.HEARTBEAT] * 3
    assert [o.disposition for o in warm] == [
        Disposition.HEARTBEAT,
        Disposition.HEARTBEAT,
        Disposition.DUPLICATE,
        Disposition.NEW,
    ]
    assert warm[3].alert_id is not None
    async with unit_of_work(session_factory) as session:
        stored = await session.get_one(Device, device.id)
        alert = await session.get_one(Alert, warm[3].alert_id)
    assert ReplayWindow.from_db(stored.window_highest, stored.window_seen) == ReplayWindow(
        6, 0b111111
    )
    assert (stored.battery, stored.last_transport, stored.revision) == (6, "mqtt", 0)
    assert stored.last_seen_at is not None
    assert alert.priority == 110  # panic in a red mahalla


@pytest.mark.parametrize("lanes", [False, True], ids=["two_processes", "two_lanes"])
async def test_two_pipelines_count_each_counter_of_one_device_once(
    session_factory: SessionFactory, pipelines: tuple[Pipeline, Pipeline], lanes: bool
) -> None:
    """Two processes, or the two lanes of one process (one cache, batches side by side)."""
    await _device(session_factory)
    first, second = (pipelines[0], pipelines[0]) if lanes else pipelines
    outcomes: dict[int, list[Disposition]] = {}
    presses = {c for c in range(1, 61) if c % 7 == 0}

    def frames(counters: Sequence[int]) -> list[RawUplink]:
        return [
            _frame(c, EventCode.PANIC if c in presses else EventCode.HEARTBEAT) for c in counters
        ]

    for start in range(1, 61, 6):  # both see every counter, in their own order, at once
        counters = list(range(start, start + 6))
        batches = await asyncio.gather(
            _send(first, *frames(counters)), _send(second, *frames(counters[::-1]))
        )
        for batch, order in zip(batches, (counters, counters[::-1]), strict=True):
            for counter, outcome in zip(order, batch, strict=True):
                outcomes.setdefault(counter, []).append(outcome.disposition)
    for counter, seen in outcomes.items():
        assert sorted(seen) == sorted([Disposition.DUPLICATE, *(HEARD & set(seen))]), counter
        assert len(HEARD & set(seen)) == 1 and len(seen) == 2, (counter, seen)
    async with unit_of_work(session_factory) as session:
        stored = await session.scalar(select(Device).where(Device.eui == EUI))
        events = (await session.scalars(select(Event.counter))).all()
        alerts = (await session.scalars(select(Alert.press_count))).all()
        quarantined = await session.scalar(select(Quarantine.id).limit(1))
    assert stored is not None
    assert ReplayWindow.from_db(stored.window_highest, stored.window_seen) == ReplayWindow(
        60, (1 << 60) - 1
    )
    assert sorted(events) == sorted(presses)
    assert alerts == [len(presses)]
    assert quarantined is None


async def test_disable_and_rekey_decide_the_next_frame_of_a_warm_cache(
    session_factory: SessionFactory, pipelines: tuple[Pipeline, Pipeline]
) -> None:
    await _device(session_factory)
    _first, warm = pipelines
    assert [o.disposition for o in await _send(warm, _frame(1))] == [Disposition.HEARTBEAT]

    await _change(session_factory, status="disabled")
    (refused,) = await _send(warm, _frame(2))
    assert (refused.disposition, refused.reason) == (Disposition.QUARANTINED, "disabled_device")
    await _change(session_factory, status="active")
    assert [o.disposition for o in await _send(warm, _frame(3))] == [Disposition.HEARTBEAT]

    await _change(session_factory, key=NEW_KEY)
    old_key, new_key = await _send(warm, _frame(4), _frame(5, key=NEW_KEY))
    assert (old_key.disposition, old_key.reason) == (Disposition.QUARANTINED, "bad_mic")
    assert new_key.disposition is Disposition.HEARTBEAT
    assert new_key.device_key == NEW_KEY  # its ack is signed with the new key
    (again,) = await _send(warm, _frame(6, key=NEW_KEY))
    assert again.disposition is Disposition.HEARTBEAT


async def test_a_new_key_is_accepted_even_when_the_cache_holds_the_old_one(
    session_factory: SessionFactory, pipelines: tuple[Pipeline, Pipeline]
) -> None:
    await _device(session_factory)
    _first, warm = pipelines
    await _send(warm, _frame(1))
    await _change(session_factory, key=NEW_KEY)
    (outcome,) = await _send(warm, _frame(2, EventCode.PANIC, key=NEW_KEY))
    assert outcome.disposition is Disposition.NEW


async def test_a_mahalla_risk_change_reaches_a_warm_cache(
    session_factory: SessionFactory, pipelines: tuple[Pipeline, Pipeline]
) -> None:
    device = await _device(session_factory, risk="red")
    _first, warm = pipelines
    await _send(warm, _frame(1))
    async with unit_of_work(session_factory) as session:
        await session.execute(
            update(Mahalla).where(Mahalla.id == device.mahalla_id).values(risk="green")
        )
    (press,) = await _send(warm, _frame(2, EventCode.PANIC))
    async with unit_of_work(session_factory) as session:
        alert = await session.get_one(Alert, press.alert_id)
    assert alert.priority == 100  # panic in a green mahalla: no risk bonus


async def test_a_device_offline_in_the_cache_comes_back_through_the_locked_path(
    session_factory: SessionFactory, pipelines: tuple[Pipeline, Pipeline]
) -> None:
    await _device(session_factory)
    _first, warm = pipelines
    await _send(warm, _frame(1))
    await _change(session_factory, status="offline")
    await _send(warm, _frame(2))
    assert [o.disposition for o in await _send(warm, _frame(3))] == [Disposition.HEARTBEAT]
    async with unit_of_work(session_factory) as session:
        stored = await session.scalar(select(Device).where(Device.eui == EUI))
    assert stored is not None and stored.status == "active" and stored.window_highest == 3


def _facts(eui: str) -> DeviceFacts:
    return DeviceFacts(1, eui, KEY, "active", None, None, 0.0, 0.0, None, None, 0, -1, 0)


def test_the_cache_forgets_the_least_recently_used_device_first() -> None:
    cache = DeviceCache(max_size=2)
    cache.put([_facts("a"), _facts("b")])
    assert cache.get("a") is not None  # "b" is now the least recently used
    cache.put([_facts("c")])
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (_facts("a"), None, _facts("c"))
    assert len(cache) == 2
    empty = DeviceCache(max_size=0)
    empty.put([_facts("a")])
    assert empty.get("a") is None


@pytest.mark.parametrize("risk_first", [False, True])
async def test_migration_0011_up_down_up(empty_db_url: str, risk_first: bool) -> None:
    engine = create_engine(empty_db_url)
    try:
        await migrate(empty_db_url, "0010")
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO mahallas (id, name, district, region, risk, households, "
                    "businesses, demo) VALUES (1, 'm', '', '', 'red', 0, 0, false)"
                )
            )
            await connection.execute(
                text(
                    "INSERT INTO devices (id, eui, kind, site, name, address, lat, lon, "
                    "mahalla_id, key, supervision_interval_s, status, window_highest, "
                    "window_seen, last_format, created_at, demo, silent, owner, street, notes, "
                    "contacts, camera_labels, camera_zones) VALUES (1, :eui, 'panic_button', "
                    "'public', '', '', 41.0, 69.0, 1, :key, 900, 'active', -1, 0, 'binary', "
                    ":at, false, false, '', '', '', '[]', '', '')"
                ),
                {"eui": EUI, "key": KEY, "at": datetime.now(UTC)},
            )
        await migrate(empty_db_url)
        async with engine.begin() as connection:
            if risk_first:
                await connection.execute(text("UPDATE mahallas SET risk = 'green'"))
            else:
                await connection.execute(text("UPDATE devices SET status = 'disabled'"))
            await connection.execute(text("UPDATE devices SET window_highest = 5, window_seen = 1"))
            revision = await connection.scalar(text("SELECT revision FROM devices"))
        assert revision == 1
        await downgrade(empty_db_url, "0010")
        async with engine.begin() as connection:  # the triggers went with the column
            await connection.execute(text("UPDATE devices SET status = 'active'"))
            await connection.execute(text("UPDATE mahallas SET risk = 'yellow'"))
            columns = await connection.run_sync(
                lambda sync: {column["name"] for column in inspect(sync).get_columns("devices")}
            )
        assert "revision" not in columns
        await migrate(empty_db_url)
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE devices SET key = :key"), {"key": NEW_KEY})
            assert await connection.scalar(text("SELECT revision FROM devices")) == 1
    finally:
        await engine.dispose()

"""Replaying one sniffed frame again and again raises one trouble, not one per copy (issue 12).

A replay (a counter below the anti-replay window) is quarantined and raises ``counter_reset`` on
the device's trouble alert (DESIGN §2.3). An attacker who replays a frame in a loop must not
open trouble after trouble nor flood the console's feed: the repeats merge into the open
trouble alert silently, each still kept in quarantine.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.ingest.pipeline import Disposition, RawUplink
from alertnet.models import Alert, AlertAudit, FeedItem, Quarantine, Transport
from alertnet.protocol import EventCode, Reason, Uplink
from tests.ingest.helpers import EUI, KEY, running_pipeline
from tests.support.factories import create_device

SessionFactory = async_sessionmaker[AsyncSession]
REPLAYS = 12


async def _feed_types(session_factory: SessionFactory) -> list[tuple[str, int | None]]:
    async with session_factory() as session:
        rows = await session.execute(
            select(FeedItem.type, FeedItem.alert_id).order_by(FeedItem.seq)
        )
        return [(row.type, row.alert_id) for row in rows]


async def test_repeated_replays_merge_into_the_open_trouble_alert(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY, kind="intrusion_alarm")
    sniffed = RawUplink(Uplink.build(KEY, EUI, 6, EventCode.PANIC).to_bytes(), Transport.MQTT)
    async with running_pipeline(session_factory) as pipeline:
        beyond = Uplink.build(KEY, EUI, 500, EventCode.HEARTBEAT).to_bytes()
        await pipeline.submit(RawUplink(beyond, Transport.MQTT))
        first = await pipeline.submit(sniffed)
        feed_after_first = await _feed_types(session_factory)
        # One at a time (a batch each) and a burst in one batch: both must merge.
        repeats = [await pipeline.submit(sniffed) for _ in range(REPLAYS)]
        burst = pipeline.process([sniffed] * REPLAYS)
        repeats += (await burst).outcomes
    assert first.reason is Reason.REPLAY
    assert {(o.disposition, o.reason) for o in repeats} == {
        (Disposition.QUARANTINED, Reason.REPLAY)
    }
    async with session_factory() as session:
        troubles = (await session.scalars(select(Alert).where(Alert.category == "trouble"))).all()
        audits = await session.scalar(select(func.count()).select_from(AlertAudit))
        kept = await session.scalar(select(func.count()).select_from(Quarantine))
    assert [(t.state, t.trouble) for t in troubles] == [("new", "counter_reset")]
    assert audits == 1  # opened once, never re-opened
    assert kept == 1 + 2 * REPLAYS  # every copy is still kept as data
    assert feed_after_first == [("alert.opened", troubles[0].id)]
    assert await _feed_types(session_factory) == feed_after_first


async def test_a_new_trouble_kind_on_the_open_alert_is_still_announced(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY, kind="intrusion_alarm")
    async with running_pipeline(session_factory) as pipeline:
        await pipeline.submit(
            RawUplink(Uplink.build(KEY, EUI, 500, EventCode.HEARTBEAT).to_bytes(), Transport.MQTT)
        )
        replay = Uplink.build(KEY, EUI, 6, EventCode.PANIC).to_bytes()
        await pipeline.submit(RawUplink(replay, Transport.MQTT))
        mains = Uplink.build(KEY, EUI, 501, EventCode.MAINS_LOST).to_bytes()
        await pipeline.submit(RawUplink(mains, Transport.MQTT))
    feed = await _feed_types(session_factory)
    assert [kind for kind, _alert in feed] == ["alert.opened", "alert.updated"]
    async with session_factory() as session:
        trouble = (await session.scalars(select(Alert))).one()
    assert trouble.trouble == "counter_reset,mains_lost"

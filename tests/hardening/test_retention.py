"""Retention (DESIGN §3, §14): quarantine rows go after 30 days, feed rows after 24 hours.

Before issue 12 quarantine was never pruned: a flood of junk grew the table without end.
``Retention`` runs as a supervised runtime task and deletes in chunks.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.ingest.outcomes import quarantine_row
from alertnet.ingest.pipeline import RawUplink
from alertnet.metrics import Metrics
from alertnet.models import FeedItem, Quarantine, Transport, utcnow
from alertnet.protocol import Reason
from alertnet.retention import Pruned, Retention

SessionFactory = async_sessionmaker[AsyncSession]


async def test_old_quarantine_and_feed_rows_are_deleted_and_recent_ones_kept(
    session_factory: SessionFactory,
) -> None:
    now = utcnow()
    quarantine_ages = [timedelta(days=d) for d in (45, 31, 30, 29, 0)]
    quarantine_ages[2] += timedelta(seconds=1)  # just past 30 days
    feed_ages = [timedelta(hours=h) for h in (48, 25, 23, 1)]
    async with unit_of_work(session_factory) as session:
        await session.execute(
            insert(Quarantine),
            [
                quarantine_row(
                    RawUplink(f"junk {i}".encode(), Transport.MQTT, received_at=now - age),
                    Reason.BAD_LENGTH,
                    "",
                    None,
                )
                for i, age in enumerate(quarantine_ages)
            ],
        )
        await session.execute(
            insert(FeedItem),
            [{"at": now - age, "type": "alert.updated", "data": {}} for age in feed_ages],
        )
    metrics = Metrics()
    retention = Retention(session_factory, metrics, chunk_rows=2)  # several chunks

    assert await retention.prune(now) == Pruned(quarantine=3, feed=2)
    assert await retention.prune(now) == Pruned(quarantine=0, feed=0)

    async with session_factory() as session:
        kept = (await session.scalars(select(Quarantine.raw).order_by(Quarantine.id))).all()
        feed = (await session.scalars(select(FeedItem.at).order_by(FeedItem.seq))).all()
    assert kept == [b"junk 3", b"junk 4"]
    assert feed == [now - timedelta(hours=23), now - timedelta(hours=1)]
    sample = metrics.registry.get_sample_value
    assert sample("alertnet_retention_deleted_rows_total", {"table": "quarantine"}) == 3
    assert sample("alertnet_retention_deleted_rows_total", {"table": "feed"}) == 2

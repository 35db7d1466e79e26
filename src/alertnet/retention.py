"""Retention: what alertnet keeps, and for how long (DESIGN §3, §14).

Quarantine rows are deleted 30 days after they were received, feed rows 24 hours after they
were written (a stream client further behind resyncs, ``alertnet.realtime.hub``). One periodic
task per process does it, in chunks of ``chunk_rows`` so that a long backlog never becomes one
huge transaction holding locks that ingest needs. Every process may run it: two deleting the
same old rows at once only find less to do.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from alertnet.db import unit_of_work
from alertnet.metrics import Metrics
from alertnet.models import FeedItem, Quarantine, utcnow

__all__ = ["FEED_RETENTION", "QUARANTINE_RETENTION", "Pruned", "Retention"]

log = logging.getLogger(__name__)

QUARANTINE_RETENTION: Final = timedelta(days=30)
FEED_RETENTION: Final = timedelta(hours=24)
PRUNE_INTERVAL_S: Final = 300.0
CHUNK_ROWS: Final = 5000


@dataclass(frozen=True, slots=True)
class Pruned:
    """Rows one pass deleted, per table."""

    quarantine: int
    feed: int


class Retention:
    """``run()`` is the long-lived task; ``prune()`` one pass."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        metrics: Metrics,
        *,
        interval_s: float = PRUNE_INTERVAL_S,
        chunk_rows: int = CHUNK_ROWS,
    ) -> None:
        self._session_factory = session_factory
        self._metrics = metrics
        self._interval_s = interval_s
        self._chunk_rows = chunk_rows

    async def run(self) -> None:
        while True:
            try:
                pruned = await self.prune()
                if pruned.quarantine or pruned.feed:
                    log.info(
                        "retention deleted %d quarantine and %d feed row(s)",
                        pruned.quarantine,
                        pruned.feed,
                    )
            except Exception:
                # The database may be away; the next pass deletes what this one could not.
                self._metrics.loop_errors.labels("retention").inc()
                log.exception("retention pass failed")
            await asyncio.sleep(self._interval_s)

    async def prune(self, now: datetime | None = None) -> Pruned:
        """Delete quarantine rows older than 30 days and feed rows older than 24 h."""
        now = now or utcnow()
        quarantine = await self._delete_older(
            Quarantine.id, Quarantine.received_at < now - QUARANTINE_RETENTION
        )
        self._metrics.retention_deleted.labels("quarantine").inc(quarantine)
        feed = await self._delete_older(FeedItem.seq, FeedItem.at < now - FEED_RETENTION)
        self._metrics.retention_deleted.labels("feed").inc(feed)
        return Pruned(quarantine=quarantine, feed=feed)

    async def _delete_older(
        self, key: InstrumentedAttribute[int], expired: ColumnElement[bool]
    ) -> int:
        deleted = 0
        while True:
            async with unit_of_work(self._session_factory) as session:
                keys = (
                    await session.scalars(
                        select(key).where(expired).order_by(key).limit(self._chunk_rows)
                    )
                ).all()
                if keys:
                    await session.execute(
                        delete(key.class_).where(key.in_(keys)),
                        execution_options={"synchronize_session": False},
                    )
            deleted += len(keys)
            if len(keys) < self._chunk_rows:
                return deleted

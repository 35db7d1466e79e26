"""Writing to the feed, the realtime outbox.

A feed row is inserted in the same transaction as the change it announces, so a client that
replays the feed from its last ``seq`` sees exactly what was committed, in order.

On PostgreSQL, two transactions could take sequence numbers 10 and 11 and commit 11 first; a
reader at that moment would move past 10 and never see it. Every feed writer therefore takes
one transaction-scoped advisory lock before inserting, so feed rows commit in ``seq`` order.
SQLite has a single writer and needs nothing.

Waking readers is not this module's job: on PostgreSQL a trigger on ``feed`` (migration 0002)
issues ``NOTIFY alertnet_feed`` delivered at commit; on SQLite the hub hooks session commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.models import FeedItem, utcnow

# An arbitrary constant naming the feed writers' advisory lock (pg_advisory_xact_lock key).
FEED_LOCK_KEY = 0x616C6E66

FEED_TYPES = frozenset(
    {
        "alert.opened",
        "alert.updated",
        # A note, an acknowledgement or a ticked plan step (alertnet.alerts.plans): console only.
        "alert.workflow",
        "offer.created",
        "offer.updated",
        "post.updated",
        "device.updated",
    }
)


@dataclass(frozen=True, slots=True)
class FeedMessage:
    type: str
    data: dict[str, Any]
    alert_id: int | None = None
    post_id: int | None = None
    mahalla_id: int | None = None

    def __post_init__(self) -> None:
        if self.type not in FEED_TYPES:
            raise ValueError(f"unknown feed type {self.type!r}")


async def append(session: AsyncSession, messages: Iterable[FeedMessage]) -> None:
    """Insert feed rows in the caller's transaction (one statement for the whole batch)."""
    now = utcnow()
    rows = [
        {
            "at": now,
            "type": message.type,
            "data": message.data,
            "alert_id": message.alert_id,
            "post_id": message.post_id,
            "mahalla_id": message.mahalla_id,
        }
        for message in messages
    ]
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(FEED_LOCK_KEY)))
    await session.execute(insert(FeedItem), rows)

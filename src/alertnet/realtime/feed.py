"""Writing to the feed, the realtime outbox.

A feed row is inserted in the same transaction as the change it announces, so a client that
replays the feed from its last ``seq`` sees exactly what was committed, in order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.models import FeedItem, utcnow

FEED_TYPES = frozenset(
    {
        "alert.opened",
        "alert.updated",
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
    if rows:
        await session.execute(insert(FeedItem), rows)

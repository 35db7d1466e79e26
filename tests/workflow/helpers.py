"""A small city for the workflow tests: one mahalla with a panic button, two dispatchers, an
admin, the mahalla's observer and a post's crew, and alerts made directly in the database.

The posts are off duty, so the running dispatcher never offers these alerts to anyone: what
the tests see is only what the workflow endpoints did.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.models import Device, FeedItem, utcnow
from tests.auth.helpers import Account, create_account
from tests.support.factories import create_alert, create_device, create_mahalla, create_post

SessionFactory = async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class City:
    admin: Account
    dispatcher: Account
    dispatcher_2: Account
    observer: Account
    crew: Account
    mahalla_id: int
    device_id: int
    post_id: int


async def create_city(session_factory: SessionFactory) -> City:
    async with unit_of_work(session_factory) as session:
        mahalla = await create_mahalla(session, name="Chorsu", risk="red")
        device = await create_device(session, mahalla_id=mahalla.id)
        post = await create_post(session, callsign="P-7", status="off_duty")
        return City(
            admin=await create_account(session, "admin1", "admin"),
            dispatcher=await create_account(session, "disp-a", "dispatcher"),
            dispatcher_2=await create_account(session, "disp-b", "dispatcher"),
            observer=await create_account(session, "obs", "observer", mahalla_name="Chorsu"),
            crew=await create_account(session, "crew7", "post", post_callsign="P-7"),
            mahalla_id=mahalla.id,
            device_id=device.id,
            post_id=post.id,
        )


async def new_alert(
    session_factory: SessionFactory,
    city: City,
    *,
    category: str = "panic",
    state: str = "escalated",
    escalated_at: datetime | None = None,
    **fields: Any,
) -> int:
    """An alert on the city's device; escalated (now) unless told otherwise."""
    if state == "escalated" and escalated_at is None:
        escalated_at = utcnow()
    async with unit_of_work(session_factory) as session:
        device = await session.get_one(Device, city.device_id)
        alert = await create_alert(
            session, device, category=category, state=state, escalated_at=escalated_at, **fields
        )
        return alert.id


async def feed_rows(session_factory: SessionFactory, kind: str) -> list[FeedItem]:
    async with session_factory() as session:
        return list(
            (
                await session.scalars(
                    select(FeedItem).where(FeedItem.type == kind).order_by(FeedItem.seq)
                )
            ).all()
        )

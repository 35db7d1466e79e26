"""Builders and checks shared by the dispatch tests: a map around one point, presses, invariants.

Time is injected: every test runs at a fixed instant ``T0`` and passes ``now`` explicitly, so
deadlines are crossed by asking for a later ``now``, never by sleeping.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.config import Settings
from alertnet.db import unit_of_work
from alertnet.dispatch.engine import Dispatcher
from alertnet.dispatch.geo import EARTH_RADIUS_M
from alertnet.dispatch.notifier import RecordingNotifier
from alertnet.models import Alert, AlertAudit, Device, FeedItem, Offer, Post
from tests.support.factories import DEFAULT_LAT, DEFAULT_LON, create_alert, create_device

SessionFactory = async_sessionmaker[AsyncSession]

T0 = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
OPEN = ("new", "offered", "accepted", "on_scene", "escalated")
ACTIVE = ("accepted", "on_scene")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def point(north_m: float = 0.0, east_m: float = 0.0) -> tuple[float, float]:
    """The point ``north_m`` north and ``east_m`` east of the base point (flat-earth offset,
    exact enough at the kilometre scale for the distances the tests compare)."""
    dlat = math.degrees(north_m / EARTH_RADIUS_M)
    dlon = math.degrees(east_m / (EARTH_RADIUS_M * math.cos(math.radians(DEFAULT_LAT))))
    return DEFAULT_LAT + dlat, DEFAULT_LON + dlon


def dispatcher(
    session_factory: SessionFactory, notifier: RecordingNotifier | None = None, **kwargs: Any
) -> Dispatcher:
    return Dispatcher(session_factory, Settings(), notifier or RecordingNotifier(), **kwargs)


async def make_posts(
    session_factory: SessionFactory,
    *specs: tuple[str, float, float],
    status: str = "available",
    location_at: datetime | None = T0,
) -> dict[str, int]:
    """Posts ``(callsign, north_m, east_m)`` with a fresh fix at ``T0``; ``{callsign: id}``."""
    ids: dict[str, int] = {}
    async with unit_of_work(session_factory) as session:
        for callsign, north_m, east_m in specs:
            lat, lon = point(north_m, east_m)
            post = Post(callsign=callsign, lat=lat, lon=lon, status=status, location_at=location_at)
            session.add(post)
            await session.flush()
            ids[callsign] = post.id
    return ids


async def press(
    session_factory: SessionFactory,
    *,
    north_m: float = 0.0,
    east_m: float = 0.0,
    category: str = "panic",
    opened_at: datetime = T0,
    counter: int = 1,
    **fields: Any,
) -> int:
    """What ingest leaves behind for a press: a device and its alert in state ``new``."""
    lat, lon = point(north_m, east_m)
    async with unit_of_work(session_factory) as session:
        device = await create_device(session, lat=lat, lon=lon)
        alert = await create_alert(
            session, device, category=category, last_counter=counter, opened_at=opened_at, **fields
        )
        return alert.id


async def get_alert(session_factory: SessionFactory, alert_id: int) -> Alert:
    async with session_factory() as session:
        alert = await session.get(Alert, alert_id)
        assert alert is not None
        return alert


async def get_post(session_factory: SessionFactory, post_id: int) -> Post:
    async with session_factory() as session:
        post = await session.get(Post, post_id)
        assert post is not None
        return post


async def device_of(session_factory: SessionFactory, alert_id: int) -> Device:
    async with session_factory() as session:
        alert = await session.get(Alert, alert_id)
        assert alert is not None
        device = await session.get(Device, alert.device_id)
        assert device is not None
        return device


async def offers_of(session_factory: SessionFactory, alert_id: int) -> list[Offer]:
    async with session_factory() as session:
        rows = await session.scalars(
            select(Offer).where(Offer.alert_id == alert_id).order_by(Offer.id)
        )
        return list(rows)


async def pending_offer(session_factory: SessionFactory, alert_id: int) -> Offer | None:
    pending = [o for o in await offers_of(session_factory, alert_id) if o.state == "pending"]
    assert len(pending) <= 1
    return pending[0] if pending else None


async def offered_to(session_factory: SessionFactory, alert_id: int) -> str | None:
    """The callsign of the post holding the alert's pending offer."""
    async with session_factory() as session:
        return await session.scalar(
            select(Post.callsign)
            .join(Offer, Offer.post_id == Post.id)
            .where(Offer.alert_id == alert_id, Offer.state == "pending")
        )


async def audit_of(session_factory: SessionFactory, alert_id: int) -> list[tuple[str | None, str]]:
    async with session_factory() as session:
        rows = await session.execute(
            select(AlertAudit.from_state, AlertAudit.to_state)
            .where(AlertAudit.alert_id == alert_id)
            .order_by(AlertAudit.id)
        )
        return [(from_state, to_state) for from_state, to_state in rows]


async def feed_types(session_factory: SessionFactory, alert_id: int | None = None) -> list[str]:
    async with session_factory() as session:
        query = select(FeedItem.type).order_by(FeedItem.seq)
        if alert_id is not None:
            query = query.where(FeedItem.alert_id == alert_id)
        return list(await session.scalars(query))


async def feed_items(session_factory: SessionFactory, kind: str) -> list[FeedItem]:
    async with session_factory() as session:
        return list(
            await session.scalars(
                select(FeedItem).where(FeedItem.type == kind).order_by(FeedItem.seq)
            )
        )


async def check_invariants(session: AsyncSession, *, allow_new: bool = False) -> list[str]:
    """Every DESIGN §6 dispatch invariant that does not hold right now, in words."""
    problems: list[str] = []
    for column, what in ((Offer.alert_id, "alert"), (Offer.post_id, "post")):
        rows = await session.execute(
            select(column, func.count())
            .where(Offer.state == "pending")
            .group_by(column)
            .having(func.count() > 1)
        )
        problems += [f"{what} {key} has {n} pending offers" for key, n in rows]
    rows = await session.execute(
        select(Alert.post_id, func.count())
        .where(Alert.state.in_(ACTIVE))
        .group_by(Alert.post_id)
        .having(func.count() > 1)
    )
    problems += [f"post {post_id} holds {n} alerts" for post_id, n in rows]

    pending_rows = await session.execute(
        select(Offer.alert_id, Offer.post_id).where(Offer.state == "pending")
    )
    pending_by_alert = {alert_id: post_id for alert_id, post_id in pending_rows}
    offered_trouble = await session.scalars(
        select(Offer.alert_id)
        .join(Alert, Alert.id == Offer.alert_id)
        .where(Alert.category == "trouble")
    )
    problems += [f"trouble alert {alert_id} was offered" for alert_id in offered_trouble]
    holders: dict[int, int] = {}
    alerts = list(await session.scalars(select(Alert)))
    drills = {alert.id for alert in alerts if alert.drill}
    for alert in alerts:
        has_pending = alert.id in pending_by_alert
        if alert.category == "trouble":
            continue
        if alert.state == "offered" and not has_pending:
            problems.append(f"alert {alert.id} offered without a pending offer")
        if alert.state != "offered" and has_pending:
            problems.append(f"alert {alert.id} is {alert.state} but has a pending offer")
        if alert.state in ACTIVE:
            if alert.post_id is None:
                problems.append(f"alert {alert.id} is {alert.state} without a post")
            else:
                holders[alert.post_id] = alert.id
        if alert.state == "new" and not allow_new:
            problems.append(f"alert {alert.id} is stuck in new")
    for post in await session.scalars(select(Post)):
        if post.id in holders and post.status != "busy":
            problems.append(
                f"post {post.callsign} holds alert {holders[post.id]} but is {post.status}"
            )
        if post.status == "busy" and post.id not in holders:
            problems.append(f"post {post.callsign} is busy without an alert")
        # DESIGN §4: a post holding a drill may be offered a real alert (never another drill).
        offered_to_post = [a for a, p in pending_by_alert.items() if p == post.id]
        if post.id in holders and offered_to_post:
            if holders[post.id] not in drills or offered_to_post[0] in drills:
                problems.append(f"post {post.callsign} holds an alert and a pending offer")
    return problems


async def assert_invariants(session_factory: SessionFactory, *, allow_new: bool = False) -> None:
    async with session_factory() as session:
        problems = await check_invariants(session, allow_new=allow_new)
    assert not problems, problems


def states(notices: Sequence[Any]) -> list[int]:
    return [int(notice.state) for notice in notices]

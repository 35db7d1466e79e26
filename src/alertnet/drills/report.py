"""How a drill went (DESIGN §12): per alert the time to offer, to accept and to on scene, per
post its answers and misses, and the drill as a whole.

Times are measured from the alert's opening (the drill event), as the handling statistics
measure a press (``dispatch.stats``): ``to_offer_s`` to its first offer, ``to_accept_s`` to its
first acceptance, ``to_on_scene_s`` to the first arrival, ``to_close_s`` to its closing by a post
(a cancelled alert has none); ``None`` for a stage not reached. A post's answers are its offers
of the drill's alerts by how they ended: ``accepted``, ``declined``, ``expired`` (no answer
before the deadline: each one is also listed under ``misses``), ``withdrawn`` (a dispatcher or a
real alert took it back: not an answer) and ``pending``. ``answer_s`` summarizes how long the
post took to accept or decline.

Reads only. Callers pass each answer through their ``Scope`` (``drills.api``): device names of
homes and businesses are not for observers (DESIGN §10).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.alerts.views import iso
from alertnet.auth.scope import Scope
from alertnet.dispatch.stats import summarize
from alertnet.drills.service import DRILL_CATEGORY
from alertnet.models import (
    Alert,
    AlertState,
    Device,
    Drill,
    DrillEvent,
    Event,
    Mahalla,
    Offer,
    OfferState,
    Post,
)

STAGES = ("to_offer_s", "to_accept_s", "to_on_scene_s", "to_close_s")
ANSWERS = (
    OfferState.ACCEPTED,
    OfferState.DECLINED,
    OfferState.EXPIRED,
    OfferState.WITHDRAWN,
    OfferState.PENDING,
)


def seconds_between(start: datetime, end: datetime | None) -> float | None:
    if end is None:
        return None
    return round(max(0.0, (end - start).total_seconds()), 3)


def stage_times(alert: Alert) -> dict[str, float | None]:
    """The alert's time to each stage, from its opening."""
    closed_at = alert.closed_at if alert.state == AlertState.CLOSED else None
    ends = (alert.first_offered_at, alert.accepted_at, alert.on_scene_at, closed_at)
    return {
        stage: seconds_between(alert.opened_at, end)
        for stage, end in zip(STAGES, ends, strict=True)
    }


def drill_summary(drill: Drill, mahalla_name: str | None) -> dict[str, Any]:
    """A drill as the list shows it."""
    return {
        "id": drill.id,
        "mahalla_id": drill.mahalla_id,
        "mahalla": mahalla_name,
        "started_by": drill.started_by,
        "started_at": iso(drill.started_at),
        "device_count": drill.device_count,
        "spread_s": drill.spread_s,
        "state": drill.state,
        "ended_at": iso(drill.ended_at),
    }


async def list_drills(
    session: AsyncSession, scope: Scope, *, limit: int = 50, before: int | None = None
) -> list[dict[str, Any]]:
    """The drills this scope sees, newest first, each with its events counted by state."""
    query = (
        select(Drill, Mahalla.name)
        .join(Mahalla, Mahalla.id == Drill.mahalla_id)
        .where(scope.mahallas())
        .order_by(Drill.id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(Drill.id < before)
    rows = (await session.execute(query)).all()
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    if rows:
        for drill_id, state, count in await session.execute(
            select(DrillEvent.drill_id, DrillEvent.state, func.count())
            .where(DrillEvent.drill_id.in_([drill.id for drill, _name in rows]))
            .group_by(DrillEvent.drill_id, DrillEvent.state)
        ):
            counts[drill_id][state] = count
    return [
        {
            **drill_summary(drill, name),
            "events": {
                state: counts[drill.id].get(state, 0) for state in ("pending", "created", "skipped")
            },
        }
        for drill, name in rows
    ]


async def drill_report(
    session: AsyncSession, drill: Drill, mahalla_name: str | None, scope: Scope
) -> dict[str, Any]:
    """The full report of one drill (the caller has checked the scope sees its mahalla)."""
    rows = (
        await session.execute(
            select(DrillEvent, Device, Event.alert_id)
            .join(Device, Device.id == DrillEvent.device_id)
            .outerjoin(Event, Event.id == DrillEvent.event_id)
            .where(DrillEvent.drill_id == drill.id)
            .order_by(DrillEvent.n)
        )
    ).all()
    alert_ids = sorted({alert_id for _row, _device, alert_id in rows if alert_id is not None})
    alerts = await _alerts(session, alert_ids)
    offers = await _offers(session, alert_ids)
    n_of_alert = {alert_id: row.n for row, _device, alert_id in rows if alert_id is not None}

    items = []
    for row, device, alert_id in rows:
        name, _lat, _lon = scope.shown_device(
            site=device.site, name=device.name, lat=device.lat, lon=device.lon
        )
        category = DRILL_CATEGORY.get(device.kind)
        item: dict[str, Any] = {
            "n": row.n,
            "due_at": iso(row.due_at),
            "state": row.state,
            "note": row.note,
            "done_at": iso(row.done_at),
            "device_eui": device.eui,
            "device_name": name,
            "device_site": device.site,
            "category": category.value if category else None,
            "alert_id": alert_id,
            "alert_state": None,
            "opened_at": None,
            "post": None,
            "outcome": None,
            "offers": 0,
            **dict.fromkeys(STAGES),
        }
        found = alerts.get(alert_id) if alert_id is not None else None
        if found is not None:
            alert, callsign = found
            item.update(
                alert_state=alert.state,
                opened_at=iso(alert.opened_at),
                post=callsign,
                outcome=alert.outcome,
                offers=sum(1 for offer, _callsign in offers if offer.alert_id == alert.id),
                **stage_times(alert),
            )
        items.append(item)

    by_post = scope.reads_post_figures()  # an observer: no post named (DESIGN §10)
    if not by_post:
        for item in items:
            item["post"] = None
    return {
        **drill_summary(drill, mahalla_name),
        "summary": _summary(rows, alerts),
        "alerts": items,
        "posts": _posts(offers, n_of_alert) if by_post else None,
    }


async def _alerts(
    session: AsyncSession, alert_ids: Sequence[int]
) -> dict[int, tuple[Alert, str | None]]:
    if not alert_ids:
        return {}
    rows = await session.execute(
        select(Alert, Post.callsign)
        .outerjoin(Post, Post.id == Alert.post_id)
        .where(Alert.id.in_(alert_ids))
    )
    return {alert.id: (alert, callsign) for alert, callsign in rows}


async def _offers(session: AsyncSession, alert_ids: Sequence[int]) -> list[tuple[Offer, str]]:
    if not alert_ids:
        return []
    rows = await session.execute(
        select(Offer, Post.callsign)
        .join(Post, Post.id == Offer.post_id)
        .where(Offer.alert_id.in_(alert_ids))
        .order_by(Offer.offered_at, Offer.id)
    )
    return [(offer, callsign) for offer, callsign in rows]


def _summary(rows: Sequence[Any], alerts: dict[int, tuple[Alert, str | None]]) -> dict[str, Any]:
    states = [row.state for row, _device, _alert_id in rows]
    reached = {stage: [] for stage in STAGES}  # type: dict[str, list[float]]
    by_state: dict[str, int] = defaultdict(int)
    never_accepted = 0
    for alert, _callsign in alerts.values():
        by_state[alert.state] += 1
        if alert.accepted_at is None:
            never_accepted += 1
        for stage, seconds in stage_times(alert).items():
            if seconds is not None:
                reached[stage].append(seconds)
    return {
        "events": len(states),
        "pending": states.count("pending"),
        "created": states.count("created"),
        "skipped": states.count("skipped"),
        "alerts": len(alerts),
        "alert_states": dict(sorted(by_state.items())),
        "never_accepted": never_accepted,
        **{stage: summarize(values) for stage, values in reached.items()},
    }


def _posts(offers: Sequence[tuple[Offer, str]], n_of_alert: dict[int, int]) -> list[dict[str, Any]]:
    posts: dict[int, dict[str, Any]] = {}
    answer_times: dict[int, list[float]] = defaultdict(list)
    for offer, callsign in offers:
        post = posts.setdefault(
            offer.post_id,
            {
                "post_id": offer.post_id,
                "post": callsign,
                "offers": 0,
                **{state.value: 0 for state in ANSWERS},
                "misses": [],
            },
        )
        post["offers"] += 1
        post[offer.state] += 1
        if offer.state in (OfferState.ACCEPTED, OfferState.DECLINED):
            seconds = seconds_between(offer.offered_at, offer.decided_at)
            if seconds is not None:
                answer_times[offer.post_id].append(seconds)
        if offer.state == OfferState.EXPIRED:
            post["misses"].append(
                {
                    "alert_id": offer.alert_id,
                    "n": n_of_alert.get(offer.alert_id),
                    "offered_at": iso(offer.offered_at),
                    "deadline_at": iso(offer.deadline_at),
                }
            )
    for post_id, post in posts.items():
        post["answer_s"] = summarize(answer_times[post_id])
    return sorted(posts.values(), key=lambda post: str(post["post"]))

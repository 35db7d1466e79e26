"""What dispatch shows: the offer resource of DESIGN §5, the ``offer.*`` and ``post.updated``
feed messages, and the composite reads of the console (an alert's full record, the posts it
could be assigned to) and of the tablet (its post, pending offer and held alert).

Reads only: nothing here locks, changes or commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.alerts.views import alert_views, iso
from alertnet.dispatch.eligibility import explain
from alertnet.dispatch.policy import ACTIVE_STATES, DispatchPolicy
from alertnet.models import (
    Alert,
    AlertAudit,
    Event,
    Offer,
    OfferState,
    Post,
    PostStatus,
    Reception,
)
from alertnet.posts.views import post_view
from alertnet.realtime.feed import FeedMessage, append


def offer_view(
    offer: Offer, callsign: str | None, alert_view: dict[str, Any] | None
) -> dict[str, Any]:
    """One offer as the API and the feed show it, with the alert it offers (or None)."""
    return {
        "id": offer.id,
        "alert_id": offer.alert_id,
        "post": callsign,
        "post_id": offer.post_id,
        "state": offer.state,
        "offered_at": iso(offer.offered_at),
        "deadline_at": iso(offer.deadline_at),
        "decided_at": iso(offer.decided_at),
        # A negative distance marks a dispatcher's assignment to a post with no location.
        "distance_m": round(offer.distance_m, 1) if offer.distance_m >= 0 else None,
        "reason": offer.reason,
        "alert": alert_view,
    }


async def offer_views(session: AsyncSession, offer_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """``{offer_id: {"id", "alert_id", "post", "state", …, "alert": {…}}}`` (DESIGN §5)."""
    if not offer_ids:
        return {}
    rows = (
        await session.execute(
            select(Offer, Post.callsign)
            .join(Post, Post.id == Offer.post_id)
            .where(Offer.id.in_(offer_ids))
        )
    ).all()
    alerts = await alert_views(session, sorted({offer.alert_id for offer, _ in rows}))
    return {
        offer.id: offer_view(offer, callsign, alerts.get(offer.alert_id))
        for offer, callsign in rows
    }


async def offer_message(
    session: AsyncSession,
    offer: Offer,
    kind: str,
    alert: Alert,
    *,
    callsign: str | None = None,
    alert_view: dict[str, Any] | None = None,
) -> FeedMessage:
    """An ``offer.*`` feed message, routed to the offered post's tablet."""
    await session.flush()
    if callsign is None:
        callsign = await session.scalar(select(Post.callsign).where(Post.id == offer.post_id))
    if alert_view is None:
        alert_view = (await alert_views(session, [alert.id]))[alert.id]
    return FeedMessage(
        kind,
        offer_view(offer, callsign, alert_view),
        alert_id=alert.id,
        post_id=offer.post_id,
        mahalla_id=alert.mahalla_id,
    )


async def feed_offer(session: AsyncSession, offer: Offer, kind: str, alert: Alert) -> None:
    await append(session, [await offer_message(session, offer, kind, alert)])


def post_message(post: Post) -> FeedMessage:
    """The ``post.updated`` feed message: the console's map and the post's own tablet."""
    return FeedMessage("post.updated", post_view(post), post_id=post.id)


async def feed_post(session: AsyncSession, post: Post) -> None:
    await session.flush()
    await append(session, [post_message(post)])


async def tablet_view(session: AsyncSession, post_id: int) -> dict[str, Any]:
    """The post with its pending offer and the alert it holds: what a tablet shows on load."""
    post = await session.get_one(Post, post_id)
    offer_id = await session.scalar(
        select(Offer.id).where(Offer.post_id == post_id, Offer.state == OfferState.PENDING)
    )
    offers = await offer_views(session, [offer_id] if offer_id else [])
    alert_id = await session.scalar(
        select(Alert.id).where(Alert.post_id == post_id, Alert.state.in_(ACTIVE_STATES))
    )
    alerts = await alert_views(session, [alert_id] if alert_id else [])
    return {
        "post": post_view(post),
        "offer": offers.get(offer_id) if offer_id else None,
        "alert": alerts.get(alert_id) if alert_id else None,
    }


async def alert_record(session: AsyncSession, alert: Alert) -> dict[str, Any]:
    """One alert with its audit trail, its offers and the receptions of each of its events."""
    view = (await alert_views(session, [alert.id]))[alert.id]
    audit = await session.scalars(
        select(AlertAudit).where(AlertAudit.alert_id == alert.id).order_by(AlertAudit.id)
    )
    offer_ids = (
        await session.scalars(select(Offer.id).where(Offer.alert_id == alert.id).order_by(Offer.id))
    ).all()
    offers = await offer_views(session, offer_ids)
    events = (
        await session.scalars(
            select(Event).where(Event.alert_id == alert.id).order_by(Event.occurred_at, Event.id)
        )
    ).all()
    receptions = (
        await session.scalars(
            select(Reception)
            .where(Reception.event_id.in_([event.id for event in events]))
            .order_by(Reception.id)
        )
    ).all()
    return {
        **view,
        "trouble": alert.trouble,
        "refusal_count": alert.refusal_count,
        "first_offered_at": iso(alert.first_offered_at),
        "accepted_at": iso(alert.accepted_at),
        "on_scene_at": iso(alert.on_scene_at),
        "closed_at": iso(alert.closed_at),
        "escalated_at": iso(alert.escalated_at),
        "outcome": alert.outcome,
        "note": alert.note,
        "audit": [
            {
                "at": iso(row.at),
                "actor": row.actor,
                "from": row.from_state,
                "to": row.to_state,
                "reason": row.reason,
            }
            for row in audit
        ],
        "offers": [
            {key: value for key, value in offers[offer_id].items() if key != "alert"}
            for offer_id in offer_ids
        ],
        "events": [
            {
                "counter": event.counter,
                "dedup_key": event.dedup_key,
                "code": event.code,
                # What the source said beyond the code: a DC-09 panel's zone, partition, code.
                "details": event.details or {},
                "drill": event.drill,
                "occurred_at": iso(event.occurred_at),
                "received_at": iso(event.received_at),
                "reception_count": event.reception_count,
                "best_rssi": event.best_rssi,
                "best_snr": event.best_snr,
                "gateways": [g for g in event.gateway_ids.split(",") if g],
                "receptions": [
                    {
                        "transport": r.transport,
                        "gateway_id": r.gateway_id,
                        "rssi": r.rssi,
                        "snr": r.snr,
                        "received_at": iso(r.received_at),
                    }
                    for r in receptions
                    if r.event_id == event.id
                ],
            }
            for event in events
        ],
    }


async def assign_candidates(
    session: AsyncSession, alert: Alert, now: datetime, policy: DispatchPolicy
) -> list[dict[str, Any]]:
    """Every post on duty, eligible ones first, each group nearest first, with its distance and
    ``dispatch.eligibility``'s verdict: what a dispatcher picks from when assigning."""
    return [
        row
        for row in await explain(session, alert, now, policy)
        if row["status"] != PostStatus.OFF_DUTY
    ]

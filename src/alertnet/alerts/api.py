"""Alerts and offers over HTTP: the console's queue and actions, the tablet's accept/decline.

Reads use the request's session and the caller's scope (a dispatcher sees all, an observer its
mahalla, a post what was offered to it). Every action goes through the dispatcher, which runs
it in one transaction and tells the device after the commit; the answer is the alert as it is
now.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import case, or_, select

from alertnet.alerts.views import alert_views, iso
from alertnet.auth.deps import (
    Actor,
    CurrentUser,
    DbSession,
    DispatcherActor,
    PostActor,
    ensure_mahalla_visible,
    own_post_id,
)
from alertnet.dispatch.geo import haversine_m
from alertnet.dispatch.service import offer_views, post_view
from alertnet.dispatch.stats import handling_stats
from alertnet.errors import Forbidden, InvalidInput, NotFound
from alertnet.models import (
    OPEN_ALERT_STATES,
    Alert,
    AlertAudit,
    AlertState,
    Event,
    Offer,
    Post,
    PostStatus,
    Reception,
    Role,
    utcnow,
)

router = APIRouter(prefix="/api/v1", tags=["alerts"])


class AssignIn(BaseModel):
    post_id: int


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class DeclineIn(BaseModel):
    reason: str = Field(default="", max_length=500)


class CloseIn(BaseModel):
    outcome: Literal["confirmed", "false_alarm", "no_one_found", "handed_over", "other"]
    note: str = Field(default="", max_length=2000)


async def _visible_alert(session: DbSession, actor: Actor, alert_id: int) -> Alert:
    """The alert if the caller may see it: 404 when it does not exist, 403 out of scope."""
    alert = await session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"no alert {alert_id}")
    if actor.role == Role.POST:
        offered = await session.scalar(
            select(Offer.id).where(Offer.alert_id == alert_id, Offer.post_id == actor.post_id)
        )
        if alert.post_id != actor.post_id and offered is None:
            raise Forbidden("this alert was never offered to your post")
    else:
        ensure_mahalla_visible(actor, alert.mahalla_id)
    return alert


async def _alert_now(request: Request, alert_id: int) -> dict[str, Any]:
    async with request.app.state.runtime.session_factory() as session:
        views = await alert_views(session, [alert_id])
    return views[alert_id]


@router.get("/alerts", summary="Alerts, open ones by default: escalated first, then priority, age")
async def list_alerts(
    session: DbSession,
    actor: CurrentUser,
    state: str = Query(default="open", description="open, closed, all, or one alert state"),
    category: str | None = None,
    mahalla_id: int | None = None,
    limit: int = Query(default=200, ge=1, le=1000),
) -> list[dict[str, Any]]:
    query = select(Alert.id)
    if state == "open":
        query = query.where(Alert.state.in_(OPEN_ALERT_STATES))
    elif state == "closed":
        query = query.where(Alert.state.in_((AlertState.CLOSED, AlertState.CANCELLED)))
    elif state != "all":
        if state not in set(AlertState):
            raise InvalidInput(f"unknown state {state!r}")
        query = query.where(Alert.state == state)
    if category is not None:
        query = query.where(Alert.category == category)
    if actor.role == Role.OBSERVER:
        query = query.where(Alert.mahalla_id == actor.mahalla_id)
    elif actor.role == Role.POST:
        offered = select(Offer.alert_id).where(Offer.post_id == actor.post_id)
        query = query.where(or_(Alert.post_id == actor.post_id, Alert.id.in_(offered)))
    if mahalla_id is not None:
        ensure_mahalla_visible(actor, mahalla_id)
        query = query.where(Alert.mahalla_id == mahalla_id)
    escalated_first = case((Alert.state == AlertState.ESCALATED, 0), else_=1)
    ids = (
        await session.scalars(
            query.order_by(escalated_first, Alert.priority.desc(), Alert.opened_at, Alert.id).limit(
                limit
            )
        )
    ).all()
    views = await alert_views(session, ids)
    return [views[alert_id] for alert_id in ids]


@router.get("/alerts/{alert_id}", summary="One alert with audit trail, offers and receptions")
async def get_alert(alert_id: int, session: DbSession, actor: CurrentUser) -> dict[str, Any]:
    alert = await _visible_alert(session, actor, alert_id)
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
                "code": event.code,
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


@router.get(
    "/alerts/{alert_id}/candidates",
    summary="Posts a dispatcher could assign, nearest first, with distance and eligibility",
)
async def assign_candidates(
    alert_id: int, session: DbSession, actor: DispatcherActor
) -> list[dict[str, Any]]:
    alert = await _visible_alert(session, actor, alert_id)
    fresh_after = utcnow() - timedelta(seconds=300)
    rows = []
    for post in await session.scalars(select(Post).where(Post.status != PostStatus.OFF_DUTY)):
        distance_m = (
            haversine_m(alert.lat, alert.lon, post.lat, post.lon)
            if post.lat is not None and post.lon is not None
            else None
        )
        fresh = post.location_at is not None and post.location_at >= fresh_after
        rows.append(
            {
                **post_view(post),
                "distance_m": round(distance_m) if distance_m is not None else None,
                "location_fresh": fresh,
                "eligible": post.status == PostStatus.AVAILABLE and fresh,
            }
        )
    rows.sort(key=lambda row: (row["distance_m"] is None, row["distance_m"] or 0))
    return rows


@router.post("/alerts/{alert_id}/assign", summary="Offer the alert to a chosen post")
async def assign(
    alert_id: int, body: AssignIn, request: Request, actor: DispatcherActor
) -> dict[str, Any]:
    await request.app.state.runtime.dispatcher.assign(alert_id, body.post_id, actor.username)
    return await _alert_now(request, alert_id)


@router.post("/alerts/{alert_id}/cancel", summary="Cancel the alert, with a reason")
async def cancel(
    alert_id: int, body: ReasonIn, request: Request, actor: DispatcherActor
) -> dict[str, Any]:
    await request.app.state.runtime.dispatcher.cancel(alert_id, body.reason, actor.username)
    return await _alert_now(request, alert_id)


@router.post("/alerts/{alert_id}/arrive", summary="The post is on scene")
async def arrive(alert_id: int, request: Request, actor: PostActor) -> dict[str, Any]:
    await request.app.state.runtime.dispatcher.arrive(alert_id, own_post_id(actor), actor.username)
    return await _alert_now(request, alert_id)


@router.post("/alerts/{alert_id}/close", summary="Close the alert with an outcome and a note")
async def close(alert_id: int, body: CloseIn, request: Request, actor: PostActor) -> dict[str, Any]:
    await request.app.state.runtime.dispatcher.close(
        alert_id, own_post_id(actor), body.outcome, body.note or None, actor.username
    )
    return await _alert_now(request, alert_id)


@router.post("/offers/{offer_id}/accept", summary="Accept an offer: help is on the way")
async def accept(offer_id: int, request: Request, actor: PostActor) -> dict[str, Any]:
    await request.app.state.runtime.dispatcher.accept(offer_id, own_post_id(actor), actor.username)
    return await _offer_now(request, offer_id)


@router.post("/offers/{offer_id}/decline", summary="Decline an offer, with a reason")
async def decline(
    offer_id: int, body: DeclineIn, request: Request, actor: PostActor
) -> dict[str, Any]:
    await request.app.state.runtime.dispatcher.decline(
        offer_id, own_post_id(actor), body.reason or "declined", actor.username
    )
    return await _offer_now(request, offer_id)


@router.post("/offers/{offer_id}/withdraw", summary="Take a pending offer back (dispatcher)")
async def withdraw(offer_id: int, request: Request, actor: DispatcherActor) -> dict[str, Any]:
    await request.app.state.runtime.dispatcher.withdraw(offer_id, actor.username)
    return await _offer_now(request, offer_id)


@router.get("/stats/handling", summary="Handling-time percentiles per mahalla or per post")
async def stats(
    session: DbSession,
    actor: CurrentUser,
    days: float = Query(default=1, gt=0, le=366),
    group_by: Literal["mahalla", "post"] = "mahalla",
) -> list[dict[str, Any]]:
    if actor.role == Role.POST:
        raise Forbidden("posts do not read statistics")
    until = utcnow()
    rows = await handling_stats(
        session, since=until - timedelta(days=days), until=until, group_by=group_by
    )
    if actor.role == Role.OBSERVER:
        if group_by != "mahalla":
            raise Forbidden("an observer reads its own mahalla's figures only")
        rows = [row for row in rows if row.get("id") == actor.mahalla_id]
    return rows


async def _offer_now(request: Request, offer_id: int) -> dict[str, Any]:
    async with request.app.state.runtime.session_factory() as session:
        views = await offer_views(session, [offer_id])
    if offer_id not in views:
        raise NotFound(f"no offer {offer_id}")
    return views[offer_id]

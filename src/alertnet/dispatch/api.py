"""Dispatch over HTTP: the console's hand on alerts and posts (an alert's full record, assign
candidates, why each post is or is not eligible, assign, cancel, withdraw an offer, the post
list, handling statistics) and the
tablet's (its post, location and duty status, accept or decline an offer, arrive, close).

Reads use the request's session and the caller's scope (``actor.scope``). Every action goes
through the dispatcher, which runs it in one transaction and tells the device after the
commit; the answer is the alert, offer or post as it is now.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy import select

from alertnet.alerts.plans import workflow_of
from alertnet.alerts.silent import override_calls
from alertnet.alerts.views import alert_views
from alertnet.auth.deps import Actor, CurrentUser, DbSession, DispatcherActor, PostActor
from alertnet.auth.scope import Scope
from alertnet.dispatch import views
from alertnet.dispatch.eligibility import explain
from alertnet.dispatch.engine import Dispatcher
from alertnet.dispatch.locks import lock_alert
from alertnet.dispatch.policy import Outcome
from alertnet.dispatch.stats import handling_stats
from alertnet.errors import NotFound
from alertnet.models import Alert, Post, utcnow
from alertnet.posts.views import post_view
from alertnet.validation import Int32, Int64, SafeStr

router = APIRouter(prefix="/api/v1", tags=["dispatch"])


# Alerts and offers have 64-bit ids (BIGINT): a larger number is refused (422), never looked up.
RowId = Int64


class AssignIn(BaseModel):
    post_id: Int32


# Reasons and notes are stored as text: no NUL (alertnet.validation), line breaks allowed.
class ReasonIn(BaseModel):
    reason: Annotated[SafeStr, StringConstraints(min_length=1, max_length=500)]


class DeclineIn(BaseModel):
    reason: Annotated[SafeStr, StringConstraints(max_length=500)] = ""


class CloseIn(BaseModel):
    outcome: Outcome
    note: Annotated[SafeStr, StringConstraints(max_length=2000)] = ""


class LocationIn(BaseModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000)


class StatusIn(BaseModel):
    status: Literal["available", "off_duty"]


def _dispatcher(request: Request) -> Dispatcher:
    dispatcher: Dispatcher = request.app.state.runtime.dispatcher
    return dispatcher


async def _visible_alert(session: DbSession, actor: Actor, alert_id: int) -> Alert:
    """The alert if the caller may see it: 404 when it does not exist, 403 out of scope."""
    alert = await session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"no alert {alert_id}")
    await actor.scope.ensure_sees_alert(session, alert.id)
    return alert


# Every answer passes through the caller's scope (premises, call list: DESIGN §10).
async def _alert_now(request: Request, alert_id: int, scope: Scope) -> dict[str, Any]:
    async with request.app.state.runtime.session_factory() as session:
        found = await alert_views(session, [alert_id])
    return scope.shown_alert(found[alert_id])


async def _offer_now(request: Request, offer_id: int, scope: Scope) -> dict[str, Any]:
    async with request.app.state.runtime.session_factory() as session:
        found = await views.offer_views(session, [offer_id])
    if offer_id not in found:
        raise NotFound(f"no offer {offer_id}")
    return scope.shown_offer(found[offer_id])


async def _tablet_now(request: Request, post_id: int, scope: Scope) -> dict[str, Any]:
    async with request.app.state.runtime.session_factory() as session:
        tablet = await views.tablet_view(session, post_id)
    if tablet["offer"] is not None:
        tablet["offer"] = scope.shown_offer(tablet["offer"])
    if tablet["alert"] is not None:
        tablet["alert"] = scope.shown_alert(tablet["alert"])
    return tablet


# --- the console ------------------------------------------------------------------------------


@router.get("/alerts/{alert_id}", summary="One alert with audit trail, offers and receptions")
async def get_alert(alert_id: RowId, session: DbSession, actor: CurrentUser) -> dict[str, Any]:
    alert = await _visible_alert(session, actor, alert_id)
    record = actor.scope.shown_alert_record(await views.alert_record(session, alert))
    if actor.scope.reads_alert_workflow():
        # Notes, acknowledgements and the action plan with its ticks (DESIGN §10).
        record.update(await workflow_of(session, alert))
    return record


@router.get(
    "/alerts/{alert_id}/candidates",
    summary="Posts a dispatcher could assign, nearest first, with distance and eligibility",
)
async def assign_candidates(
    alert_id: RowId, request: Request, session: DbSession, actor: DispatcherActor
) -> list[dict[str, Any]]:
    alert = await _visible_alert(session, actor, alert_id)
    return await views.assign_candidates(session, alert, utcnow(), _dispatcher(request).policy)


@router.get(
    "/alerts/{alert_id}/eligibility",
    summary="Every post: eligible for the alert or not, and why (DESIGN §4)",
)
async def eligibility(
    alert_id: RowId, request: Request, session: DbSession, actor: DispatcherActor
) -> list[dict[str, Any]]:
    """Eligible posts first, nearest first. ``reason``: eligible, holds_drill (eligible: its
    drill gives way), off_duty, holds_this, holds_alert, offered_this, offered_other, busy,
    no_location, location_stale, too_far, decline_pause, expiry_pause, kept_for_real (a drill
    kept off a post owed a real alert); ``until`` the end of a pause or the time of a stale
    position; ``other_alert_id`` the alert a post holds or is offered."""
    alert = await _visible_alert(session, actor, alert_id)
    return await explain(session, alert, utcnow(), _dispatcher(request).policy)


@router.post("/alerts/{alert_id}/assign", summary="Offer the alert to a chosen post")
async def assign(
    alert_id: RowId, body: AssignIn, request: Request, actor: DispatcherActor
) -> dict[str, Any]:
    await _dispatcher(request).assign(alert_id, body.post_id, actor.username)
    return await _alert_now(request, alert_id, actor.scope)


@router.post("/alerts/{alert_id}/cancel", summary="Cancel the alert, with a reason")
async def cancel(
    alert_id: RowId, body: ReasonIn, request: Request, actor: DispatcherActor
) -> dict[str, Any]:
    await _dispatcher(request).cancel(alert_id, body.reason, actor.username)
    return await _alert_now(request, alert_id, actor.scope)


@router.post(
    "/alerts/{alert_id}/call-override",
    summary="Unlock calling the site of a silent alert, with a reason (audited)",
    responses={409: {"description": "the alert is not silent (code alert_not_silent)"}},
)
async def call_override(
    alert_id: RowId, body: ReasonIn, session: DbSession, actor: DispatcherActor
) -> dict[str, Any]:
    alert = await lock_alert(session, alert_id)
    if alert is None:
        raise NotFound(f"no alert {alert_id}")
    await override_calls(session, alert, actor=actor.username, reason=body.reason.strip())
    return actor.scope.shown_alert((await alert_views(session, [alert.id]))[alert.id])


@router.post("/offers/{offer_id}/withdraw", summary="Take a pending offer back (dispatcher)")
async def withdraw(offer_id: RowId, request: Request, actor: DispatcherActor) -> dict[str, Any]:
    await _dispatcher(request).withdraw(offer_id, actor.username)
    return await _offer_now(request, offer_id, actor.scope)


@router.get("/posts", summary="Every post with status and last position")
async def list_posts(session: DbSession, actor: DispatcherActor) -> list[dict[str, Any]]:
    posts = await session.scalars(select(Post).order_by(Post.callsign))
    return [post_view(post) for post in posts]


@router.get("/stats/handling", summary="Handling-time percentiles per mahalla or per post")
async def stats(
    session: DbSession,
    actor: CurrentUser,
    days: float = Query(default=1, gt=0, le=366),
    group_by: Literal["mahalla", "post"] = "mahalla",
) -> list[dict[str, Any]]:
    actor.scope.ensure_reads_statistics(per=group_by)
    until = utcnow()
    rows = await handling_stats(
        session, since=until - timedelta(days=days), until=until, group_by=group_by
    )
    if group_by == "mahalla":
        rows = [row for row in rows if actor.scope.sees_mahalla(row["id"])]
    return rows


# --- the tablet -------------------------------------------------------------------------------


@router.get("/posts/me", summary="The tablet's post, its pending offer and its current alert")
async def get_me(request: Request, actor: PostActor) -> dict[str, Any]:
    return await _tablet_now(request, actor.scope.own_post_id(), actor.scope)


@router.post("/posts/me/location", summary="Report the post's position (every few seconds)")
async def report_location(request: Request, body: LocationIn, actor: PostActor) -> dict[str, Any]:
    post_id = actor.scope.own_post_id()
    await _dispatcher(request).report_location(post_id, body.lat, body.lon, body.accuracy_m)
    return await _tablet_now(request, post_id, actor.scope)


@router.post("/posts/me/status", summary="Go available or off duty")
async def set_status(request: Request, body: StatusIn, actor: PostActor) -> dict[str, Any]:
    post_id = actor.scope.own_post_id()
    await _dispatcher(request).set_post_status(post_id, body.status, actor.username)
    return await _tablet_now(request, post_id, actor.scope)


@router.post("/offers/{offer_id}/accept", summary="Accept an offer: help is on the way")
async def accept(offer_id: RowId, request: Request, actor: PostActor) -> dict[str, Any]:
    post_id = actor.scope.own_post_id()
    await _dispatcher(request).accept(offer_id, post_id, actor.username)
    return await _offer_now(request, offer_id, actor.scope)


@router.post("/offers/{offer_id}/decline", summary="Decline an offer, with a reason")
async def decline(
    offer_id: RowId, body: DeclineIn, request: Request, actor: PostActor
) -> dict[str, Any]:
    await _dispatcher(request).decline(
        offer_id, actor.scope.own_post_id(), body.reason or "declined", actor.username
    )
    return await _offer_now(request, offer_id, actor.scope)


@router.post("/alerts/{alert_id}/arrive", summary="The post is on scene")
async def arrive(alert_id: RowId, request: Request, actor: PostActor) -> dict[str, Any]:
    post_id = actor.scope.own_post_id()
    await _dispatcher(request).arrive(alert_id, post_id, actor.username)
    return await _alert_now(request, alert_id, actor.scope)


@router.post("/alerts/{alert_id}/close", summary="Close the alert with an outcome and a note")
async def close(
    alert_id: RowId, body: CloseIn, request: Request, actor: PostActor
) -> dict[str, Any]:
    await _dispatcher(request).close(
        alert_id, actor.scope.own_post_id(), body.outcome, body.note or None, actor.username
    )
    return await _alert_now(request, alert_id, actor.scope)

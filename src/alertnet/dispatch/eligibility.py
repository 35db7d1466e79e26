"""Whether a post is eligible for an alert, and why (DESIGN §4) — the rule in one place.

``judge`` decides: the dispatcher asks it for the post it has locked before every automatic
offer (``matching.claim_post``), and the console's "why eligible" list (``explain``, behind
``GET /alerts/{id}/eligibility``) shows its verdict for every post. The SQL filters beside it
(``post_can_take``, ``refusal_pause``) only narrow down which posts are worth locking and which
queued alerts are worth claiming; they never let through a post ``judge`` refuses.

A post is eligible for an alert when it is on duty, holds no alert and no pending offer that
keep it from this one, has a position no older than ``location_max_age_s``, is within
``max_distance_m`` and is not paused for this alert (``decline_pause_s`` after declining it,
``expiry_pause_s`` after letting an offer of it expire). Real before drill: a drill it holds or
is offered does not keep it from a real alert (it is eligible "as if available"; the drill
gives way), and a drill is not offered to a post eligible for a waiting real alert
(``owed_a_real_alert``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute, aliased

from alertnet.alerts.views import iso
from alertnet.dispatch.geo import bounding_box, haversine_m
from alertnet.dispatch.policy import ACTIVE_STATES, WAITING_STATES, DispatchPolicy
from alertnet.models import Alert, AlertCategory, Offer, OfferState, Post, PostStatus
from alertnet.posts.views import post_view


class Reason(StrEnum):
    """Why a post is (the first two) or is not eligible for an alert."""

    ELIGIBLE = "eligible"
    HOLDS_DRILL = "holds_drill"  # eligible for this real alert: its drill gives way
    OFF_DUTY = "off_duty"
    HOLDS_THIS = "holds_this"  # it has accepted this very alert
    HOLDS_ALERT = "holds_alert"  # busy with another alert (``other_alert_id``)
    OFFERED_THIS = "offered_this"  # this alert's pending offer is with it
    OFFERED_OTHER = "offered_other"  # it has a pending offer of another alert
    BUSY = "busy"  # status busy, holding nothing dispatch knows of
    NO_LOCATION = "no_location"
    LOCATION_STALE = "location_stale"  # ``until``: when the position was taken
    TOO_FAR = "too_far"
    DECLINE_PAUSE = "decline_pause"  # ``until``: when it may be asked again
    EXPIRY_PAUSE = "expiry_pause"  # ``until``: when it may be asked again
    KEPT_FOR_REAL = "kept_for_real"  # a drill: the post is eligible for a waiting real alert


ELIGIBLE_REASONS = frozenset({Reason.ELIGIBLE, Reason.HOLDS_DRILL})


@dataclass(frozen=True, slots=True)
class Holding:
    """An alert a post holds (accepted or on scene) or is offered (a pending offer)."""

    alert_id: int
    drill: bool


@dataclass(frozen=True, slots=True)
class Target:
    """What of an alert eligibility depends on."""

    id: int | None
    lat: float
    lon: float
    drill: bool

    @classmethod
    def of(cls, alert: Alert) -> Target:
        return cls(alert.id, alert.lat, alert.lon, alert.drill)


@dataclass(frozen=True, slots=True)
class PostFacts:
    """What the database says about one post, for one alert (its refusals of that alert)."""

    post: Post
    pending: Holding | None = None
    held: Holding | None = None
    declined_at: datetime | None = None
    expired_at: datetime | None = None

    @property
    def drill_gives_way(self) -> Holding | None:
        """The drill this post holds or is offered, which a real alert would displace."""
        for holding in (self.pending, self.held):
            if holding is not None and holding.drill:
                return holding
        return None


@dataclass(frozen=True, slots=True)
class Verdict:
    reason: Reason
    distance_m: float | None = None
    until: datetime | None = None  # end of a pause, or the time of a stale position
    other_alert_id: int | None = None

    @property
    def eligible(self) -> bool:
        return self.reason in ELIGIBLE_REASONS


def judge_post(facts: PostFacts, alert: Target, now: datetime, policy: DispatchPolicy) -> Verdict:
    """The verdict on what does not depend on where the alert is or who refused it: duty,
    what the post holds or is offered, its position's age. ``Reason.ELIGIBLE`` (or
    ``HOLDS_DRILL``) when nothing there keeps it from ``alert``."""
    post = facts.post
    if post.status == PostStatus.OFF_DUTY:
        return Verdict(Reason.OFF_DUTY)
    # A drill held or offered keeps a post only from other drills.
    if facts.held is not None:
        if facts.held.alert_id == alert.id:
            return Verdict(Reason.HOLDS_THIS)
        if alert.drill or not facts.held.drill:
            return Verdict(Reason.HOLDS_ALERT, other_alert_id=facts.held.alert_id)
    if facts.pending is not None:
        if facts.pending.alert_id == alert.id:
            return Verdict(Reason.OFFERED_THIS)
        if alert.drill or not facts.pending.drill:
            return Verdict(Reason.OFFERED_OTHER, other_alert_id=facts.pending.alert_id)
    if post.status != PostStatus.AVAILABLE and facts.held is None:
        return Verdict(Reason.BUSY)
    if post.lat is None or post.lon is None or post.location_at is None:
        return Verdict(Reason.NO_LOCATION)
    if post.location_at < policy.location_fresh_after(now):
        return Verdict(Reason.LOCATION_STALE, until=post.location_at)
    drill = facts.drill_gives_way
    if drill is not None:
        return Verdict(Reason.HOLDS_DRILL, other_alert_id=drill.alert_id)
    return Verdict(Reason.ELIGIBLE)


def judge(facts: PostFacts, alert: Target, now: datetime, policy: DispatchPolicy) -> Verdict:
    """Is the post eligible for ``alert`` at ``now``, and if not, why not (the first reason in
    the order of ``judge_post``, then distance, then the refusal pauses)."""
    verdict = judge_post(facts, alert, now, policy)
    post = facts.post
    if post.lat is None or post.lon is None:
        return verdict
    distance_m = haversine_m(alert.lat, alert.lon, post.lat, post.lon)
    if not verdict.eligible:
        return Verdict(verdict.reason, distance_m, verdict.until, verdict.other_alert_id)
    if distance_m > policy.max_distance_m:
        return Verdict(Reason.TOO_FAR, distance_m)
    if facts.declined_at is not None:
        until = policy.declined_pause_until(facts.declined_at)
        if now < until:
            return Verdict(Reason.DECLINE_PAUSE, distance_m, until)
    if facts.expired_at is not None:
        until = policy.expired_pause_until(facts.expired_at)
        if now < until:
            return Verdict(Reason.EXPIRY_PAUSE, distance_m, until)
    return Verdict(verdict.reason, distance_m, other_alert_id=verdict.other_alert_id)


# --- reading the facts ------------------------------------------------------------------------


async def read_facts(
    session: AsyncSession, alert_id: int | None, post_ids: Sequence[int] | None = None
) -> list[PostFacts]:
    """The facts of the posts ``post_ids`` (every post when None) in one statement, ordered by
    id; their refusals are those of ``alert_id`` (none when None).

    Call it after locking a post to read what every transaction committed before the lock.
    """
    pending = aliased(Offer)
    offered = aliased(Alert)
    held = aliased(Alert)
    refused = aliased(Offer)

    def last_refusal(state: OfferState) -> Any:
        return (
            select(func.max(refused.decided_at))
            .where(refused.alert_id == alert_id, refused.post_id == Post.id, refused.state == state)
            .scalar_subquery()
        )

    query = (
        select(
            Post,
            pending.alert_id,
            offered.drill,
            held.id,
            held.drill,
            last_refusal(OfferState.DECLINED),
            last_refusal(OfferState.EXPIRED),
        )
        .outerjoin(pending, and_(pending.post_id == Post.id, pending.state == OfferState.PENDING))
        .outerjoin(offered, offered.id == pending.alert_id)
        .outerjoin(held, and_(held.post_id == Post.id, held.state.in_(ACTIVE_STATES)))
        .order_by(Post.id)
        .execution_options(populate_existing=True)
    )
    if post_ids is not None:
        query = query.where(Post.id.in_(post_ids))
    rows = await session.execute(query)
    return [
        PostFacts(
            post,
            Holding(pending_id, bool(pending_drill)) if pending_id is not None else None,
            Holding(held_id, bool(held_drill)) if held_id is not None else None,
            declined_at,
            expired_at,
        )
        for post, pending_id, pending_drill, held_id, held_drill, declined_at, expired_at in rows
    ]


# --- the SQL filters: which posts and alerts are worth asking ``judge`` about ---------------


def post_can_take(
    post_id: Any,
    post_status: Any,
    *,
    drill: bool | ColumnElement[bool] | QueryableAttribute[bool],
) -> ColumnElement[bool]:
    """SQL: nothing the post holds or is offered keeps it from an alert that is a drill or not
    (``drill``: a Python bool, or the alert's column in an enclosing query), and its status
    allows it (available; busy with a drill, for a real alert).

    Every table but its own aliases is correlated, however deep the enclosing query puts the
    post and alert columns.
    """
    is_drill = (true() if drill else false()) if isinstance(drill, bool) else drill
    offer = aliased(Offer)
    offered = aliased(Alert)
    held = aliased(Alert)
    blocking_offer = (
        exists()
        .where(
            offer.post_id == post_id,
            offer.state == OfferState.PENDING,
            offered.id == offer.alert_id,
            or_(offered.drill.is_(False), is_drill),
        )
        .correlate_except(offer, offered)
    )
    blocking_hold = (
        exists()
        .where(
            held.post_id == post_id,
            held.state.in_(ACTIVE_STATES),
            or_(held.drill.is_(False), is_drill),
        )
        .correlate_except(held)
    )
    return and_(
        or_(post_status == PostStatus.AVAILABLE, and_(post_status == PostStatus.BUSY, ~is_drill)),
        ~blocking_offer,
        ~blocking_hold,
    )


def refusal_pause(
    alert_id: Any, post_id: Any, now: datetime, policy: DispatchPolicy
) -> ColumnElement[bool]:
    """SQL: at ``now`` the post is paused for the alert, having declined it or let an offer of
    it expire too recently (``judge``'s pauses, for queries over many alerts or posts).

    Every table but its own offers alias is correlated, however deep the enclosing query puts
    the alert and post columns.
    """
    offer = aliased(Offer)
    pause = exists().where(
        offer.alert_id == alert_id,
        offer.post_id == post_id,
        or_(
            and_(
                offer.state == OfferState.DECLINED,
                offer.decided_at > policy.declined_pause_since(now),
            ),
            and_(
                offer.state == OfferState.EXPIRED,
                offer.decided_at > policy.expired_pause_since(now),
            ),
        ),
    )
    return pause.correlate_except(offer)


async def owed_a_real_alert(
    session: AsyncSession, post: Post, now: datetime, policy: DispatchPolicy
) -> bool:
    """Whether the post (eligible for a drill) is within reach of a waiting real alert it is
    not paused for: then it gets no drill."""
    if post.lat is None or post.lon is None:
        return False
    box = bounding_box(post.lat, post.lon, policy.max_distance_m)
    rows = await session.execute(
        select(Alert.lat, Alert.lon).where(
            Alert.state.in_(WAITING_STATES),
            Alert.category != AlertCategory.TROUBLE,
            Alert.drill.is_(False),
            Alert.lat.between(box.min_lat, box.max_lat),
            Alert.lon.between(box.min_lon, box.max_lon),
            ~refusal_pause(Alert.id, post.id, now, policy),
        )
    )
    return any(
        haversine_m(lat, lon, post.lat, post.lon) <= policy.max_distance_m for lat, lon in rows
    )


# --- the console's "why eligible" ---------------------------------------------------------------


def verdict_view(
    facts: PostFacts, verdict: Verdict, now: datetime, policy: DispatchPolicy
) -> dict[str, Any]:
    """One post as the eligibility list shows it: the post resource, the verdict and its
    details (``until``: a pause's end, or when a stale position was taken)."""
    post = facts.post
    fresh = post.location_at is not None and post.location_at >= policy.location_fresh_after(now)
    return {
        **post_view(post),
        "eligible": verdict.eligible,
        "reason": verdict.reason.value,
        "distance_m": round(verdict.distance_m) if verdict.distance_m is not None else None,
        "until": iso(verdict.until),
        "other_alert_id": verdict.other_alert_id,
        "location_fresh": fresh,
    }


async def explain(
    session: AsyncSession, alert: Alert, now: datetime, policy: DispatchPolicy
) -> list[dict[str, Any]]:
    """Every post with ``judge``'s verdict on ``alert`` at ``now``: eligible posts first, each
    group nearest first (posts without a position last). A drill also says which eligible
    posts are kept for a waiting real alert."""
    target = Target.of(alert)
    rows: list[tuple[PostFacts, Verdict]] = []
    for facts in await read_facts(session, alert.id):
        verdict = judge(facts, target, now, policy)
        if (
            alert.drill
            and verdict.eligible
            and await owed_a_real_alert(session, facts.post, now, policy)
        ):
            verdict = Verdict(Reason.KEPT_FOR_REAL, verdict.distance_m)
        rows.append((facts, verdict))
    rows.sort(
        key=lambda row: (
            not row[1].eligible,
            row[1].distance_m is None,
            row[1].distance_m or 0.0,
            row[0].post.callsign,
        )
    )
    return [verdict_view(facts, verdict, now, policy) for facts, verdict in rows]

"""The queue passes the dispatch engine runs: serve the waiting queue (new and escalated alerts:
real ones before drills, then highest priority, then oldest) and expire offers past their
deadline.

Escalation is the console's queue, not a dead end: an escalated alert keeps being served to the
first post that is eligible for it. Deadlines and queues live in the database, so a restarted
or second process finds the same work; claims use ``FOR UPDATE SKIP LOCKED`` so two engines
split it instead of doing it twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.dispatch.eligibility import post_can_take, refusal_pause
from alertnet.dispatch.geo import half_extent_deg
from alertnet.dispatch.locks import claim_rows, lock_offer
from alertnet.dispatch.matching import (
    ENGINE_ACTOR,
    FreePost,
    free_posts,
    offer_or_escalate,
    paused_posts,
    refuse,
)
from alertnet.dispatch.notifier import StateNotice
from alertnet.dispatch.policy import DEFAULT_POLICY, WAITING_STATES, DispatchPolicy
from alertnet.dispatch.views import feed_offer
from alertnet.models import (
    Alert,
    AlertCategory,
    AlertState,
    Offer,
    OfferState,
    Post,
    utcnow,
)


@dataclass(frozen=True, slots=True)
class WaitingCursor:
    """Where a paged scan of the waiting queue stopped (real before drill, priority desc, then
    oldest)."""

    drill: bool
    priority: int
    opened_at: datetime
    alert_id: int


@dataclass(slots=True)
class BatchResult:
    """What a queue pass did; ``next_cursor`` is set when another page may be waiting."""

    notices: list[StateNotice] = field(default_factory=list)
    handled: int = 0
    next_cursor: WaitingCursor | None = None
    more: bool = False


def _servable(
    free: dict[int, FreePost], now: datetime, policy: DispatchPolicy
) -> ColumnElement[bool]:
    """SQL, correlated to the alert row: some post that can take it (a drill or not) has it
    within reach (by box) and is not paused for it. One statement text whatever the posts, so
    it stays a cached plan."""
    widest_lat = max(abs(post.lat) for post in free.values())
    dlat, dlon = half_extent_deg(widest_lat, policy.max_distance_m)
    return exists().where(
        Post.location_at >= policy.location_fresh_after(now),
        Alert.lat.between(Post.lat - dlat, Post.lat + dlat),
        Alert.lon.between(Post.lon - dlon, Post.lon + dlon),
        post_can_take(Post.id, Post.status, drill=Alert.drill),
        ~refusal_pause(Alert.id, Post.id, now, policy),
    )


def _after(cursor: WaitingCursor) -> ColumnElement[bool]:
    same_kind_after = or_(
        Alert.priority < cursor.priority,
        and_(
            Alert.priority == cursor.priority,
            or_(
                Alert.opened_at > cursor.opened_at,
                and_(Alert.opened_at == cursor.opened_at, Alert.id > cursor.alert_id),
            ),
        ),
    )
    if cursor.drill:
        return and_(Alert.drill.is_(True), same_kind_after)
    return or_(Alert.drill.is_(True), and_(Alert.drill.is_(False), same_kind_after))


async def dispatch_waiting(
    session: AsyncSession,
    now: datetime | None = None,
    *,
    states: Iterable[AlertState] = WAITING_STATES,
    policy: DispatchPolicy = DEFAULT_POLICY,
    limit: int = 16,
    after: WaitingCursor | None = None,
) -> BatchResult:
    """One page of the waiting queue (new and/or escalated alerts), real alerts before drills
    (DESIGN §4: a drill's "owed a real alert" check then sees which real alerts this page
    served), then highest priority first.

    Alerts are claimed with ``FOR UPDATE SKIP LOCKED``; each goes to its nearest eligible post,
    or (when new) to the escalated queue. Pass ``result.next_cursor`` back as ``after`` to
    continue. Escalated alerts are only read while some post is free, and only those a free
    post could take, so an idle tick costs two small queries whatever the queue's length.
    """
    now = now or utcnow()
    result = BatchResult()
    free = await free_posts(session, now, policy)
    wanted = set(states)
    if not free:
        wanted.discard(AlertState.ESCALATED)
    if not wanted:
        return result
    query = select(Alert).where(
        Alert.state.in_(sorted(wanted)), Alert.category != AlertCategory.TROUBLE
    )
    if after is not None:
        query = query.where(_after(after))
    if AlertState.ESCALATED in wanted:
        # Only escalated alerts that some free post could take: within its reach and not
        # paused for it. An escalated queue no free post can serve then costs one query.
        query = query.where(or_(Alert.state == AlertState.NEW, _servable(free, now, policy)))
    query = (
        query.order_by(Alert.drill, Alert.priority.desc(), Alert.opened_at, Alert.id)
        .limit(limit)
        .with_for_update(skip_locked=True, key_share=True)
    )
    alerts = [row[0] for row in await claim_rows(session, query)]
    paused = (
        await paused_posts(session, [alert.id for alert in alerts], now, policy) if free else {}
    )
    for alert in alerts:
        if alert.state not in wanted:
            continue
        await offer_or_escalate(
            session,
            alert,
            result.notices,
            now=now,
            policy=policy,
            free=free,
            paused=paused.get(alert.id, set()),
        )
        result.handled += 1
    if len(alerts) == limit:
        last = alerts[-1]
        result.next_cursor = WaitingCursor(last.drill, last.priority, last.opened_at, last.id)
        result.more = True
    return result


async def expire_due(
    session: AsyncSession,
    now: datetime | None = None,
    *,
    policy: DispatchPolicy = DEFAULT_POLICY,
    limit: int = 64,
) -> BatchResult:
    """Pending offers past their deadline count as refusals; their alerts go to the next post.

    The deadline is a column, so a restarted or second process finds the same due offers;
    claiming their alerts with ``SKIP LOCKED`` makes exactly one process act on each.
    """
    now = now or utcnow()
    result = BatchResult()
    query = (
        select(Alert, Offer.id)
        .join(Offer, Offer.alert_id == Alert.id)
        .where(Offer.state == OfferState.PENDING, Offer.deadline_at <= now)
        .order_by(Alert.priority.desc(), Offer.deadline_at, Offer.id)
        .limit(limit)
        .with_for_update(of=Alert, skip_locked=True, key_share=True)
    )
    rows = await claim_rows(session, query)
    result.more = len(rows) == limit
    back_to_new: list[Alert] = []
    for alert, offer_id in rows:
        offer = await lock_offer(session, offer_id)  # fresh read: it may have been answered
        if offer.state != OfferState.PENDING or offer.deadline_at > now:
            continue
        if alert.state != AlertState.OFFERED:
            # Should not happen; settle the offer so it is not claimed again every pass.
            offer.state = OfferState.EXPIRED
            offer.decided_at = now
            offer.reason = f"alert was {alert.state}"
            await feed_offer(session, offer, "offer.updated", alert)
            result.handled += 1
            continue
        timeout_s = (offer.deadline_at - offer.offered_at).total_seconds()
        if await refuse(
            session,
            alert,
            offer,
            OfferState.EXPIRED,
            result.notices,
            why=f"no answer within {timeout_s:.0f} s",
            actor=ENGINE_ACTOR,
            now=now,
            policy=policy,
        ):
            back_to_new.append(alert)
        result.handled += 1
    # Re-offer only once every claimed offer is settled, so the posts they held are free again.
    if back_to_new:
        free = await free_posts(session, now, policy)
        paused = (
            await paused_posts(session, [alert.id for alert in back_to_new], now, policy)
            if free
            else {}
        )
        for alert in back_to_new:
            await offer_or_escalate(
                session,
                alert,
                result.notices,
                now=now,
                policy=policy,
                free=free,
                paused=paused.get(alert.id, set()),
            )
    return result

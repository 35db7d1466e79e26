"""Dispatch operations (DESIGN §4): who gets an alert, what answers do, and the console's hand.

Every function takes the caller's ``AsyncSession`` and never commits: the dispatch engine wraps
each pass in ``unit_of_work``, HTTP handlers in their request transaction. Each returns the
device progress notices (``StateNotice``) that must be sent *after* that commit.

Eligible post for an alert: status ``available``, a location no older than 300 s and within
10 km, never offered this alert before (any earlier offer row, whatever its fate), holding
neither a pending offer nor an accepted/on-scene alert. Nearest first by great-circle distance.

Escalation is the console's queue, not a dead end: an escalated alert keeps being served,
highest priority then oldest, to the first post that is eligible for it (posts that refused or
let it time out never are). A dispatcher can assign, withdraw or cancel at any moment.

Concurrency — several processes may run this against one PostgreSQL:

* every change to an alert, or to one of its offers, happens while holding the alert's row lock
  (``FOR UPDATE``); queue scans claim alerts with ``FOR UPDATE SKIP LOCKED`` so two engines
  split the work instead of doing it twice;
* a post is offered an alert only while its row is locked, and whether it is free is read in a
  fresh statement *after* taking the lock (READ COMMITTED gives each statement a new snapshot),
  so two transactions never both see the post free;
* lock order is alert → offer → post; code that already holds a post (a post coming free)
  claims alerts with ``SKIP LOCKED`` and therefore never waits in the opposite order;
* every wait for a row lock comes before the transaction's first feed row: feed writers share
  one advisory lock until commit (``realtime.feed``), so waiting for a row after taking it
  could deadlock. After the first feed row only ``SKIP LOCKED`` claims are made;
* the partial unique indexes (one pending offer per alert and per post, one active alert per
  post) stay the last word: a lost race surfaces as ``IntegrityError``, which the caller rolls
  back and retries.

SQLite has no row locks; there a dispatch transaction takes the database write lock before its
authoritative reads, so dispatch transactions of one process are serialized.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.expression import Executable

from alertnet import db
from alertnet.alerts.state import IllegalTransition, is_legal, transition
from alertnet.alerts.views import alert_views, iso
from alertnet.config import Settings
from alertnet.dispatch.geo import bounding_box, half_extent_deg, haversine_m, nearest
from alertnet.dispatch.notifier import StateNotice
from alertnet.errors import Conflict, Forbidden, InvalidInput, NotFound
from alertnet.models import (
    Alert,
    AlertCategory,
    AlertState,
    Offer,
    OfferState,
    Post,
    PostStatus,
    utcnow,
)
from alertnet.protocol import AckState
from alertnet.realtime.feed import FeedMessage, append

__all__ = [
    "ENGINE_ACTOR",
    "OUTCOMES",
    "BatchResult",
    "DispatchPolicy",
    "StateNotice",
    "WaitingCursor",
    "accept",
    "arrive",
    "assign",
    "cancel",
    "close",
    "decline",
    "dispatch_waiting",
    "expire_due",
    "offer_new",
    "offer_next",
    "offer_views",
    "post_available",
    "post_unavailable",
    "post_view",
    "serve_escalated",
    "withdraw",
]

ENGINE_ACTOR = "dispatch"
OUTCOMES = frozenset({"confirmed", "false_alarm", "no_one_found", "handed_over", "other"})
ACTIVE_STATES = (AlertState.ACCEPTED, AlertState.ON_SCENE)
WAITING_STATES = (AlertState.NEW, AlertState.ESCALATED)
_SERVE_POST_SCAN = 50


@dataclass(frozen=True, slots=True)
class DispatchPolicy:
    """The numbers of DESIGN §4, in one value so tests and settings can change them."""

    offer_timeout_s: float = 30.0
    location_max_age_s: float = 300.0
    max_distance_m: float = 10_000.0
    max_refusals: int = 3

    def __post_init__(self) -> None:
        if self.offer_timeout_s <= 0 or self.location_max_age_s <= 0:
            raise ValueError("timeouts must be positive")
        if self.max_distance_m <= 0 or self.max_refusals < 1:
            raise ValueError("max_distance_m and max_refusals must be positive")

    @classmethod
    def from_settings(cls, settings: Settings) -> DispatchPolicy:
        return cls(offer_timeout_s=settings.offer_timeout_s)


DEFAULT_POLICY = DispatchPolicy()


@dataclass(frozen=True, slots=True)
class WaitingCursor:
    """Where a paged scan of the waiting queue stopped (priority desc, then oldest)."""

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


@dataclass(frozen=True, slots=True)
class _FreePost:
    id: int
    lat: float
    lon: float


# --------------------------------------------------------------------------- views and feed


def post_view(post: Post) -> dict[str, Any]:
    """The post resource shape of DESIGN §5."""
    return {
        "id": post.id,
        "callsign": post.callsign,
        "status": post.status,
        "lat": post.lat,
        "lon": post.lon,
        "location_at": iso(post.location_at),
    }


def _offer_view(
    offer: Offer, callsign: str | None, alert_view: dict[str, Any] | None
) -> dict[str, Any]:
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
        offer.id: _offer_view(offer, callsign, alerts.get(offer.alert_id))
        for offer, callsign in rows
    }


async def _offer_message(
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
        _offer_view(offer, callsign, alert_view),
        alert_id=alert.id,
        post_id=offer.post_id,
        mahalla_id=alert.mahalla_id,
    )


async def _feed_offer(session: AsyncSession, offer: Offer, kind: str, alert: Alert) -> None:
    await append(session, [await _offer_message(session, offer, kind, alert)])


def _post_message(post: Post) -> FeedMessage:
    return FeedMessage("post.updated", post_view(post), post_id=post.id)


async def _feed_post(session: AsyncSession, post: Post) -> None:
    await session.flush()
    await append(session, [_post_message(post)])


def _note(notices: list[StateNotice], alert: Alert, progress: AckState | None) -> None:
    if progress is not None:
        notices.append(StateNotice(alert.device_id, alert.last_counter, progress))


async def _move(
    session: AsyncSession,
    alert: Alert,
    to_state: AlertState,
    notices: list[StateNotice],
    *,
    actor: str,
    reason: str,
    now: datetime,
    feed: list[FeedMessage] | None = None,
) -> None:
    progress = await transition(
        session, alert, to_state, actor=actor, reason=reason, at=now, feed=feed
    )
    _note(notices, alert, progress)


# --------------------------------------------------------------------------- locking


async def _lock_alert(
    session: AsyncSession, alert_id: int, *, skip_locked: bool = False
) -> Alert | None:
    """The alert's latest committed row, locked for this transaction (None: absent or busy)."""
    await db.write_lock(session)
    return (
        await session.execute(
            select(Alert)
            .where(Alert.id == alert_id)
            .with_for_update(skip_locked=skip_locked)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def _lock_offer(session: AsyncSession, offer_id: int) -> Offer:
    return (
        await session.execute(
            select(Offer)
            .where(Offer.id == offer_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()


async def _lock_offer_and_alert(session: AsyncSession, offer_id: int) -> tuple[Alert, Offer]:
    alert_id = await session.scalar(select(Offer.alert_id).where(Offer.id == offer_id))
    if alert_id is None:
        raise NotFound(f"offer {offer_id} not found")
    alert = await _lock_alert(session, alert_id)
    if alert is None:
        raise NotFound(f"alert {alert_id} not found")
    return alert, await _lock_offer(session, offer_id)


async def _lock_post(session: AsyncSession, post_id: int) -> Post:
    await db.write_lock(session)
    post = (
        await session.execute(
            select(Post)
            .where(Post.id == post_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if post is None:
        raise NotFound(f"post {post_id} not found")
    return post


async def _pending_offer_of_alert(session: AsyncSession, alert_id: int) -> Offer | None:
    return (
        await session.execute(
            select(Offer)
            .where(Offer.alert_id == alert_id, Offer.state == OfferState.PENDING)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def _active_alert_of_post(session: AsyncSession, post_id: int) -> int | None:
    return await session.scalar(
        select(Alert.id).where(Alert.post_id == post_id, Alert.state.in_(ACTIVE_STATES))
    )


def _post_is_free(post_id: Any) -> ColumnElement[bool]:
    """SQL: the post holds neither a pending offer nor an accepted/on-scene alert.

    Aliases keep these subqueries from correlating with an enclosing alerts/offers query.
    """
    offer = aliased(Offer)
    held = aliased(Alert)
    return and_(
        ~exists().where(offer.post_id == post_id, offer.state == OfferState.PENDING),
        ~exists().where(held.post_id == post_id, held.state.in_(ACTIVE_STATES)),
    )


def _fresh_after(now: datetime, policy: DispatchPolicy) -> datetime:
    return now - timedelta(seconds=policy.location_max_age_s)


async def _claim_post(
    session: AsyncSession, post_id: int, now: datetime, policy: DispatchPolicy
) -> Post | None:
    """Lock the post if it is eligible for a new offer right now; None otherwise.

    ``SKIP LOCKED``: a post another transaction is working on is simply not free for us.
    """
    await db.write_lock(session)
    post = (
        await session.execute(
            select(Post)
            .where(
                Post.id == post_id,
                Post.status == PostStatus.AVAILABLE,
                Post.lat.is_not(None),
                Post.lon.is_not(None),
                Post.location_at >= _fresh_after(now, policy),
            )
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    if post is None:
        return None
    # A fresh statement after the lock: sees every offer committed before we got it.
    if not await session.scalar(select(_post_is_free(post_id))):
        return None
    return post


async def _free_posts(
    session: AsyncSession, now: datetime, policy: DispatchPolicy, *, near: Alert | None = None
) -> dict[int, _FreePost]:
    """Posts eligible for *some* alert now (a hint: ``_claim_post`` has the final say)."""
    query = select(Post.id, Post.lat, Post.lon).where(
        Post.status == PostStatus.AVAILABLE,
        Post.lat.is_not(None),
        Post.lon.is_not(None),
        Post.location_at >= _fresh_after(now, policy),
        _post_is_free(Post.id),
    )
    if near is not None:
        box = bounding_box(near.lat, near.lon, policy.max_distance_m)
        query = query.where(
            Post.lat.between(box.min_lat, box.max_lat), Post.lon.between(box.min_lon, box.max_lon)
        )
    rows = await session.execute(query.order_by(Post.id))
    return {
        post_id: _FreePost(post_id, lat, lon)
        for post_id, lat, lon in rows
        if lat is not None and lon is not None
    }


async def _claim_rows(session: AsyncSession, query: Executable) -> list[Any]:
    """Run a queue claim: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite a cheap look
    first, then the write lock and the authoritative read only when there is work."""
    if db.is_sqlite(session):
        if not (await session.execute(query)).first():
            return []
        await db.write_lock(session)
    return list((await session.execute(query.execution_options(populate_existing=True))).all())


# --------------------------------------------------------------------------- offering


async def _make_offer(
    session: AsyncSession,
    alert: Alert,
    post: Post,
    distance_m: float,
    notices: list[StateNotice],
    *,
    now: datetime,
    policy: DispatchPolicy,
    actor: str,
    reason: str,
) -> Offer:
    offer = Offer(
        alert_id=alert.id,
        post_id=post.id,
        state=OfferState.PENDING,
        offered_at=now,
        deadline_at=now + timedelta(seconds=policy.offer_timeout_s),
        distance_m=distance_m,
    )
    session.add(offer)
    feed: list[FeedMessage] = []
    await _move(
        session, alert, AlertState.OFFERED, notices, actor=actor, reason=reason, now=now, feed=feed
    )
    created = await _offer_message(
        session, offer, "offer.created", alert, callsign=post.callsign, alert_view=feed[0].data
    )
    await append(session, [*feed, created])
    return offer


async def _asked_posts(session: AsyncSession, alert_ids: Sequence[int]) -> dict[int, set[int]]:
    """``{alert_id: {post ids it was ever offered to}}``: those posts are never eligible again."""
    asked: dict[int, set[int]] = {alert_id: set() for alert_id in alert_ids}
    if alert_ids:
        rows = await session.execute(
            select(Offer.alert_id, Offer.post_id).where(Offer.alert_id.in_(alert_ids))
        )
        for alert_id, post_id in rows:
            asked[alert_id].add(post_id)
    return asked


async def _offer_or_escalate(
    session: AsyncSession,
    alert: Alert,
    notices: list[StateNotice],
    *,
    now: datetime,
    policy: DispatchPolicy,
    free: dict[int, _FreePost] | None = None,
    asked: set[int] | None = None,
) -> bool:
    """Offer a locked new/escalated alert to its nearest eligible post.

    With none, a new alert is escalated; an escalated one stays where it is. ``free`` is a
    pass-wide hint of free posts, updated as posts are taken; ``asked`` the posts this alert
    was ever offered to (read here when not given). True when an offer was made.
    """
    if free is None:
        free = await _free_posts(session, now, policy, near=alert)
    candidates: list[tuple[_FreePost, float]] = []
    if free:
        if asked is None:
            asked = (await _asked_posts(session, [alert.id]))[alert.id]
        candidates = nearest(
            [post for post_id, post in free.items() if post_id not in asked],
            alert.lat,
            alert.lon,
            max_distance_m=policy.max_distance_m,
        )
    for candidate, _ in candidates:
        free.pop(candidate.id, None)  # taken below, or not free after all
        post = await _claim_post(session, candidate.id, now, policy)
        if post is None or post.lat is None or post.lon is None:
            continue
        distance_m = haversine_m(alert.lat, alert.lon, post.lat, post.lon)
        if distance_m > policy.max_distance_m:  # it moved since the hint was read
            continue
        await _make_offer(
            session,
            alert,
            post,
            distance_m,
            notices,
            now=now,
            policy=policy,
            actor=ENGINE_ACTOR,
            reason=f"nearest eligible post {post.callsign} at {distance_m:.0f} m",
        )
        return True
    if alert.state == AlertState.NEW:
        await _move(
            session,
            alert,
            AlertState.ESCALATED,
            notices,
            actor=ENGINE_ACTOR,
            reason="no eligible post",
            now=now,
        )
    return False


async def _serve_post(
    session: AsyncSession,
    post_id: int,
    notices: list[StateNotice],
    *,
    now: datetime,
    policy: DispatchPolicy,
) -> bool:
    """A post may have become eligible: offer it the waiting alert that ranks first (highest
    priority, then oldest) among those within reach that it was never offered."""
    post = await _claim_post(session, post_id, now, policy)
    if post is None or post.lat is None or post.lon is None:
        return False
    box = bounding_box(post.lat, post.lon, policy.max_distance_m)
    # Candidates are read unlocked and then locked one by one: locking the whole list would
    # hide alerts this post will not take from the engines' SKIP LOCKED scans.
    candidates = (
        await session.execute(
            select(Alert.id, Alert.lat, Alert.lon)
            .where(
                Alert.state.in_(WAITING_STATES),
                Alert.category != AlertCategory.TROUBLE,
                Alert.lat.between(box.min_lat, box.max_lat),
                Alert.lon.between(box.min_lon, box.max_lon),
                ~exists().where(Offer.alert_id == Alert.id, Offer.post_id == post_id),
            )
            .order_by(Alert.priority.desc(), Alert.opened_at, Alert.id)
            .limit(_SERVE_POST_SCAN)
        )
    ).all()
    for alert_id, lat, lon in candidates:
        if haversine_m(lat, lon, post.lat, post.lon) > policy.max_distance_m:
            continue
        alert = await _lock_alert(session, alert_id, skip_locked=True)
        if alert is None or alert.state not in WAITING_STATES:
            continue
        distance_m = haversine_m(alert.lat, alert.lon, post.lat, post.lon)
        await _make_offer(
            session,
            alert,
            post,
            distance_m,
            notices,
            now=now,
            policy=policy,
            actor=ENGINE_ACTOR,
            reason=f"post {post.callsign} became eligible at {distance_m:.0f} m",
        )
        return True
    return False


async def _refuse(
    session: AsyncSession,
    alert: Alert,
    offer: Offer,
    offer_state: OfferState,
    notices: list[StateNotice],
    *,
    why: str,
    actor: str,
    now: datetime,
    policy: DispatchPolicy,
) -> bool:
    """Record a decline or a timeout; True when the alert is back to ``new`` for the next post."""
    offer.state = offer_state
    offer.decided_at = now
    offer.reason = why
    alert.refusal_count += 1
    escalate = alert.refusal_count >= policy.max_refusals
    feed: list[FeedMessage] = []
    await _move(
        session,
        alert,
        AlertState.ESCALATED if escalate else AlertState.NEW,
        notices,
        actor=actor,
        reason=f"{why}; {alert.refusal_count} refusals" if escalate else why,
        now=now,
        feed=feed,
    )
    updated = await _offer_message(session, offer, "offer.updated", alert, alert_view=feed[0].data)
    await append(session, [updated, *feed])
    return not escalate


async def _withdraw_offer(
    session: AsyncSession,
    alert: Alert,
    offer: Offer,
    notices: list[StateNotice],
    *,
    why: str,
    actor: str,
    now: datetime,
) -> None:
    offer.state = OfferState.WITHDRAWN
    offer.decided_at = now
    offer.reason = why
    feed: list[FeedMessage] = []
    if alert.state == AlertState.OFFERED:
        await _move(
            session, alert, AlertState.NEW, notices, actor=actor, reason=why, now=now, feed=feed
        )
    updated = await _offer_message(
        session, offer, "offer.updated", alert, alert_view=feed[0].data if feed else None
    )
    await append(session, [updated, *feed])


async def _free_post(
    session: AsyncSession,
    post: Post,
    notices: list[StateNotice],
    *,
    now: datetime,
    policy: DispatchPolicy,
) -> None:
    """A post (locked by the caller) lost its alert or offer: it is available again if it was
    busy, and may take the next waiting alert."""
    if post.status == PostStatus.BUSY:
        post.status = PostStatus.AVAILABLE
        await _feed_post(session, post)
    await _serve_post(session, post.id, notices, now=now, policy=policy)


# --------------------------------------------------------------------------- queue passes


def _servable(
    free: dict[int, _FreePost], now: datetime, policy: DispatchPolicy
) -> ColumnElement[bool]:
    """SQL, correlated to the alert row: some free post has it within reach (by box) and was
    never offered it. One statement text whatever the posts, so it stays a cached plan."""
    widest_lat = max(abs(post.lat) for post in free.values())
    dlat, dlon = half_extent_deg(widest_lat, policy.max_distance_m)
    return exists().where(
        Post.status == PostStatus.AVAILABLE,
        Post.location_at >= _fresh_after(now, policy),
        Alert.lat.between(Post.lat - dlat, Post.lat + dlat),
        Alert.lon.between(Post.lon - dlon, Post.lon + dlon),
        _post_is_free(Post.id),
        ~exists().where(Offer.alert_id == Alert.id, Offer.post_id == Post.id),
    )


def _after(cursor: WaitingCursor) -> ColumnElement[bool]:
    return or_(
        Alert.priority < cursor.priority,
        and_(
            Alert.priority == cursor.priority,
            or_(
                Alert.opened_at > cursor.opened_at,
                and_(Alert.opened_at == cursor.opened_at, Alert.id > cursor.alert_id),
            ),
        ),
    )


async def dispatch_waiting(
    session: AsyncSession,
    now: datetime | None = None,
    *,
    states: Iterable[AlertState] = WAITING_STATES,
    policy: DispatchPolicy = DEFAULT_POLICY,
    limit: int = 16,
    after: WaitingCursor | None = None,
) -> BatchResult:
    """One page of the waiting queue (new and/or escalated alerts), highest priority first.

    Alerts are claimed with ``FOR UPDATE SKIP LOCKED``; each goes to its nearest eligible post,
    or (when new) to the escalated queue. Pass ``result.next_cursor`` back as ``after`` to
    continue. Escalated alerts are only read while some post is free, and only those a free
    post could take, so an idle tick costs two small queries whatever the queue's length.
    """
    now = now or utcnow()
    result = BatchResult()
    free = await _free_posts(session, now, policy)
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
        # Only escalated alerts that some free post could take: within its reach and never
        # offered to it. An escalated queue no free post can serve then costs one query.
        query = query.where(or_(Alert.state == AlertState.NEW, _servable(free, now, policy)))
    query = (
        query.order_by(Alert.priority.desc(), Alert.opened_at, Alert.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    alerts = [row[0] for row in await _claim_rows(session, query)]
    asked = await _asked_posts(session, [alert.id for alert in alerts]) if free else {}
    for alert in alerts:
        if alert.state not in wanted:
            continue
        await _offer_or_escalate(
            session,
            alert,
            result.notices,
            now=now,
            policy=policy,
            free=free,
            asked=asked.get(alert.id, set()),
        )
        result.handled += 1
    if len(alerts) == limit:
        last = alerts[-1]
        result.next_cursor = WaitingCursor(last.priority, last.opened_at, last.id)
        result.more = True
    return result


async def offer_new(
    session: AsyncSession,
    now: datetime | None = None,
    *,
    policy: DispatchPolicy = DEFAULT_POLICY,
    limit: int = 16,
    after: WaitingCursor | None = None,
) -> BatchResult:
    """Offer (or escalate) up to ``limit`` new alerts, highest priority first."""
    return await dispatch_waiting(
        session, now, states=(AlertState.NEW,), policy=policy, limit=limit, after=after
    )


async def serve_escalated(
    session: AsyncSession,
    now: datetime | None = None,
    *,
    policy: DispatchPolicy = DEFAULT_POLICY,
    limit: int = 16,
    after: WaitingCursor | None = None,
) -> BatchResult:
    """Offer escalated alerts (highest priority, then oldest) to posts now eligible for them."""
    return await dispatch_waiting(
        session, now, states=(AlertState.ESCALATED,), policy=policy, limit=limit, after=after
    )


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
        .with_for_update(of=Alert, skip_locked=True)
    )
    rows = await _claim_rows(session, query)
    result.more = len(rows) == limit
    back_to_new: list[Alert] = []
    for alert, offer_id in rows:
        offer = await _lock_offer(session, offer_id)  # fresh read: it may have been answered
        if offer.state != OfferState.PENDING or offer.deadline_at > now:
            continue
        if alert.state != AlertState.OFFERED:
            # Should not happen; settle the offer so it is not claimed again every pass.
            offer.state = OfferState.EXPIRED
            offer.decided_at = now
            offer.reason = f"alert was {alert.state}"
            await _feed_offer(session, offer, "offer.updated", alert)
            result.handled += 1
            continue
        timeout_s = (offer.deadline_at - offer.offered_at).total_seconds()
        if await _refuse(
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
        free = await _free_posts(session, now, policy)
        asked = await _asked_posts(session, [alert.id for alert in back_to_new]) if free else {}
        for alert in back_to_new:
            await _offer_or_escalate(
                session,
                alert,
                result.notices,
                now=now,
                policy=policy,
                free=free,
                asked=asked.get(alert.id, set()),
            )
    return result


# --------------------------------------------------------------------------- single alerts


async def offer_next(
    session: AsyncSession,
    alert: Alert,
    now: datetime | None = None,
    *,
    policy: DispatchPolicy = DEFAULT_POLICY,
) -> list[StateNotice]:
    """Offer one new or escalated alert to its nearest eligible post, else escalate it."""
    now = now or utcnow()
    notices: list[StateNotice] = []
    locked = await _lock_alert(session, alert.id)
    if locked is None:
        raise NotFound(f"alert {alert.id} not found")
    if locked.state not in WAITING_STATES or not is_legal(
        locked.category, locked.state, AlertState.OFFERED
    ):
        raise IllegalTransition(locked.id, locked.state, AlertState.OFFERED)
    await _offer_or_escalate(session, locked, notices, now=now, policy=policy)
    return notices


async def accept(
    session: AsyncSession,
    offer_id: int,
    post_id: int,
    actor: str,
    *,
    now: datetime | None = None,
) -> list[StateNotice]:
    """The offered post takes the alert: alert accepted and held by the post, post busy."""
    now = now or utcnow()
    notices: list[StateNotice] = []
    alert, offer = await _lock_offer_and_alert(session, offer_id)
    if offer.post_id != post_id:
        raise Forbidden(f"offer {offer_id} was made to another post")
    if offer.state != OfferState.PENDING:
        raise Conflict(f"offer {offer_id} is {offer.state}")
    if now >= offer.deadline_at:
        raise Conflict(f"offer {offer_id} expired at {offer.deadline_at.isoformat()}")
    post = await _lock_post(session, post_id)
    held = await _active_alert_of_post(session, post_id)
    if held is not None:
        raise Conflict(f"post {post.callsign} already holds alert {held}")
    offer.state = OfferState.ACCEPTED
    offer.decided_at = now
    alert.post_id = post_id
    post.status = PostStatus.BUSY
    feed: list[FeedMessage] = []
    await _move(
        session,
        alert,
        AlertState.ACCEPTED,
        notices,
        actor=actor,
        reason=f"accepted by {post.callsign}",
        now=now,
        feed=feed,
    )
    updated = await _offer_message(
        session, offer, "offer.updated", alert, callsign=post.callsign, alert_view=feed[0].data
    )
    await append(session, [updated, *feed, _post_message(post)])
    return notices


async def decline(
    session: AsyncSession,
    offer_id: int,
    post_id: int,
    reason: str,
    actor: str,
    *,
    now: datetime | None = None,
    policy: DispatchPolicy = DEFAULT_POLICY,
) -> list[StateNotice]:
    """The offered post refuses: a refusal counts; the alert goes to the next nearest post,
    or to the escalated queue once ``max_refusals`` is reached."""
    now = now or utcnow()
    notices: list[StateNotice] = []
    alert, offer = await _lock_offer_and_alert(session, offer_id)
    if offer.post_id != post_id:
        raise Forbidden(f"offer {offer_id} was made to another post")
    if offer.state != OfferState.PENDING:
        raise Conflict(f"offer {offer_id} is {offer.state}")
    why = f"declined: {reason.strip()}" if reason.strip() else "declined"
    if await _refuse(
        session,
        alert,
        offer,
        OfferState.DECLINED,
        notices,
        why=why,
        actor=actor,
        now=now,
        policy=policy,
    ):
        await _offer_or_escalate(session, alert, notices, now=now, policy=policy)
    return notices


async def arrive(
    session: AsyncSession,
    alert_id: int,
    post_id: int,
    actor: str,
    *,
    now: datetime | None = None,
) -> list[StateNotice]:
    """The post holding the alert is on scene."""
    now = now or utcnow()
    notices: list[StateNotice] = []
    alert = await _lock_alert(session, alert_id)
    if alert is None:
        raise NotFound(f"alert {alert_id} not found")
    if alert.state in ACTIVE_STATES and alert.post_id != post_id:
        raise Forbidden(f"alert {alert_id} is held by another post")
    await _move(
        session, alert, AlertState.ON_SCENE, notices, actor=actor, reason="arrived", now=now
    )
    return notices


async def close(
    session: AsyncSession,
    alert_id: int,
    post_id: int | None,
    outcome: str,
    note: str | None,
    actor: str,
    *,
    now: datetime | None = None,
    policy: DispatchPolicy = DEFAULT_POLICY,
) -> list[StateNotice]:
    """Close an accepted or on-scene alert with its outcome; the post is available again.

    ``post_id`` is the post acting (it must hold the alert); ``None`` when a dispatcher closes
    on a post's behalf, or resolves a trouble alert.
    """
    if outcome not in OUTCOMES:
        raise InvalidInput(f"outcome must be one of {', '.join(sorted(OUTCOMES))}")
    now = now or utcnow()
    notices: list[StateNotice] = []
    alert = await _lock_alert(session, alert_id)
    if alert is None:
        raise NotFound(f"alert {alert_id} not found")
    if post_id is not None and alert.post_id != post_id:
        raise Forbidden(f"alert {alert_id} is not held by post {post_id}")
    if not is_legal(alert.category, alert.state, AlertState.CLOSED):
        raise IllegalTransition(alert.id, alert.state, AlertState.CLOSED)
    # Every row lock before the first feed row: feed writers share one lock (realtime.feed).
    holder = (
        await _lock_post(session, alert.post_id)
        if alert.state in ACTIVE_STATES and alert.post_id is not None
        else None
    )
    alert.outcome = outcome
    alert.note = note
    await _move(session, alert, AlertState.CLOSED, notices, actor=actor, reason=outcome, now=now)
    if holder is not None:
        await _free_post(session, holder, notices, now=now, policy=policy)
    return notices


async def cancel(
    session: AsyncSession,
    alert_id: int,
    reason: str,
    actor: str,
    *,
    now: datetime | None = None,
    policy: DispatchPolicy = DEFAULT_POLICY,
) -> list[StateNotice]:
    """A dispatcher cancels an open alert: its pending offer is withdrawn, its post freed."""
    if not reason.strip():
        raise InvalidInput("a reason is required to cancel an alert")
    now = now or utcnow()
    notices: list[StateNotice] = []
    alert = await _lock_alert(session, alert_id)
    if alert is None:
        raise NotFound(f"alert {alert_id} not found")
    if not is_legal(alert.category, alert.state, AlertState.CANCELLED):
        raise IllegalTransition(alert.id, alert.state, AlertState.CANCELLED)
    pending = await _pending_offer_of_alert(session, alert.id)
    # Every row lock before the first feed row: feed writers share one lock (realtime.feed).
    freed_ids: set[int] = set()
    if pending is not None:
        freed_ids.add(pending.post_id)
    if alert.state in ACTIVE_STATES and alert.post_id is not None:
        freed_ids.add(alert.post_id)
    freed = [await _lock_post(session, post_id) for post_id in sorted(freed_ids)]
    if pending is not None:
        pending.state = OfferState.WITHDRAWN
        pending.decided_at = now
        pending.reason = f"alert cancelled: {reason.strip()}"
        await _feed_offer(session, pending, "offer.updated", alert)
    await _move(
        session,
        alert,
        AlertState.CANCELLED,
        notices,
        actor=actor,
        reason=reason.strip(),
        now=now,
    )
    for post in freed:
        await _free_post(session, post, notices, now=now, policy=policy)
    return notices


async def withdraw(
    session: AsyncSession,
    offer_id: int,
    actor: str,
    *,
    now: datetime | None = None,
    policy: DispatchPolicy = DEFAULT_POLICY,
) -> list[StateNotice]:
    """A dispatcher withdraws a pending offer; the alert goes to the next nearest post.

    Not a refusal: it does not count towards escalation.
    """
    now = now or utcnow()
    notices: list[StateNotice] = []
    alert, offer = await _lock_offer_and_alert(session, offer_id)
    if offer.state != OfferState.PENDING:
        raise Conflict(f"offer {offer_id} is {offer.state}")
    await _withdraw_offer(
        session, alert, offer, notices, why=f"withdrawn by {actor}", actor=actor, now=now
    )
    await _offer_or_escalate(session, alert, notices, now=now, policy=policy)
    await _serve_post(session, offer.post_id, notices, now=now, policy=policy)
    return notices


async def assign(
    session: AsyncSession,
    alert_id: int,
    post_id: int,
    actor: str,
    *,
    now: datetime | None = None,
    policy: DispatchPolicy = DEFAULT_POLICY,
) -> list[StateNotice]:
    """A dispatcher offers an alert to a chosen post, nearest or not.

    Any pending offer of the alert is withdrawn; an accepted alert is taken back from its post
    (which becomes available). If the chosen post has a pending offer for another alert, that
    offer is withdrawn and the other alert re-dispatched. A post holding an accepted or on-scene
    alert cannot be assigned another (409). The assignment is an offer with the usual deadline.
    """
    now = now or utcnow()
    notices: list[StateNotice] = []
    alert = await _lock_alert(session, alert_id)
    if alert is None:
        raise NotFound(f"alert {alert_id} not found")
    # An offered alert is re-offered through ``new`` (its current offer is withdrawn first).
    if alert.state != AlertState.OFFERED and not is_legal(
        alert.category, alert.state, AlertState.OFFERED
    ):
        raise IllegalTransition(alert.id, alert.state, AlertState.OFFERED)
    if alert.state == AlertState.ACCEPTED and alert.post_id == post_id:
        return notices
    pending = await _pending_offer_of_alert(session, alert.id)
    if pending is not None and pending.post_id == post_id:
        return notices
    # Every row lock before the first feed row (feed writers share one lock, realtime.feed);
    # the two posts of a reassignment in id order, so crossing reassignments cannot deadlock.
    holder_id = alert.post_id if alert.state == AlertState.ACCEPTED else None
    post_ids = {post_id} if holder_id is None else {post_id, holder_id}
    locked = {pid: await _lock_post(session, pid) for pid in sorted(post_ids)}
    post = locked[post_id]
    previous_holder = locked[holder_id] if holder_id is not None else None
    held = await _active_alert_of_post(session, post_id)
    if held is not None:
        raise Conflict(f"post {post.callsign} holds alert {held}")

    displaced: Alert | None = None
    other = (
        await session.execute(
            select(Offer).where(Offer.post_id == post_id, Offer.state == OfferState.PENDING)
        )
    ).scalar_one_or_none()
    if other is not None:
        # Lock order is alert → post, and we hold the post: never wait for the other alert.
        displaced = await _lock_alert(session, other.alert_id, skip_locked=True)
        if displaced is None:
            raise Conflict(f"post {post.callsign} is being offered another alert; try again")
        other = await _lock_offer(session, other.id)
        if other.state != OfferState.PENDING:
            displaced = None

    if displaced is not None and other is not None:
        await _withdraw_offer(
            session,
            displaced,
            other,
            notices,
            why=f"{post.callsign} assigned to alert {alert.id} by {actor}",
            actor=actor,
            now=now,
        )
    if pending is not None:
        await _withdraw_offer(
            session,
            alert,
            pending,
            notices,
            why=f"reassigned to {post.callsign} by {actor}",
            actor=actor,
            now=now,
        )
    distance_m = (
        haversine_m(alert.lat, alert.lon, post.lat, post.lon)
        if post.lat is not None and post.lon is not None
        else -1.0
    )
    await _make_offer(
        session,
        alert,
        post,
        distance_m,
        notices,
        now=now,
        policy=policy,
        actor=actor,
        reason=f"assigned to {post.callsign}",
    )
    if displaced is not None:
        await _offer_or_escalate(session, displaced, notices, now=now, policy=policy)
    if previous_holder is not None:
        await _free_post(session, previous_holder, notices, now=now, policy=policy)
    return notices


# --------------------------------------------------------------------------- post hooks


async def post_available(
    session: AsyncSession,
    post_id: int,
    *,
    now: datetime | None = None,
    policy: DispatchPolicy = DEFAULT_POLICY,
) -> list[StateNotice]:
    """Call after a post turned available or reported a location (same transaction).

    If the post is now eligible, it is offered the first waiting alert within reach
    (escalated or new; highest priority, then oldest).
    """
    now = now or utcnow()
    notices: list[StateNotice] = []
    await _serve_post(session, post_id, notices, now=now, policy=policy)
    return notices


async def post_unavailable(
    session: AsyncSession,
    post_id: int,
    actor: str,
    *,
    now: datetime | None = None,
    policy: DispatchPolicy = DEFAULT_POLICY,
) -> list[StateNotice]:
    """Call when a post goes off duty, in the same transaction and *before* updating the
    post's row or writing its feed row (this waits for the offer's alert lock, see the module
    notes). Its pending offer is withdrawn and the alert re-dispatched. A post holding an
    accepted or on-scene alert must close or hand it over first (409), so no alert is left
    with a post that has gone home."""
    now = now or utcnow()
    notices: list[StateNotice] = []
    # Holding the post's lock, no new offer can be made to it (offers are made under it), so
    # the pending offer read next is the one to give back.
    post = await _lock_post(session, post_id)
    held = await _active_alert_of_post(session, post_id)
    if held is not None:
        raise Conflict(f"post {post.callsign} holds alert {held}: close or hand it over first")
    alert_id = await session.scalar(
        select(Offer.alert_id).where(Offer.post_id == post_id, Offer.state == OfferState.PENDING)
    )
    if alert_id is None:
        return notices
    # Post before alert is against the usual order; the one transaction that can wait the
    # other way (this post accepting that very offer) is a deadlock PostgreSQL breaks and the
    # caller retries.
    alert = await _lock_alert(session, alert_id)
    offer = await _pending_offer_of_alert(session, alert_id)
    if alert is None or offer is None or offer.post_id != post_id:
        return notices
    await _withdraw_offer(
        session, alert, offer, notices, why="post went off duty", actor=actor, now=now
    )
    await _offer_or_escalate(session, alert, notices, now=now, policy=policy)
    return notices

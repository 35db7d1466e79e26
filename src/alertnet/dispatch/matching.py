"""Who gets an alert: claiming eligible posts, and the moves that make, refuse, withdraw and
re-serve offers. Actions and queue passes are built from these; each step works on rows its
caller has locked (``dispatch.locks``) and collects device notices for after the commit.

Which post is eligible, and why, is ``dispatch.eligibility``: ``claim_post`` locks a post and
asks ``eligibility.judge`` before any automatic offer. Nearest first by great-circle distance.

A refusal (decline or expiry) sends the alert to the next nearest post, or to ``escalated``
once ``max_refusals`` is reached. An escalated alert is offered in rounds, one eligible post
per round (``queue.dispatch_waiting``, ``serve_post``); a refusal in a round returns it to
``escalated`` at once.

Real before drill: a post is not offered a drill while it is eligible for a real alert that
waits (``new`` or ``escalated``). A post holding a drill is eligible for real alerts: a real
offer withdraws its pending drill offer, and accepting the real alert sends its held drill back
to ``new`` (``actions.accept``); either way the drill is served again at once
(``preempt_drill``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet import db
from alertnet.alerts.state import transition
from alertnet.dispatch.eligibility import (
    PostFacts,
    Target,
    judge,
    judge_post,
    owed_a_real_alert,
    post_can_take,
    read_facts,
    refusal_pause,
)
from alertnet.dispatch.geo import bounding_box, haversine_m, nearest
from alertnet.dispatch.locks import active_alert_of_post, lock_alert, pending_offer_of_alert
from alertnet.dispatch.notifier import StateNotice
from alertnet.dispatch.policy import WAITING_STATES, DispatchPolicy
from alertnet.dispatch.views import feed_post, offer_message
from alertnet.models import (
    Alert,
    AlertAudit,
    AlertCategory,
    AlertState,
    Offer,
    OfferState,
    Post,
    PostStatus,
)
from alertnet.protocol import AckState
from alertnet.realtime.feed import FeedMessage, append

# The actor named in the audit trail for what dispatch decides by itself.
ENGINE_ACTOR: Final = "dispatch"
# How many waiting alerts a post coming free looks at, best first, before giving up.
_SERVE_POST_SCAN: Final = 50
# The audit reason of a drill that gives way to a real alert (DESIGN §4).
PREEMPTED: Final = "pre-empted by a real alert"


@dataclass(frozen=True, slots=True)
class FreePost:
    """A post that looked free for real alerts when the pass began (``takes_drills``: for
    drills too): a hint, ``claim_post`` decides."""

    id: int
    lat: float
    lon: float
    takes_drills: bool = True


def _note(notices: list[StateNotice], alert: Alert, progress: AckState | None) -> None:
    # A dispatcher's drill (DESIGN §12) was pressed by nobody: its device is told nothing.
    if progress is not None and alert.drill_id is None:
        notices.append(StateNotice(alert.device_id, alert.last_counter, progress))


async def move_alert(
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
    """``alerts.state.transition``, noting the device progress it yields for after the commit."""
    progress = await transition(
        session, alert, to_state, actor=actor, reason=reason, at=now, feed=feed
    )
    _note(notices, alert, progress)


async def claim_post(
    session: AsyncSession,
    post_id: int,
    alert: Alert | None,
    now: datetime,
    policy: DispatchPolicy,
) -> PostFacts | None:
    """Lock the post if ``eligibility.judge`` finds it eligible for ``alert`` right now (with
    None: for some real alert, wherever it is), and return its facts (a drill it holds or is
    offered shows in them); None otherwise.

    ``SKIP LOCKED``: a post another transaction is working on is simply not free for us.
    """
    await db.write_lock(session)
    locked = await session.scalar(
        select(Post.id).where(Post.id == post_id).with_for_update(skip_locked=True, key_share=True)
    )
    if locked is None:
        return None
    # A fresh statement after the lock: sees every offer committed before we got it.
    [facts] = await read_facts(session, alert.id if alert is not None else None, [post_id])
    if alert is None:
        verdict = judge_post(facts, _SOME_REAL_ALERT, now, policy)
    else:
        verdict = judge(facts, Target.of(alert), now, policy)
    return facts if verdict.eligible else None


# ``claim_post`` for no alert in particular: what keeps a post from every real alert.
_SOME_REAL_ALERT: Final = Target(None, 0.0, 0.0, drill=False)


async def withdraw_pending_drill(
    session: AsyncSession,
    facts: PostFacts,
    notices: list[StateNotice],
    *,
    now: datetime,
) -> Alert | None:
    """Before a real offer to a post whose pending offer is a drill: that offer is withdrawn
    ("pre-empted by a real alert") and the drill, back in ``new``, is returned, to be served
    again once the real offer is made (``serve_again``). None when the drill is locked by
    another transaction: then the post is not free for us right now.
    """
    assert facts.pending is not None and facts.pending.drill
    # We hold the post: another alert is taken only with SKIP LOCKED (dispatch.locks).
    drill = await lock_alert(session, facts.pending.alert_id, skip_locked=True)
    if drill is None:
        return None
    # Offers change only under their alert's lock, which we hold: this never waits.
    offer = await pending_offer_of_alert(session, drill.id)
    if offer is None or offer.post_id != facts.post.id:
        return None
    await withdraw_offer(session, drill, offer, notices, why=PREEMPTED, actor=ENGINE_ACTOR, now=now)
    return drill


async def serve_again(
    session: AsyncSession,
    drill: Alert,
    post_id: int,
    notices: list[StateNotice],
    *,
    now: datetime,
    policy: DispatchPolicy,
) -> None:
    """A drill that gave way to a real alert at ``post_id`` goes to its next nearest post, or
    to the escalated queue."""
    if drill.state == AlertState.NEW:
        await offer_or_escalate(
            session, drill, notices, now=now, policy=policy, passing_over=post_id
        )


async def free_posts(
    session: AsyncSession, now: datetime, policy: DispatchPolicy, *, near: Alert | None = None
) -> dict[int, FreePost]:
    """Posts that look eligible for *some* real alert now, and whether for drills too (a hint:
    ``claim_post`` has the final say)."""
    query = select(
        Post.id, Post.lat, Post.lon, post_can_take(Post.id, Post.status, drill=True)
    ).where(
        Post.lat.is_not(None),
        Post.lon.is_not(None),
        Post.location_at >= policy.location_fresh_after(now),
        post_can_take(Post.id, Post.status, drill=False),
    )
    if near is not None:
        box = bounding_box(near.lat, near.lon, policy.max_distance_m)
        query = query.where(
            Post.lat.between(box.min_lat, box.max_lat), Post.lon.between(box.min_lon, box.max_lon)
        )
    rows = await session.execute(query.order_by(Post.id))
    return {
        post_id: FreePost(post_id, lat, lon, bool(takes_drills))
        for post_id, lat, lon, takes_drills in rows
        if lat is not None and lon is not None
    }


async def make_offer(
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
        deadline_at=policy.offer_deadline_at(now),
        distance_m=distance_m,
    )
    session.add(offer)
    feed: list[FeedMessage] = []
    await move_alert(
        session, alert, AlertState.OFFERED, notices, actor=actor, reason=reason, now=now, feed=feed
    )
    created = await offer_message(
        session, offer, "offer.created", alert, callsign=post.callsign, alert_view=feed[0].data
    )
    await append(session, [*feed, created])
    return offer


async def paused_posts(
    session: AsyncSession, alert_ids: Sequence[int], now: datetime, policy: DispatchPolicy
) -> dict[int, set[int]]:
    """``{alert_id: {post ids paused for it at now}}``: they refused it too recently."""
    paused: dict[int, set[int]] = {alert_id: set() for alert_id in alert_ids}
    if alert_ids:
        rows = await session.execute(
            select(Offer.alert_id, Offer.post_id).where(
                Offer.alert_id.in_(alert_ids),
                or_(
                    and_(
                        Offer.state == OfferState.DECLINED,
                        Offer.decided_at > policy.declined_pause_since(now),
                    ),
                    and_(
                        Offer.state == OfferState.EXPIRED,
                        Offer.decided_at > policy.expired_pause_since(now),
                    ),
                ),
            )
        )
        for alert_id, post_id in rows:
            paused[alert_id].add(post_id)
    return paused


async def offer_or_escalate(
    session: AsyncSession,
    alert: Alert,
    notices: list[StateNotice],
    *,
    now: datetime,
    policy: DispatchPolicy,
    free: dict[int, FreePost] | None = None,
    paused: set[int] | None = None,
    passing_over: int | None = None,
) -> bool:
    """Offer a locked new/escalated alert to its nearest eligible post (for an escalated alert,
    that offer is one round).

    With none, a new alert is escalated; an escalated one stays where it is. ``free`` is a
    pass-wide hint of free posts, updated as posts are taken; ``paused`` the posts paused for
    this alert at ``now`` (read here when not given); ``passing_over`` a post this one move
    skips without a pause (its offer was just withdrawn). True when an offer was made.
    """
    if free is None:
        free = await free_posts(session, now, policy, near=alert)
    candidates: list[tuple[FreePost, float]] = []
    if free:
        if paused is None:
            paused = (await paused_posts(session, [alert.id], now, policy))[alert.id]
        candidates = nearest(
            [
                post
                for post_id, post in free.items()
                if post_id not in paused and post_id != passing_over
            ],
            alert.lat,
            alert.lon,
            max_distance_m=policy.max_distance_m,
        )
    for candidate, _ in candidates:
        if alert.drill and not candidate.takes_drills:
            continue  # it holds a drill: free for real alerts only
        free.pop(candidate.id, None)  # taken below, or not free after all
        facts = await claim_post(session, candidate.id, alert, now, policy)
        if facts is None:
            continue
        post = facts.post
        if post.lat is None or post.lon is None:
            continue
        distance_m = haversine_m(alert.lat, alert.lon, post.lat, post.lon)
        if alert.drill and await owed_a_real_alert(session, post, now, policy):
            free[candidate.id] = candidate  # still free for the real alert it is owed
            continue
        displaced: Alert | None = None
        if facts.pending is not None:  # a drill offer (judge let the post through)
            displaced = await withdraw_pending_drill(session, facts, notices, now=now)
            if displaced is None:
                continue
        await make_offer(
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
        if displaced is not None:
            await serve_again(session, displaced, post.id, notices, now=now, policy=policy)
        return True
    if alert.state == AlertState.NEW:
        await move_alert(
            session,
            alert,
            AlertState.ESCALATED,
            notices,
            actor=ENGINE_ACTOR,
            reason="no eligible post",
            now=now,
        )
    return False


async def serve_post(
    session: AsyncSession,
    post_id: int,
    notices: list[StateNotice],
    *,
    now: datetime,
    policy: DispatchPolicy,
    passing_over: int | None = None,
) -> bool:
    """A post may have become eligible: offer it the waiting alert that ranks first (highest
    priority, then oldest) among those within reach that it is not paused for, other than
    ``passing_over`` (an alert just withdrawn from it). Real alerts rank before drills, a post
    within reach of a waiting real alert gets no drill, and a post holding a drill is served
    real alerts only."""
    facts = await claim_post(session, post_id, None, now, policy)
    post = facts.post if facts is not None else None
    if facts is None or post is None or post.lat is None or post.lon is None:
        return False
    post_lat, post_lon = post.lat, post.lon
    box = bounding_box(post_lat, post_lon, policy.max_distance_m)
    # Candidates are read unlocked and then locked one by one: locking the whole list would
    # hide alerts this post will not take from the engines' SKIP LOCKED scans.
    query = (
        select(Alert.id, Alert.lat, Alert.lon, Alert.drill)
        .where(
            Alert.state.in_(WAITING_STATES),
            Alert.category != AlertCategory.TROUBLE,
            Alert.lat.between(box.min_lat, box.max_lat),
            Alert.lon.between(box.min_lon, box.max_lon),
            ~refusal_pause(Alert.id, post_id, now, policy),
        )
        .order_by(Alert.drill, Alert.priority.desc(), Alert.opened_at, Alert.id)
        .limit(_SERVE_POST_SCAN)
    )
    if facts.drill_gives_way is not None:
        query = query.where(Alert.drill.is_(False))
    candidates = (await session.execute(query)).all()
    owed_real = False
    for alert_id, lat, lon, drill in candidates:
        if alert_id == passing_over:
            continue
        if haversine_m(lat, lon, post_lat, post_lon) > policy.max_distance_m:
            continue
        if drill and owed_real:
            break
        owed_real = owed_real or not drill
        alert = await lock_alert(session, alert_id, skip_locked=True)
        if alert is None or alert.state not in WAITING_STATES:
            continue
        # The deciding read, now that both rows are ours.
        [facts] = await read_facts(session, alert.id, [post_id])
        verdict = judge(facts, Target.of(alert), now, policy)
        if not verdict.eligible or verdict.distance_m is None:
            continue
        displaced: Alert | None = None
        if facts.pending is not None:  # a drill offer (judge let the post through)
            displaced = await withdraw_pending_drill(session, facts, notices, now=now)
            if displaced is None:
                return False
        await make_offer(
            session,
            alert,
            post,
            verdict.distance_m,
            notices,
            now=now,
            policy=policy,
            actor=ENGINE_ACTOR,
            reason=f"post {post.callsign} became eligible at {verdict.distance_m:.0f} m",
        )
        if displaced is not None:
            await serve_again(session, displaced, post.id, notices, now=now, policy=policy)
        return True
    return False


async def offered_from_escalated(session: AsyncSession, alert_id: int) -> bool:
    """Whether the alert's current offer was made while it was escalated (a round)."""
    from_state = await session.scalar(
        select(AlertAudit.from_state)
        .where(AlertAudit.alert_id == alert_id, AlertAudit.to_state == AlertState.OFFERED)
        .order_by(AlertAudit.id.desc())
        .limit(1)
    )
    return from_state == AlertState.ESCALATED


async def refuse(
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
    """Record a decline or a timeout; True when the alert is back to ``new`` for the next post.

    It goes back to ``escalated`` instead once ``max_refusals`` is reached, or at once when the
    refused offer was a round of an escalated alert.
    """
    round_refused = await offered_from_escalated(session, alert.id)
    offer.state = offer_state
    offer.decided_at = now
    offer.reason = why
    alert.refusal_count += 1
    escalate = round_refused or alert.refusal_count >= policy.max_refusals
    feed: list[FeedMessage] = []
    await move_alert(
        session,
        alert,
        AlertState.ESCALATED if escalate else AlertState.NEW,
        notices,
        actor=actor,
        reason=f"{why}; {alert.refusal_count} refusals" if escalate else why,
        now=now,
        feed=feed,
    )
    updated = await offer_message(session, offer, "offer.updated", alert, alert_view=feed[0].data)
    await append(session, [updated, *feed])
    return not escalate


async def withdraw_offer(
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
        await move_alert(
            session, alert, AlertState.NEW, notices, actor=actor, reason=why, now=now, feed=feed
        )
    updated = await offer_message(
        session, offer, "offer.updated", alert, alert_view=feed[0].data if feed else None
    )
    await append(session, [updated, *feed])


async def free_post(
    session: AsyncSession,
    post: Post,
    notices: list[StateNotice],
    *,
    now: datetime,
    policy: DispatchPolicy,
) -> None:
    """A post (locked by the caller) lost its alert or offer: it is available again if it was
    busy and holds no other alert (a drill it accepted before a real offer came), and may take
    the next waiting alert."""
    await session.flush()  # the alert it lost has left its active state in this session
    if post.status == PostStatus.BUSY and await active_alert_of_post(session, post.id) is None:
        post.status = PostStatus.AVAILABLE
        await feed_post(session, post)
    await serve_post(session, post.id, notices, now=now, policy=policy)

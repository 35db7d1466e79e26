"""What people do to alerts and offers: a post accepts, declines, arrives, closes; a dispatcher
assigns, withdraws, cancels. (A post's own duty changes are in ``dispatch.duty``.)

Every function takes the caller's ``AsyncSession`` and never commits: HTTP handlers run them
through ``Dispatcher.perform`` (one transaction, retried on a lost race). Each returns the
device progress notices (``StateNotice``) to send *after* that commit. Row locks are taken
alert → offer → post and all before the first feed row (``dispatch.locks``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.alerts.state import IllegalTransition, is_legal
from alertnet.dispatch.geo import haversine_m
from alertnet.dispatch.locks import (
    active_alert_of_post,
    lock_alert,
    lock_offer,
    lock_offer_and_alert,
    lock_post,
    pending_offer_of_alert,
)
from alertnet.dispatch.matching import (
    ENGINE_ACTOR,
    PREEMPTED,
    free_post,
    make_offer,
    move_alert,
    offer_or_escalate,
    refuse,
    serve_again,
    serve_post,
    withdraw_offer,
)
from alertnet.dispatch.notifier import StateNotice
from alertnet.dispatch.policy import (
    ACTIVE_STATES,
    DEFAULT_POLICY,
    OUTCOMES,
    WAITING_STATES,
    DispatchPolicy,
)
from alertnet.dispatch.views import feed_offer, offer_message, post_message
from alertnet.errors import Conflict, Forbidden, InvalidInput, NotFound
from alertnet.models import Alert, AlertState, Offer, OfferState, PostStatus, utcnow
from alertnet.realtime.feed import FeedMessage, append


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
    locked = await lock_alert(session, alert.id)
    if locked is None:
        raise NotFound(f"alert {alert.id} not found")
    if locked.state not in WAITING_STATES or not is_legal(
        locked.category, locked.state, AlertState.OFFERED
    ):
        raise IllegalTransition(locked.id, locked.state, AlertState.OFFERED)
    await offer_or_escalate(session, locked, notices, now=now, policy=policy)
    return notices


async def accept(
    session: AsyncSession,
    offer_id: int,
    post_id: int,
    actor: str,
    *,
    now: datetime | None = None,
    policy: DispatchPolicy = DEFAULT_POLICY,
) -> list[StateNotice]:
    """The offered post takes the alert: alert accepted and held by the post, post busy.

    A drill the post holds gives way to a real alert (DESIGN §4): it goes back to ``new``
    ("pre-empted by a real alert") and on to its next post; any other alert held is a 409.
    """
    now = now or utcnow()
    notices: list[StateNotice] = []
    alert, offer = await lock_offer_and_alert(session, offer_id)
    if offer.post_id != post_id:
        raise Forbidden(f"offer {offer_id} was made to another post")
    if offer.state != OfferState.PENDING:
        raise Conflict(f"offer {offer_id} is {offer.state}")
    if now >= offer.deadline_at:
        raise Conflict(f"offer {offer_id} expired at {offer.deadline_at.isoformat()}")
    # The drill to pre-empt is locked before the post (lock order alert → post); only this
    # post's own actions change it, and none of them waits for another alert.
    held_before = await active_alert_of_post(session, post_id)
    drill = (
        await lock_alert(session, held_before)
        if held_before is not None and not alert.drill
        else None
    )
    post = await lock_post(session, post_id)
    held = await active_alert_of_post(session, post_id)
    if held is not None and (drill is None or held != drill.id or not drill.drill):
        raise Conflict(f"post {post.callsign} already holds alert {held}")
    pre_empted: list[FeedMessage] = []
    if held is not None and drill is not None:
        await move_alert(
            session,
            drill,
            AlertState.NEW,
            notices,
            actor=ENGINE_ACTOR,
            reason=f"{PREEMPTED} (alert {alert.id})",
            now=now,
            feed=pre_empted,
        )
    offer.state = OfferState.ACCEPTED
    offer.decided_at = now
    alert.post_id = post_id
    post.status = PostStatus.BUSY
    feed: list[FeedMessage] = []
    await move_alert(
        session,
        alert,
        AlertState.ACCEPTED,
        notices,
        actor=actor,
        reason=f"accepted by {post.callsign}",
        now=now,
        feed=feed,
    )
    updated = await offer_message(
        session, offer, "offer.updated", alert, callsign=post.callsign, alert_view=feed[0].data
    )
    # The drill's news last: a tablet takes the real alert before it hears the drill is gone.
    await append(session, [updated, *feed, post_message(post), *pre_empted])
    if held is not None and drill is not None:
        await serve_again(session, drill, post_id, notices, now=now, policy=policy)
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
    alert, offer = await lock_offer_and_alert(session, offer_id)
    if offer.post_id != post_id:
        raise Forbidden(f"offer {offer_id} was made to another post")
    if offer.state != OfferState.PENDING:
        raise Conflict(f"offer {offer_id} is {offer.state}")
    why = f"declined: {reason.strip()}" if reason.strip() else "declined"
    if await refuse(
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
        await offer_or_escalate(session, alert, notices, now=now, policy=policy)
    return notices


async def arrive(
    session: AsyncSession,
    alert_id: int,
    post_id: int,
    actor: str,
    *,
    now: datetime | None = None,
) -> list[StateNotice]:
    """The post holding the alert is on scene.

    Ownership is checked first and answers alike for an alert that is absent or held by
    nobody or another post, so a post learns nothing of alerts that are not its own.
    """
    now = now or utcnow()
    notices: list[StateNotice] = []
    alert = await lock_alert(session, alert_id)
    if alert is None or alert.post_id != post_id:
        raise Forbidden(f"alert {alert_id} is not held by this post")
    await move_alert(
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
    alert = await lock_alert(session, alert_id)
    if alert is None:
        raise NotFound(f"alert {alert_id} not found")
    if post_id is not None and alert.post_id != post_id:
        raise Forbidden(f"alert {alert_id} is not held by post {post_id}")
    if not is_legal(alert.category, alert.state, AlertState.CLOSED):
        raise IllegalTransition(alert.id, alert.state, AlertState.CLOSED)
    # Every row lock before the first feed row: feed writers share one lock (realtime.feed).
    holder = (
        await lock_post(session, alert.post_id)
        if alert.state in ACTIVE_STATES and alert.post_id is not None
        else None
    )
    alert.outcome = outcome
    alert.note = note
    await move_alert(
        session, alert, AlertState.CLOSED, notices, actor=actor, reason=outcome, now=now
    )
    if holder is not None:
        await free_post(session, holder, notices, now=now, policy=policy)
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
    alert = await lock_alert(session, alert_id)
    if alert is None:
        raise NotFound(f"alert {alert_id} not found")
    if not is_legal(alert.category, alert.state, AlertState.CANCELLED):
        raise IllegalTransition(alert.id, alert.state, AlertState.CANCELLED)
    pending = await pending_offer_of_alert(session, alert.id)
    # Every row lock before the first feed row: feed writers share one lock (realtime.feed).
    freed_ids: set[int] = set()
    if pending is not None:
        freed_ids.add(pending.post_id)
    if alert.state in ACTIVE_STATES and alert.post_id is not None:
        freed_ids.add(alert.post_id)
    freed = [await lock_post(session, post_id) for post_id in sorted(freed_ids)]
    if pending is not None:
        pending.state = OfferState.WITHDRAWN
        pending.decided_at = now
        pending.reason = f"alert cancelled: {reason.strip()}"
        await feed_offer(session, pending, "offer.updated", alert)
    await move_alert(
        session,
        alert,
        AlertState.CANCELLED,
        notices,
        actor=actor,
        reason=reason.strip(),
        now=now,
    )
    for post in freed:
        await free_post(session, post, notices, now=now, policy=policy)
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

    Not a refusal: it does not count towards escalation and pauses nothing. Only this move
    passes the post over (the dispatcher took the alert from it); later passes and rounds may
    offer it the alert again.
    """
    now = now or utcnow()
    notices: list[StateNotice] = []
    alert, offer = await lock_offer_and_alert(session, offer_id)
    if offer.state != OfferState.PENDING:
        raise Conflict(f"offer {offer_id} is {offer.state}")
    await withdraw_offer(
        session, alert, offer, notices, why=f"withdrawn by {actor}", actor=actor, now=now
    )
    await offer_or_escalate(
        session, alert, notices, now=now, policy=policy, passing_over=offer.post_id
    )
    await serve_post(session, offer.post_id, notices, now=now, policy=policy, passing_over=alert.id)
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
    alert cannot be assigned another (409), unless it holds a drill and this alert is real
    (DESIGN §4: the drill gives way when the post accepts). The assignment is an offer with the
    usual deadline.
    """
    now = now or utcnow()
    notices: list[StateNotice] = []
    alert = await lock_alert(session, alert_id)
    if alert is None:
        raise NotFound(f"alert {alert_id} not found")
    # An offered alert is re-offered through ``new`` (its current offer is withdrawn first).
    if alert.state != AlertState.OFFERED and not is_legal(
        alert.category, alert.state, AlertState.OFFERED
    ):
        raise IllegalTransition(alert.id, alert.state, AlertState.OFFERED)
    if alert.state == AlertState.ACCEPTED and alert.post_id == post_id:
        return notices
    pending = await pending_offer_of_alert(session, alert.id)
    if pending is not None and pending.post_id == post_id:
        return notices
    # Every row lock before the first feed row (feed writers share one lock, realtime.feed);
    # the two posts of a reassignment in id order, so crossing reassignments cannot deadlock.
    holder_id = alert.post_id if alert.state == AlertState.ACCEPTED else None
    post_ids = {post_id} if holder_id is None else {post_id, holder_id}
    locked = {pid: await lock_post(session, pid) for pid in sorted(post_ids)}
    post = locked[post_id]
    previous_holder = locked[holder_id] if holder_id is not None else None
    held = await active_alert_of_post(session, post_id)
    if held is not None and (
        alert.drill or not await session.scalar(select(Alert.drill).where(Alert.id == held))
    ):
        raise Conflict(f"post {post.callsign} holds alert {held}")

    displaced: Alert | None = None
    other = (
        await session.execute(
            select(Offer).where(Offer.post_id == post_id, Offer.state == OfferState.PENDING)
        )
    ).scalar_one_or_none()
    if other is not None:
        # Lock order is alert → post, and we hold the post: never wait for the other alert.
        displaced = await lock_alert(session, other.alert_id, skip_locked=True)
        if displaced is None:
            raise Conflict(f"post {post.callsign} is being offered another alert; try again")
        other = await lock_offer(session, other.id)
        if other.state != OfferState.PENDING:
            displaced = None

    if displaced is not None and other is not None:
        await withdraw_offer(
            session,
            displaced,
            other,
            notices,
            why=f"{post.callsign} assigned to alert {alert.id} by {actor}",
            actor=actor,
            now=now,
        )
    if pending is not None:
        await withdraw_offer(
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
    await make_offer(
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
        await offer_or_escalate(session, displaced, notices, now=now, policy=policy)
    if previous_holder is not None:
        await free_post(session, previous_holder, notices, now=now, policy=policy)
    return notices

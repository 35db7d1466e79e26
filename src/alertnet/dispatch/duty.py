"""A post's duty and what it does to dispatch: the tablet reports its position and goes
available or off duty, and dispatch reacts (a waiting alert offered at once, a pending offer
given back and re-dispatched).

Like ``dispatch.actions``: the caller's session, never a commit, notices for after the commit.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.dispatch.locks import (
    active_alert_of_post,
    lock_alert,
    lock_post,
    pending_offer_of_alert,
)
from alertnet.dispatch.matching import offer_or_escalate, serve_post, withdraw_offer
from alertnet.dispatch.notifier import StateNotice
from alertnet.dispatch.policy import DEFAULT_POLICY, WAITING_STATES, DispatchPolicy
from alertnet.dispatch.views import post_message
from alertnet.errors import Conflict, InvalidInput
from alertnet.mahallas import check_location
from alertnet.models import Alert, AlertCategory, Offer, OfferState, PostStatus, utcnow
from alertnet.realtime.feed import append


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
    await serve_post(session, post_id, notices, now=now, policy=policy)
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
    post = await lock_post(session, post_id)
    held = await active_alert_of_post(session, post_id)
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
    alert = await lock_alert(session, alert_id)
    offer = await pending_offer_of_alert(session, alert_id)
    if alert is None or offer is None or offer.post_id != post_id:
        return notices
    await withdraw_offer(
        session, alert, offer, notices, why="post went off duty", actor=actor, now=now
    )
    await offer_or_escalate(session, alert, notices, now=now, policy=policy, passing_over=post_id)
    return notices


async def report_location(
    session: AsyncSession,
    post_id: int,
    lat: float,
    lon: float,
    accuracy_m: float | None,
    *,
    policy: DispatchPolicy = DEFAULT_POLICY,
) -> list[StateNotice]:
    """Store the post's position; a post on duty may be offered a waiting alert at once (a
    busy one only when it holds a drill and the alert is real)."""
    check_location(lat, lon)
    post = await lock_post(session, post_id)
    post.lat, post.lon, post.accuracy_m, post.location_at = lat, lon, accuracy_m, utcnow()
    await append(session, [post_message(post)])
    if post.status == PostStatus.OFF_DUTY or not await _alerts_waiting(session):
        return []  # the common case, every few seconds per tablet: no dispatch pass
    return await post_available(session, post_id, policy=policy)


async def _alerts_waiting(session: AsyncSession) -> bool:
    """Is any police alert waiting for a post (new or escalated)? One indexed probe."""
    waiting = await session.scalar(
        select(Alert.id)
        .where(Alert.state.in_(WAITING_STATES), Alert.category != AlertCategory.TROUBLE)
        .limit(1)
    )
    return waiting is not None


async def set_post_status(
    session: AsyncSession,
    post_id: int,
    status: str,
    actor: str,
    *,
    policy: DispatchPolicy = DEFAULT_POLICY,
) -> list[StateNotice]:
    """The crew goes ``available`` or ``off_duty``; ``busy`` only follows from holding an alert.

    Off duty gives back a pending offer (re-dispatched to the next post); a post holding an
    accepted alert must close it first (409). Going available may bring an offer at once.
    """
    if status == PostStatus.OFF_DUTY:
        notices = await post_unavailable(session, post_id, actor, policy=policy)
        post = await lock_post(session, post_id)
        post.status = PostStatus.OFF_DUTY.value
        await append(session, [post_message(post)])
        return notices
    if status != PostStatus.AVAILABLE:
        raise InvalidInput(f"a post can set itself available or off_duty, not {status!r}")
    post = await lock_post(session, post_id)
    if post.status == PostStatus.BUSY:
        raise Conflict(f"post {post.callsign} is busy with an alert: close it first")
    post.status = PostStatus.AVAILABLE.value
    await append(session, [post_message(post)])
    return await post_available(session, post_id, policy=policy)

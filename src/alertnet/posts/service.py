"""Mobile police posts: registering them, and what a post's tablet reports about itself.

A new post starts ``off_duty``: only its tablet (the crew) declares it available. A location
given at registration is stamped with the current time, like a tablet report.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.dispatch import service as dispatch
from alertnet.dispatch.notifier import StateNotice
from alertnet.dispatch.service import DEFAULT_POLICY, DispatchPolicy, post_view
from alertnet.errors import Conflict, InvalidInput, NotFound
from alertnet.mahallas import check_location, get_mahalla_by_name
from alertnet.models import Alert, AlertCategory, AlertState, Post, PostStatus, utcnow
from alertnet.realtime.feed import FeedMessage, append

MAX_CALLSIGN_LENGTH = 40


async def find_post_by_callsign(session: AsyncSession, callsign: str) -> Post | None:
    return (
        await session.execute(select(Post).where(Post.callsign == callsign.strip()))
    ).scalar_one_or_none()


async def get_post_by_callsign(session: AsyncSession, callsign: str) -> Post:
    """The post with this callsign; NotFound otherwise."""
    post = await find_post_by_callsign(session, callsign)
    if post is None:
        raise NotFound(f"no post with callsign {callsign.strip()!r}")
    return post


async def add_post(
    session: AsyncSession,
    callsign: str,
    *,
    lat: float | None = None,
    lon: float | None = None,
    home_mahalla_name: str | None = None,
) -> Post:
    """Register a post (off duty); its callsign is unique (Conflict when taken)."""
    callsign = callsign.strip()
    if not callsign:
        raise InvalidInput("a post needs a callsign")
    if len(callsign) > MAX_CALLSIGN_LENGTH or any(ch.isspace() for ch in callsign):
        raise InvalidInput(
            f"callsign {callsign!r} must be at most {MAX_CALLSIGN_LENGTH} characters, no spaces"
        )
    location = check_location(lat, lon)
    home_mahalla_id = None
    if home_mahalla_name is not None:
        home_mahalla_id = (await get_mahalla_by_name(session, home_mahalla_name)).id
    if await find_post_by_callsign(session, callsign) is not None:
        raise Conflict(f"post {callsign!r} already exists")
    post = Post(
        callsign=callsign,
        status=PostStatus.OFF_DUTY.value,
        lat=location[0] if location else None,
        lon=location[1] if location else None,
        location_at=utcnow() if location else None,
        home_mahalla_id=home_mahalla_id,
    )
    session.add(post)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent insert of the same callsign
        raise Conflict(f"post {callsign!r} already exists") from exc
    return post


# --- the tablet's own reports ---------------------------------------------------------------


async def _locked_post(session: AsyncSession, post_id: int) -> Post:
    post = await session.scalar(select(Post).where(Post.id == post_id).with_for_update())
    if post is None:
        raise NotFound(f"no post {post_id}")
    return post


async def _announce(session: AsyncSession, post: Post) -> None:
    await append(session, [FeedMessage("post.updated", post_view(post), post_id=post.id)])


async def report_location(
    session: AsyncSession,
    post_id: int,
    lat: float,
    lon: float,
    accuracy_m: float | None,
    *,
    policy: DispatchPolicy = DEFAULT_POLICY,
) -> list[StateNotice]:
    """Store the post's position; an available post may be offered a waiting alert at once."""
    check_location(lat, lon)
    post = await _locked_post(session, post_id)
    post.lat, post.lon, post.accuracy_m, post.location_at = lat, lon, accuracy_m, utcnow()
    await _announce(session, post)
    if post.status != PostStatus.AVAILABLE or not await _alerts_waiting(session):
        return []  # the common case, every few seconds per tablet: no dispatch pass
    return await dispatch.post_available(session, post_id, policy=policy)


async def _alerts_waiting(session: AsyncSession) -> bool:
    """Is any police alert waiting for a post (new or escalated)? One indexed probe."""
    waiting = await session.scalar(
        select(Alert.id)
        .where(
            Alert.state.in_((AlertState.NEW, AlertState.ESCALATED)),
            Alert.category != AlertCategory.TROUBLE,
        )
        .limit(1)
    )
    return waiting is not None


async def set_status(
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
        notices = await dispatch.post_unavailable(session, post_id, actor, policy=policy)
        post = await _locked_post(session, post_id)
        post.status = PostStatus.OFF_DUTY.value
        await _announce(session, post)
        return notices
    if status != PostStatus.AVAILABLE:
        raise InvalidInput(f"a post can set itself available or off_duty, not {status!r}")
    post = await _locked_post(session, post_id)
    if post.status == PostStatus.BUSY:
        raise Conflict(f"post {post.callsign} is busy with an alert: close it first")
    post.status = PostStatus.AVAILABLE.value
    await _announce(session, post)
    return await dispatch.post_available(session, post_id, policy=policy)

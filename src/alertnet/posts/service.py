"""Mobile police posts: registering them and finding them by callsign.

A new post starts ``off_duty``: only its tablet (the crew) declares it available. A location
given at registration is stamped with the current time, like a tablet report. What a tablet
reports later (position, duty status) can hand the post an alert, so it lives in
``dispatch.duty``.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet import db
from alertnet.errors import Conflict, InvalidInput
from alertnet.mahallas import check_location, get_mahalla_by_name
from alertnet.models import Post, PostStatus, utcnow

MAX_CALLSIGN_LENGTH = 40


async def find_post_by_callsign(session: AsyncSession, callsign: str) -> Post | None:
    return await db.find_by(session, Post, Post.callsign == callsign.strip())


async def get_post_by_callsign(session: AsyncSession, callsign: str) -> Post:
    """The post with this callsign; NotFound otherwise."""
    return await db.get_by(
        session,
        Post,
        Post.callsign == callsign.strip(),
        f"no post with callsign {callsign.strip()!r}",
    )


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

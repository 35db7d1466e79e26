"""Small builders for the rows tests need, with defaults that make a valid, dispatchable set.

Each one adds its row and flushes (so ids are assigned) but never commits: the test, or the
service under test, owns the transaction. Anything not named can be set through ``fields``.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.models import Alert, Device, Event, Mahalla, Offer, Post, utcnow

# Tashkent, Amir Temur square: the DESIGN's example coordinates.
DEFAULT_LAT: Final = 41.3111
DEFAULT_LON: Final = 69.2797

_PRIORITY: Final = {"panic": 100, "fire": 90, "medical": 80, "intrusion": 70, "tamper": 40}


def random_eui() -> str:
    return secrets.token_hex(8)


async def create_mahalla(
    session: AsyncSession,
    name: str | None = None,
    risk: str = "red",
    lat: float | None = DEFAULT_LAT,
    lon: float | None = DEFAULT_LON,
    **fields: Any,
) -> Mahalla:
    mahalla = Mahalla(
        name=name or f"Mahalla {secrets.token_hex(3)}", risk=risk, lat=lat, lon=lon, **fields
    )
    session.add(mahalla)
    await session.flush()
    return mahalla


async def create_device(
    session: AsyncSession,
    eui: str | None = None,
    kind: str = "panic_button",
    lat: float = DEFAULT_LAT,
    lon: float = DEFAULT_LON,
    mahalla_id: int | None = None,
    key: bytes | None = None,
    supervision_interval_s: int = 900,
    status: str = "active",
    **fields: Any,
) -> Device:
    """A device with a random EUI and a random 16-byte key unless given."""
    device = Device(
        eui=eui or random_eui(),
        kind=kind,
        lat=lat,
        lon=lon,
        mahalla_id=mahalla_id,
        key=key if key is not None else secrets.token_bytes(16),
        supervision_interval_s=supervision_interval_s,
        status=status,
        **fields,
    )
    session.add(device)
    await session.flush()
    return device


async def create_post(
    session: AsyncSession,
    callsign: str | None = None,
    lat: float | None = DEFAULT_LAT,
    lon: float | None = DEFAULT_LON,
    status: str = "available",
    location_at: datetime | None = None,
    **fields: Any,
) -> Post:
    """An available post with a fresh location fix (now) unless told otherwise."""
    post = Post(
        callsign=callsign or f"P-{secrets.token_hex(3)}",
        lat=lat,
        lon=lon,
        status=status,
        location_at=location_at or utcnow(),
        **fields,
    )
    session.add(post)
    await session.flush()
    return post


async def create_event(
    session: AsyncSession,
    device: Device,
    counter: int | None,
    code: str = "panic",
    received_at: datetime | None = None,
    **fields: Any,
) -> Event:
    """An event keyed ``c:<counter>`` as a v1 frame's (DESIGN §2.3) unless ``dedup_key`` says."""
    received_at = received_at or utcnow()
    event = Event(
        device_id=device.id,
        dedup_key=fields.pop("dedup_key", f"c:{counter}"),
        counter=counter,
        code=code,
        occurred_at=fields.pop("occurred_at", received_at),
        received_at=received_at,
        first_transport=fields.pop("first_transport", "mqtt"),
        **fields,
    )
    session.add(event)
    await session.flush()
    return event


async def create_alert(
    session: AsyncSession,
    device: Device,
    category: str = "panic",
    state: str = "new",
    last_counter: int = 1,
    opened_at: datetime | None = None,
    **fields: Any,
) -> Alert:
    """An alert on ``device``'s location and mahalla, priority from its category."""
    opened_at = opened_at or utcnow()
    alert = Alert(
        device_id=device.id,
        mahalla_id=fields.pop("mahalla_id", device.mahalla_id),
        category=category,
        state=state,
        priority=fields.pop("priority", _PRIORITY.get(category, 10)),
        lat=fields.pop("lat", device.lat),
        lon=fields.pop("lon", device.lon),
        last_counter=last_counter,
        opened_at=opened_at,
        last_event_at=fields.pop("last_event_at", opened_at),
        **fields,
    )
    session.add(alert)
    await session.flush()
    return alert


async def create_offer(
    session: AsyncSession,
    alert: Alert,
    post: Post,
    state: str = "pending",
    timeout_s: float = 30.0,
    distance_m: float = 500.0,
    **fields: Any,
) -> Offer:
    offered_at = fields.pop("offered_at", utcnow())
    offer = Offer(
        alert_id=alert.id,
        post_id=post.id,
        state=state,
        offered_at=offered_at,
        deadline_at=fields.pop("deadline_at", offered_at + timedelta(seconds=timeout_s)),
        distance_m=distance_m,
        **fields,
    )
    session.add(offer)
    await session.flush()
    return offer

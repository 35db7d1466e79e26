"""The alert resource shape of DESIGN §5, built from the database in one query."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.models import Alert, Device, Mahalla, Offer, OfferState, Post


def iso(value: datetime | None) -> str | None:
    """A timestamp as the API and the feed write it (ISO 8601, UTC offset), or None."""
    return value.isoformat() if value is not None else None


async def alert_views(session: AsyncSession, alert_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """``{alert_id: {"id", "device_eui", "category", "state", …}}`` for the given alerts."""
    if not alert_ids:
        return {}
    rows = await session.execute(
        select(
            Alert,
            Device.eui,
            Device.kind,
            Device.address,
            Mahalla.name,
            Mahalla.risk,
            Post.callsign,
            Offer.post_id,
        )
        .join(Device, Device.id == Alert.device_id)
        .outerjoin(Mahalla, Mahalla.id == Alert.mahalla_id)
        .outerjoin(Post, Post.id == Alert.post_id)
        .outerjoin(Offer, (Offer.alert_id == Alert.id) & (Offer.state == OfferState.PENDING))
        .where(Alert.id.in_(alert_ids))
    )
    views: dict[int, dict[str, Any]] = {}
    for alert, eui, kind, address, mahalla, risk, callsign, offered_post_id in rows:
        views[alert.id] = {
            "id": alert.id,
            "device_eui": eui,
            "device_kind": kind,
            "address": address,
            "category": alert.category,
            "trouble": alert.trouble,
            "state": alert.state,
            "priority": alert.priority,
            "press_count": alert.press_count,
            "cancel_count": alert.cancel_count,
            "mahalla": mahalla,
            "mahalla_id": alert.mahalla_id,
            "risk": risk,
            "lat": alert.lat,
            "lon": alert.lon,
            "opened_at": iso(alert.opened_at),
            "last_event_at": iso(alert.last_event_at),
            "drill": alert.drill,
            "post": callsign,
            "post_id": alert.post_id,
            # The post that has it on offer right now: it must hear about changes (a cancel).
            "offered_post_id": offered_post_id,
        }
    return views

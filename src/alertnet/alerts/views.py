"""The alert resource shape of DESIGN §5, built from the database in one query.

A view is the full record (the feed stores it so): premises, call list, device name and
position. Whatever answers a caller passes it through ``Scope.shown_alert`` first (§10).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.models import Alert, Device, Event, Mahalla, Offer, OfferState, Post
from alertnet.premises import premises_dict


def iso(value: datetime | None) -> str | None:
    """A timestamp as the API and the feed write it (ISO 8601, UTC offset), or None."""
    return value.isoformat() if value is not None else None


async def alert_views(session: AsyncSession, alert_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """``{alert_id: {"id", "device_eui", "category", "state", …}}`` for the given alerts."""
    if not alert_ids:
        return {}
    # The newest evidence merged into the alert (DESIGN §9.3: a dismissal names the last it saw).
    last_event_id = select(func.max(Event.id)).where(Event.alert_id == Alert.id).scalar_subquery()
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
            Device.site,
            Device.name,
            Device.premises_ref,
            Device.owner,
            Device.street,
            Device.notes,
            Device.contacts,
            last_event_id,
        )
        .join(Device, Device.id == Alert.device_id)
        .outerjoin(Mahalla, Mahalla.id == Alert.mahalla_id)
        .outerjoin(Post, Post.id == Alert.post_id)
        .outerjoin(Offer, (Offer.alert_id == Alert.id) & (Offer.state == OfferState.PENDING))
        .where(Alert.id.in_(alert_ids))
    )
    views: dict[int, dict[str, Any]] = {}
    for (
        alert,
        eui,
        kind,
        address,
        mahalla,
        risk,
        callsign,
        offered_post_id,
        site,
        device_name,
        ref,
        owner,
        street,
        notes,
        contacts,
        newest_event_id,
    ) in rows:
        views[alert.id] = {
            "id": alert.id,
            "device_eui": eui,
            "device_kind": kind,
            # The full record: every reader gets it through ``Scope.shown_alert`` (§10).
            "device_site": site,
            "device_name": device_name,
            "address": address,
            "premises": premises_dict(ref, owner, address, street, notes, contacts),
            "silent": alert.silent,
            "call_override_by": alert.call_override_by,
            "call_override_at": iso(alert.call_override_at),
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
            # Shared by every console (DESIGN §10): the escalation alarm stops for all at once.
            # An acknowledgement older than the latest escalation no longer silences it.
            "acknowledged_by": alert.acknowledged_by,
            "acknowledged_at": iso(alert.acknowledged_at),
            "escalated_at": iso(alert.escalated_at),
            "post": callsign,
            "post_id": alert.post_id,
            # The post that has it on offer right now: it must hear about changes (a cancel).
            "offered_post_id": offered_post_id,
            "last_event_id": newest_event_id,
            # A camera alert in ``verify`` rings on the console from then on (DESIGN §9.3).
            "verify_due_at": iso(alert.verify_due_at),
        }
    return views

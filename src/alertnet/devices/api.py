"""The console's read API for the field: device health and the mahallas.

``GET /api/v1/devices`` lists devices with battery, last contact, status and their open
troubles — ``offline``, ``low_battery``, ``mains_lost``, ``counter_reset`` (the comma list of
the device's open ``trouble`` alert) and ``tamper`` (an open tamper alert). ``GET
/api/v1/mahallas`` lists the mahallas with their risk class and centroid. What a caller sees
is its scope's (``alertnet.auth.scope``): dispatchers and admins every mahalla, an observer
only its own; posts read neither.

What a row shows is ``Scope.shown_device_view``'s (DESIGN §10): to an observer a household's or
a business's device is an anonymous dot on its street, with no health; offline ones are
counted per street (``GET /api/v1/devices/offline-by-street``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Literal

from fastapi import APIRouter, Query
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.alerts.views import iso
from alertnet.auth.deps import CurrentUser, DbSession
from alertnet.auth.scope import Scope
from alertnet.models import (
    OPEN_ALERT_STATES,
    Alert,
    AlertCategory,
    Device,
    DeviceStatus,
    Mahalla,
)
from alertnet.premises import Premises
from alertnet.validation import Int32

router = APIRouter(prefix="/api/v1", tags=["devices"])

# The order troubles are listed in: what stops a device from reporting at all comes first.
TROUBLE_ORDER = ("offline", "tamper", "counter_reset", "mains_lost", "low_battery")
TROUBLE_CATEGORIES = (AlertCategory.TROUBLE, AlertCategory.TAMPER)


async def open_troubles(
    session: AsyncSession, device_ids: Sequence[int] | None = None
) -> dict[int, dict[str, int]]:
    """``{device_id: {trouble: alert_id}}`` from the open trouble and tamper alerts."""
    query = select(Alert.device_id, Alert.id, Alert.category, Alert.trouble).where(
        Alert.state.in_(OPEN_ALERT_STATES), Alert.category.in_(TROUBLE_CATEGORIES)
    )
    if device_ids is not None:
        if not device_ids:
            return {}
        query = query.where(Alert.device_id.in_(device_ids))
    troubles: dict[int, dict[str, int]] = defaultdict(dict)
    for device_id, alert_id, category, kinds in await session.execute(query):
        if category == AlertCategory.TAMPER:
            troubles[device_id]["tamper"] = alert_id
            continue
        for kind in filter(None, (kinds or "").split(",")):
            troubles[device_id][kind] = alert_id
    return troubles


def _ordered(kinds: set[str]) -> list[str]:
    known = [kind for kind in TROUBLE_ORDER if kind in kinds]
    return known + sorted(kinds.difference(TROUBLE_ORDER))


async def device_health(
    session: AsyncSession,
    scope: Scope,
    *,
    status: str | None = None,
    mahalla_id: int | None = None,
    troubled_only: bool = False,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Health rows of the devices ``scope`` sees, troubled first, then by mahalla and EUI."""
    query = (
        select(Device, Mahalla.name, Mahalla.risk)
        .outerjoin(Mahalla, Mahalla.id == Device.mahalla_id)
        .where(scope.devices())
    )
    if status is not None or troubled_only:
        # Selecting on health must not single out the devices whose health is private (§10).
        query = query.where(scope.device_health_visible())
    if status is not None:
        query = query.where(Device.status == status)
    if mahalla_id is not None:
        query = query.where(Device.mahalla_id == mahalla_id)
    if troubled_only:
        troubled = select(Alert.device_id).where(
            Alert.state.in_(OPEN_ALERT_STATES), Alert.category.in_(TROUBLE_CATEGORIES)
        )
        query = query.where(or_(Device.status == DeviceStatus.OFFLINE, Device.id.in_(troubled)))
    rows = (await session.execute(query.order_by(Device.eui).limit(limit))).all()
    troubles = await open_troubles(session, [device.id for device, _, _ in rows])
    views = []
    for device, mahalla, risk in rows:
        held = troubles.get(device.id, {})
        kinds = set(held)
        if device.status == DeviceStatus.OFFLINE:
            kinds.add("offline")
        view = {
            "id": device.id,
            "eui": device.eui,
            "kind": device.kind,
            "site": device.site,
            "name": device.name,
            "address": device.address,
            "lat": device.lat,
            "lon": device.lon,
            "mahalla_id": device.mahalla_id,
            "mahalla": mahalla,
            "risk": risk,
            "status": device.status,
            "battery": device.battery,
            "last_seen_at": iso(device.last_seen_at),
            "supervision_interval_s": device.supervision_interval_s,
            "troubles": _ordered(kinds),
            "trouble_alert_ids": sorted(set(held.values())),
            "silent": device.silent,
            "street": device.street,
            "premises": Premises.of_device(device).as_dict(),
        }
        views.append(scope.shown_device_view(view))
    views.sort(key=lambda view: (not view["troubles"], view["mahalla"] or "", view["eui"]))
    return views


@router.get("/devices", summary="Device health: status, battery, last seen, open troubles")
async def list_devices(
    session: DbSession,
    actor: CurrentUser,
    status: Literal["active", "offline", "disabled"] | None = None,
    mahalla_id: Int32 | None = None,
    trouble: bool = Query(default=False, description="only devices offline or with a trouble"),
    limit: int = Query(default=1000, ge=1, le=10_000),
) -> list[dict[str, Any]]:
    scope = actor.scope
    scope.ensure_reads_area("the device list")
    if mahalla_id is not None:
        scope.ensure_sees_mahalla(mahalla_id)
    return await device_health(
        session,
        scope,
        status=status,
        mahalla_id=mahalla_id,
        troubled_only=trouble,
        limit=limit,
    )


@router.get(
    "/devices/offline-by-street",
    summary="Offline household and business alarms, counted per mahalla and street",
)
async def offline_by_street(
    session: DbSession, actor: CurrentUser, mahalla_id: Int32 | None = None
) -> list[dict[str, Any]]:
    """What the mahalla team may know of unprotected homes and shops (DESIGN §10): how many
    per street, never which. ``street`` is empty for devices whose premises name none."""
    scope = actor.scope
    scope.ensure_reads_area("the device list")
    query = (
        select(Device.mahalla_id, Mahalla.name, Device.street, func.count(Device.id))
        .outerjoin(Mahalla, Mahalla.id == Device.mahalla_id)
        .where(scope.devices(), scope.counts_offline_by_street())
        .group_by(Device.mahalla_id, Mahalla.name, Device.street)
        .order_by(Mahalla.name, Device.street)
    )
    if mahalla_id is not None:
        scope.ensure_sees_mahalla(mahalla_id)
        query = query.where(Device.mahalla_id == mahalla_id)
    return [
        {"mahalla_id": mahalla, "mahalla": name, "street": street, "offline": count}
        for mahalla, name, street, count in await session.execute(query)
    ]


@router.get("/mahallas", summary="Mahallas the caller may see, with risk class and centroid")
async def list_mahallas(session: DbSession, actor: CurrentUser) -> list[dict[str, Any]]:
    scope = actor.scope
    scope.ensure_reads_area("the mahallas")
    query = select(Mahalla).where(scope.mahallas()).order_by(Mahalla.name)
    return [
        {
            "id": mahalla.id,
            "name": mahalla.name,
            "district": mahalla.district,
            "region": mahalla.region,
            "risk": mahalla.risk,
            "lat": mahalla.lat,
            "lon": mahalla.lon,
            "households": mahalla.households,
            "businesses": mahalla.businesses,
        }
        for mahalla in await session.scalars(query)
    ]

"""Trouble alerts: device conditions the console must see but the police are not sent to.

A device has at most one open trouble alert (the partial unique index on (device, category));
its ``trouble`` field lists the active conditions — ``offline``, ``mains_lost``,
``low_battery``, ``counter_reset`` — and it closes itself when the last one clears.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.alerts.priority import opening_priority
from alertnet.models import OPEN_ALERT_STATES, Alert, AlertAudit, AlertCategory, AlertState


@dataclass(frozen=True, slots=True)
class DeviceRef:
    id: int
    eui: str
    mahalla_id: int | None
    risk: str | None
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Change:
    alert_id: int
    opened: bool


async def _open_trouble(session: AsyncSession, device_id: int) -> Alert | None:
    return await session.scalar(
        select(Alert)
        .where(
            Alert.device_id == device_id,
            Alert.category == AlertCategory.TROUBLE.value,
            Alert.state.in_(OPEN_ALERT_STATES),
        )
        .with_for_update()
    )


async def raise_(session: AsyncSession, device: DeviceRef, kind: str, at: datetime) -> Change:
    """Add ``kind`` to the device's open trouble alert, opening one if there is none."""
    (change,) = await raise_many(session, [(device, kind, at)])
    return change


async def raise_many(
    session: AsyncSession, raises: Sequence[tuple[DeviceRef, str, datetime]]
) -> list[Change]:
    """``raise_`` for many devices at once: one lookup and one flush, whatever the count.

    A power cut makes thousands of alarms report ``mains_lost`` within a minute; row by row
    that costs a round trip or three per device. Returns one Change per input, in order.
    """
    if not raises:
        return []
    device_ids = {device.id for device, _kind, _at in raises}
    open_alerts = {
        alert.device_id: alert
        for alert in await session.scalars(
            select(Alert)
            .where(
                Alert.device_id.in_(device_ids),
                Alert.category == AlertCategory.TROUBLE.value,
                Alert.state.in_(OPEN_ALERT_STATES),
            )
            .order_by(Alert.device_id)
            .with_for_update()
        )
    }
    opened: list[tuple[Alert, DeviceRef, str, datetime]] = []
    for device, kind, at in raises:
        alert = open_alerts.get(device.id)
        if alert is None:
            alert = Alert(
                device_id=device.id,
                mahalla_id=device.mahalla_id,
                category=AlertCategory.TROUBLE.value,
                trouble=kind,
                priority=opening_priority(AlertCategory.TROUBLE, device.risk),
                state=AlertState.NEW.value,
                press_count=1,
                cancel_count=0,
                refusal_count=0,
                drill=False,
                lat=device.lat,
                lon=device.lon,
                last_counter=0,
                opened_at=at,
                last_event_at=at,
            )
            session.add(alert)
            open_alerts[device.id] = alert
            opened.append((alert, device, kind, at))
            continue
        kinds = [k for k in (alert.trouble or "").split(",") if k]
        if kind not in kinds:
            kinds.append(kind)
        alert.trouble = ",".join(kinds)
        alert.last_event_at = at
    await session.flush()  # one multi-row INSERT for the new alerts, ids come back
    session.add_all(
        AlertAudit(
            alert_id=alert.id,
            at=at,
            actor=f"device:{device.eui}",
            from_state=None,
            to_state=AlertState.NEW.value,
            reason=f"trouble: {kind}",
        )
        for alert, device, kind, at in opened
    )
    new_ids = {id(alert) for alert, _device, _kind, _at in opened}
    changes: list[Change] = []
    announced_open: set[int] = set()
    for device, _kind, _at in raises:
        alert = open_alerts[device.id]
        first_mention = id(alert) in new_ids and alert.id not in announced_open
        announced_open.add(alert.id)
        changes.append(Change(alert.id, opened=first_mention))
    return changes


async def clear(session: AsyncSession, device: DeviceRef, kind: str, at: datetime) -> Change | None:
    """Remove ``kind``; close the trouble alert when nothing is left. None if nothing changed."""
    alert = await _open_trouble(session, device.id)
    if alert is None:
        return None
    kinds = [k for k in (alert.trouble or "").split(",") if k]
    if kind not in kinds:
        return None
    kinds.remove(kind)
    alert.trouble = ",".join(kinds)
    alert.last_event_at = at
    if not kinds:
        session.add(
            AlertAudit(
                alert_id=alert.id,
                at=at,
                actor=f"device:{device.eui}",
                from_state=alert.state,
                to_state=AlertState.CLOSED.value,
                reason=f"{kind} cleared",
            )
        )
        alert.state = AlertState.CLOSED.value
        alert.closed_at = at
        alert.outcome = "resolved"
    return Change(alert.id, opened=False)

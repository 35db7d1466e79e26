"""Trouble alerts: device conditions the console must see but the police are not sent to.

A device has at most one open trouble alert (the partial unique index on (device, category));
its ``trouble`` field lists the active conditions — ``offline``, ``mains_lost``,
``low_battery``, ``counter_reset`` — and it closes itself (``alerts.state.transition``) when
the last one clears. Raised and cleared by ingest (``alerts.intake``) and by device supervision.

Raising a condition the open alert already lists merges into it silently: only its last event
time moves, and the ``Change`` says nothing changed, so the caller announces nothing. Replaying
one sniffed frame in a loop (each copy a ``counter_reset``) neither opens trouble after trouble
nor floods the console's feed (issue 12).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.alerts.opening import AlertOpening, DeviceRef
from alertnet.alerts.state import log_opened, transition
from alertnet.models import OPEN_ALERT_STATES, Alert, AlertCategory, AlertState

__all__ = ["Change", "DeviceRef", "clear", "raise_", "raise_many"]

RESOLVED_OUTCOME = "resolved"
#: The trouble kind of a panel code alertnet does not know (§9.1): each one is news, so raising
#: it again takes back an earlier acknowledgement.
UNKNOWN_CODE = "unknown_code"


@dataclass(frozen=True, slots=True)
class Change:
    """A trouble alert a raise or clear touched; ``opened`` when this raise created it.

    ``changed`` is False for a raise of a condition the alert already listed: nothing a
    viewer sees has changed, so nothing is announced.
    """

    alert_id: int
    opened: bool
    changed: bool = True


async def _open_trouble(session: AsyncSession, device_id: int) -> Alert | None:
    return await session.scalar(
        select(Alert)
        .where(
            Alert.device_id == device_id,
            Alert.category == AlertCategory.TROUBLE.value,
            Alert.state.in_(OPEN_ALERT_STATES),
        )
        .with_for_update(key_share=True)
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
            .with_for_update(key_share=True)
        )
    }
    opened: list[tuple[Alert, AlertOpening]] = []
    added: list[bool] = []  # per raise: did it add its kind to the alert
    for device, kind, at in raises:
        alert = open_alerts.get(device.id)
        if alert is None:
            opening = AlertOpening(
                device, AlertCategory.TROUBLE, at, reason=f"trouble: {kind}", trouble=kind
            )
            alert = Alert(**opening.row())
            session.add(alert)
            open_alerts[device.id] = alert
            opened.append((alert, opening))
            added.append(True)
            continue
        kinds = [k for k in (alert.trouble or "").split(",") if k]
        rings_again = kind == UNKNOWN_CODE and alert.acknowledged_at is not None
        added.append(kind not in kinds or rings_again)
        if kind not in kinds:
            kinds.append(kind)
            alert.trouble = ",".join(kinds)
        if rings_again:  # a new unknown panel code is news: every console rings again
            alert.acknowledged_at = None
            alert.acknowledged_by = None
        if alert.last_event_at is None or at > alert.last_event_at:
            alert.last_event_at = at
    await session.flush()  # one multi-row INSERT for the new alerts, ids come back
    session.add_all(opening.audit(alert.id) for alert, opening in opened)
    for alert, opening in opened:
        await log_opened(session, alert.id, opening)
    new_ids = {id(alert) for alert, _opening in opened}
    changes: list[Change] = []
    announced_open: set[int] = set()
    for (device, _kind, _at), kind_added in zip(raises, added, strict=True):
        alert = open_alerts[device.id]
        first_mention = id(alert) in new_ids and alert.id not in announced_open
        announced_open.add(alert.id)
        changes.append(Change(alert.id, opened=first_mention, changed=kind_added))
    return changes


async def clear(session: AsyncSession, device: DeviceRef, kind: str, at: datetime) -> Change | None:
    """Remove ``kind``; close the trouble alert when nothing is left. None if nothing changed.

    The close is not announced here: the caller announces every alert its batch changed.
    """
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
        alert.outcome = RESOLVED_OUTCOME
        await transition(
            session,
            alert,
            AlertState.CLOSED,
            actor=device.actor,
            reason=f"{kind} cleared",
            at=at,
            announce=False,
        )
    return Change(alert.id, opened=False)

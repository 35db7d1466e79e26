"""What the exemplary criteria read from the past (DESIGN §12): each device's offline periods,
its confirmed incidents, its monthly test marks, and each mahalla's times to on scene.

Offline periods are the device's trouble alerts that concerned ``offline``: one still open
whose kinds include it, or one whose audit trail says it opened for it (``trouble: offline``)
or closed when it cleared (``offline cleared``). Such an alert counts from its opening to its
close (an open one to the end of the period). A device that went offline while another trouble
of it was already open is therefore counted offline from that trouble's opening — the figure
errs towards "not online", never towards an exemplary verdict it has not earned.

A confirmed incident is a closed, non-drill alert with outcome ``confirmed`` or
``handed_over``, opened in the period. Every query is bounded by a mahalla subquery, never by
a long list of ids, so a city-wide figure stays one statement per kind of fact.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.models import (
    OPEN_ALERT_STATES,
    Alert,
    AlertAudit,
    AlertCategory,
    AlertState,
    Device,
    DeviceTestMonth,
)

OFFLINE: Final = "offline"
OFFLINE_REASONS: Final = (f"trouble: {OFFLINE}", f"{OFFLINE} cleared")
CONFIRMED_OUTCOMES: Final = ("confirmed", "handed_over")

Interval = tuple[datetime, datetime]


def _devices_of(mahalla_ids: Sequence[int]) -> ColumnElement[bool]:
    return Alert.device_id.in_(select(Device.id).where(Device.mahalla_id.in_(mahalla_ids)))


def merged_length_s(intervals: Sequence[Interval], start: datetime, end: datetime) -> float:
    """Seconds of ``[start, end]`` covered by the union of ``intervals``."""
    clipped = sorted((max(a, start), min(b, end)) for a, b in intervals if b > start and a < end)
    total = 0.0
    current: Interval | None = None
    for a, b in clipped:
        if current is None or a > current[1]:
            if current is not None:
                total += (current[1] - current[0]).total_seconds()
            current = (a, b)
        else:
            current = (current[0], max(current[1], b))
    if current is not None:
        total += (current[1] - current[0]).total_seconds()
    return total


async def offline_periods(
    session: AsyncSession, mahalla_ids: Sequence[int], *, since: datetime, until: datetime
) -> dict[int, list[Interval]]:
    """``{device_id: [(from, to)]}``: the offline periods overlapping ``[since, until)``."""
    overlapping = (
        Alert.category == AlertCategory.TROUBLE.value,
        _devices_of(mahalla_ids),
        Alert.opened_at < until,
        or_(Alert.closed_at.is_(None), Alert.closed_at > since),
    )
    audited = set(
        await session.scalars(
            select(AlertAudit.alert_id)
            .where(
                AlertAudit.reason.in_(OFFLINE_REASONS),
                AlertAudit.alert_id.in_(select(Alert.id).where(*overlapping)),
            )
            .distinct()
        )
    )
    rows = await session.execute(
        select(
            Alert.id,
            Alert.device_id,
            Alert.state,
            Alert.trouble,
            Alert.opened_at,
            Alert.closed_at,
            Alert.last_event_at,
        ).where(*overlapping)
    )
    periods: dict[int, list[Interval]] = defaultdict(list)
    for alert_id, device_id, state, kinds, opened_at, closed_at, last_event_at in rows:
        still_open = state in OPEN_ALERT_STATES
        lists_offline = OFFLINE in (kinds or "").split(",")
        if not (alert_id in audited or (still_open and lists_offline)):
            continue
        end = until if still_open else (closed_at or last_event_at or until)
        periods[device_id].append((opened_at, end))
    return periods


async def confirmed_incidents(
    session: AsyncSession, mahalla_ids: Sequence[int], *, since: datetime, until: datetime
) -> dict[int, int]:
    """``{device_id: count}`` of the confirmed incidents opened in ``[since, until)``."""
    rows = await session.execute(
        select(Alert.device_id, func.count())
        .where(
            _devices_of(mahalla_ids),
            Alert.state == AlertState.CLOSED.value,
            Alert.drill.is_(False),
            Alert.outcome.in_(CONFIRMED_OUTCOMES),
            Alert.opened_at >= since,
            Alert.opened_at < until,
        )
        .group_by(Alert.device_id)
    )
    return {device_id: count for device_id, count in rows}


def month_label(at: datetime) -> str:
    """The calendar month (UTC, as test marks are kept) of ``at``: ``YYYY-MM``."""
    return at.astimezone(UTC).strftime("%Y-%m")


def _next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def required_months(start: datetime, until: datetime, now: datetime) -> list[str]:
    """The calendar months (UTC) in which a site registered for ``[start, until)`` must have
    reported a test: each month that is over by ``now`` and of which at least half lies in
    the period. A month still running may yet get its test; a month the period only grazes (a
    few hours of it, e.g. where a local month starts in UTC's previous one) is not its own."""
    months: list[str] = []
    cursor = start.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    while cursor < until:
        following = _next_month(cursor)
        overlap = min(following, until) - max(cursor, start)
        if following <= now and overlap * 2 >= following - cursor:
            months.append(cursor.strftime("%Y-%m"))
        cursor = following
    return months


async def tested_months(
    session: AsyncSession, mahalla_ids: Sequence[int], *, since: datetime, until: datetime
) -> dict[int, set[str]]:
    """``{device_id: {"YYYY-MM"}}``: the months in the period in which each device tested."""
    rows = await session.execute(
        select(DeviceTestMonth.device_id, DeviceTestMonth.month).where(
            DeviceTestMonth.device_id.in_(
                select(Device.id).where(Device.mahalla_id.in_(mahalla_ids))
            ),
            DeviceTestMonth.month >= month_label(since),
            DeviceTestMonth.month <= month_label(until),
        )
    )
    months: dict[int, set[str]] = defaultdict(set)
    for device_id, month in rows:
        months[device_id].add(month)
    return months


async def times_to_on_scene(
    session: AsyncSession, mahalla_ids: Sequence[int], *, since: datetime, until: datetime
) -> dict[int, list[float]]:
    """``{mahalla_id: [seconds]}``: press to on scene of the real (non-drill, non-trouble)
    alerts opened in ``[since, until)`` that a post reached."""
    rows = await session.execute(
        select(Alert.mahalla_id, Alert.opened_at, Alert.on_scene_at).where(
            Alert.mahalla_id.in_(mahalla_ids),
            Alert.opened_at >= since,
            Alert.opened_at < until,
            Alert.drill.is_(False),
            Alert.category != AlertCategory.TROUBLE.value,
            Alert.on_scene_at.is_not(None),
        )
    )
    times: dict[int, list[float]] = defaultdict(list)
    for mahalla_id, opened_at, on_scene_at in rows:
        if mahalla_id is None or on_scene_at is None:
            continue  # neither happens: the query asks for both
        times[mahalla_id].append(max(0.0, (on_scene_at - opened_at).total_seconds()))
    return times

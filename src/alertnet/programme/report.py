"""The mahalla's monthly report (DESIGN §12): one month's incidents and response times, with
the coverage, offline devices and exemplary figures as they stand when it is printed.

The month is a calendar month in ``ALERTNET_TIMEZONE`` (the figures a mahalla team discusses
are local months); a month still running is reported up to now. alertnet keeps no history of
coverage or device health, so those are "as of" the report's ``generated_at``; the exemplary
figures are those of the 90 days ending with the month (or now). Everything passes through the
caller's scope: an observer's report is its own mahalla's, with households and businesses as
counts per street (DESIGN §10).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.alerts.counts import alert_counts
from alertnet.auth.scope import Scope
from alertnet.config import Settings
from alertnet.devices.api import device_health
from alertnet.dispatch.stats import summarize
from alertnet.errors import InvalidInput, NotFound
from alertnet.models import Alert, AlertCategory, Device, Mahalla, Site
from alertnet.programme import history
from alertnet.programme.coverage import Targets, coverage
from alertnet.programme.exemplary import Thresholds, exemplary

EXEMPLARY_PERIOD: Final = timedelta(days=90)
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def month_bounds(month: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """``YYYY-MM`` → its first instant and the next month's, in ``zone``."""
    match = _MONTH.match(month)
    if match is None:
        raise InvalidInput(f"month {month!r} is not YYYY-MM")
    year, number = int(match.group(1)), int(match.group(2))
    if year < 2000:
        raise InvalidInput(f"month {month!r} is before alertnet's time")
    start = datetime(year, number, 1, tzinfo=zone)
    following = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
    return start, following


async def response_times(
    session: AsyncSession, mahalla_id: int, *, since: datetime, until: datetime
) -> dict[str, Any]:
    """Press → accepted and press → on scene (``dispatch.stats.summarize``) of the real alerts
    of one mahalla opened in ``[since, until)``."""
    rows = await session.execute(
        select(Alert.opened_at, Alert.accepted_at, Alert.on_scene_at).where(
            Alert.mahalla_id == mahalla_id,
            Alert.opened_at >= since,
            Alert.opened_at < until,
            Alert.drill.is_(False),
            Alert.category != AlertCategory.TROUBLE.value,
        )
    )
    to_accept: list[float] = []
    to_on_scene: list[float] = []
    alerts = 0
    for opened_at, accepted_at, on_scene_at in rows:
        alerts += 1
        if accepted_at is not None:
            to_accept.append(max(0.0, (accepted_at - opened_at).total_seconds()))
        if on_scene_at is not None:
            to_on_scene.append(max(0.0, (on_scene_at - opened_at).total_seconds()))
    return {
        "alerts": alerts,
        "to_accept_s": summarize(to_accept),
        "to_on_scene_s": summarize(to_on_scene),
    }


async def offline_by_street(
    session: AsyncSession, scope: Scope, mahalla_id: int
) -> list[dict[str, Any]]:
    """Offline household and business alarms counted per street (``GET
    /devices/offline-by-street``'s figures for one mahalla)."""
    rows = await session.execute(
        select(Device.street, func.count(Device.id))
        .where(scope.devices(), scope.counts_offline_by_street(), Device.mahalla_id == mahalla_id)
        .group_by(Device.street)
        .order_by(Device.street)
    )
    return [{"street": street, "offline": count} for street, count in rows]


async def month_report(
    session: AsyncSession,
    scope: Scope,
    *,
    mahalla_id: int,
    month: str,
    settings: Settings,
    now: datetime,
) -> dict[str, Any]:
    """Everything the printable monthly report of one mahalla shows (see the module doc)."""
    scope.ensure_reads_statistics()
    scope.ensure_sees_mahalla(mahalla_id)
    mahalla = await session.get(Mahalla, mahalla_id)
    if mahalla is None:
        raise NotFound(f"no mahalla {mahalla_id}")
    start, following = month_bounds(month, ZoneInfo(settings.timezone))
    if start > now:
        raise InvalidInput(f"month {month} has not begun")
    until = min(following, now)
    (coverage_row,) = await coverage(
        session, scope, level="mahalla", targets=Targets.of(settings), now=now,
        mahalla_id=mahalla_id,
    )  # fmt: skip
    counts = await alert_counts(session, scope, since=start, until=until, mahalla_id=mahalla_id)
    confirmed = await history.confirmed_incidents(session, [mahalla_id], since=start, until=until)
    offline_public = [
        device
        for device in await device_health(session, scope, status="offline", mahalla_id=mahalla_id)
        if device["site"] == Site.PUBLIC.value
    ]
    return {
        "mahalla": {
            "id": mahalla.id,
            "name": mahalla.name,
            "district": mahalla.district,
            "region": mahalla.region,
            "risk": mahalla.risk,
        },
        "month": month,
        "since": start.isoformat(),
        "until": until.isoformat(),
        "generated_at": now.isoformat(),
        "coverage": coverage_row,
        "incidents": counts,
        "confirmed_incidents": sum(confirmed.values()),
        "response": await response_times(session, mahalla_id, since=start, until=until),
        "offline_public": offline_public,
        "offline_by_street": await offline_by_street(session, scope, mahalla_id),
        "exemplary": await exemplary(
            session,
            scope,
            since=until - EXEMPLARY_PERIOD,
            until=until,
            now=now,
            thresholds=Thresholds.of(settings),
            mahalla_id=mahalla_id,
        ),
    }

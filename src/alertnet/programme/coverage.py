"""Coverage (DESIGN §12): how many of a mahalla's households and businesses its alarms protect,
against the programme's targets, per mahalla, district or region.

A protected household (business) is a distinct site — its premises ``ref``, else the device
alone — with at least one active intrusion or fire alarm of site type ``household``
(``business``) heard within twice its supervision interval. ``pct`` is
``round(100 * protected / count, 1)``, or None when the count is 0; ``met`` is every non-None
pct at or above its target. District and region rows sum the counts of their mahallas before
dividing. Rows come red mahallas (districts, regions holding one) first, then by name.

Coverage is a figure of now: alertnet keeps no history of it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.auth.scope import Scope
from alertnet.config import Settings
from alertnet.devices.service import MAX_SUPERVISION_S
from alertnet.models import Device, DeviceKind, DeviceStatus, Mahalla, Site

Level = Literal["mahalla", "district", "region"]
LEVELS: tuple[Level, ...] = ("mahalla", "district", "region")
PROTECTING_KINDS = frozenset({DeviceKind.INTRUSION_ALARM.value, DeviceKind.FIRE_ALARM.value})
PROGRAMME_SITES = (Site.HOUSEHOLD.value, Site.BUSINESS.value)
RISK_ORDER = {"red": 0, "yellow": 1, "green": 2}

# ("ref", premises ref) or ("device", device id): devices sharing a ref are one site.
SiteKey = tuple[str, str]


def site_key(device_id: int, premises_ref: str | None) -> SiteKey:
    return ("ref", premises_ref) if premises_ref else ("device", str(device_id))


def heard_within(last_seen_at: datetime | None, interval_s: int, now: datetime) -> bool:
    """Heard no longer ago than twice ``interval_s`` (never heard: False)."""
    if last_seen_at is None:
        return False
    return now - last_seen_at <= timedelta(seconds=2 * interval_s)


def protects(
    *,
    status: str,
    kind: str,
    site: str,
    last_seen_at: datetime | None,
    supervision_interval_s: int,
    now: datetime,
) -> bool:
    """Whether one device makes its site protected now (see the module docstring)."""
    return (
        status == DeviceStatus.ACTIVE.value
        and kind in PROTECTING_KINDS
        and site in PROGRAMME_SITES
        and heard_within(last_seen_at, supervision_interval_s, now)
    )


def percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


@dataclass(frozen=True, slots=True)
class Targets:
    household_pct: float
    business_pct: float

    @classmethod
    def of(cls, settings: Settings) -> Targets:
        return cls(settings.target_household_pct, settings.target_business_pct)


@dataclass(frozen=True, slots=True)
class Tally:
    """Counts of one row: what a mahalla declares and what its alarms protect."""

    households: int = 0
    businesses: int = 0
    protected_households: int = 0
    protected_businesses: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.households + other.households,
            self.businesses + other.businesses,
            self.protected_households + other.protected_households,
            self.protected_businesses + other.protected_businesses,
        )


def coverage_row(name: str, risk: str, tally: Tally, targets: Targets) -> dict[str, Any]:
    """One row of ``GET /stats/coverage`` (DESIGN §12's fields)."""
    household_pct = percent(tally.protected_households, tally.households)
    business_pct = percent(tally.protected_businesses, tally.businesses)
    checks = ((household_pct, targets.household_pct), (business_pct, targets.business_pct))
    return {
        "name": name,
        "risk": risk,
        "households": tally.households,
        "businesses": tally.businesses,
        "protected_households": tally.protected_households,
        "protected_businesses": tally.protected_businesses,
        "household_pct": household_pct,
        "business_pct": business_pct,
        "household_target_pct": targets.household_pct,
        "business_target_pct": targets.business_pct,
        "met": all(pct >= target for pct, target in checks if pct is not None),
    }


async def protected_sites(
    session: AsyncSession, *, now: datetime, mahalla_ids: Iterable[int] | None = None
) -> dict[tuple[int, str], set[SiteKey]]:
    """``{(mahalla_id, site type): {site key}}`` of the sites protected now."""
    query = select(
        Device.id,
        Device.mahalla_id,
        Device.site,
        Device.kind,
        Device.status,
        Device.premises_ref,
        Device.last_seen_at,
        Device.supervision_interval_s,
    ).where(
        Device.status == DeviceStatus.ACTIVE.value,
        Device.kind.in_(PROTECTING_KINDS),
        Device.site.in_(PROGRAMME_SITES),
        Device.mahalla_id.is_not(None),
        # Narrows the rows read; protects() decides per device.
        Device.last_seen_at >= now - timedelta(seconds=2 * MAX_SUPERVISION_S),
    )
    if mahalla_ids is not None:
        query = query.where(Device.mahalla_id.in_(list(mahalla_ids)))
    found: dict[tuple[int, str], set[SiteKey]] = defaultdict(set)
    for row in await session.execute(query):
        if protects(
            status=row.status,
            kind=row.kind,
            site=row.site,
            last_seen_at=row.last_seen_at,
            supervision_interval_s=row.supervision_interval_s,
            now=now,
        ):
            found[(row.mahalla_id, row.site)].add(site_key(row.id, row.premises_ref))
    return found


def _highest_risk(risks: Iterable[str]) -> str:
    return min(risks, key=lambda risk: RISK_ORDER.get(risk, len(RISK_ORDER)))


async def coverage(
    session: AsyncSession,
    scope: Scope,
    *,
    level: Level,
    targets: Targets,
    now: datetime,
    mahalla_id: int | None = None,
) -> list[dict[str, Any]]:
    """The coverage rows ``scope`` may read at ``level`` (the caller checks the level itself:
    ``Scope.ensure_reads_statistics(per=level)``).

    Mahalla rows add ``id``, ``district`` and ``region``; district rows ``region`` and
    ``mahallas`` (how many were summed); region rows ``mahallas``. A district or region row's
    risk is the highest of its mahallas'.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    query = select(Mahalla).where(scope.mahallas())
    if mahalla_id is not None:
        query = query.where(Mahalla.id == mahalla_id)
    mahallas = list(await session.scalars(query))
    protected = await protected_sites(
        session, now=now, mahalla_ids=[mahalla.id for mahalla in mahallas]
    )
    tallies = {
        mahalla.id: Tally(
            mahalla.households,
            mahalla.businesses,
            len(protected.get((mahalla.id, Site.HOUSEHOLD.value), ())),
            len(protected.get((mahalla.id, Site.BUSINESS.value), ())),
        )
        for mahalla in mahallas
    }
    rows: list[dict[str, Any]] = []
    if level == "mahalla":
        for mahalla in mahallas:
            row = coverage_row(mahalla.name, mahalla.risk, tallies[mahalla.id], targets)
            row.update(id=mahalla.id, district=mahalla.district, region=mahalla.region)
            rows.append(row)
    else:
        groups: dict[tuple[str, ...], list[Mahalla]] = defaultdict(list)
        for mahalla in mahallas:
            group: tuple[str, ...] = (mahalla.region,)
            if level == "district":
                group = (mahalla.region, mahalla.district)
            groups[group].append(mahalla)
        for key, members in groups.items():
            tally = sum((tallies[member.id] for member in members), Tally())
            risk = _highest_risk(member.risk for member in members)
            row = coverage_row(key[-1], risk, tally, targets)
            if level == "district":
                row["region"] = key[0]
            row["mahallas"] = len(members)
            rows.append(row)
    rows.sort(key=lambda row: (RISK_ORDER.get(row["risk"], len(RISK_ORDER)), row["name"]))
    return rows

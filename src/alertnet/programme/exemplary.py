"""Exemplary safe streets, houses and mahallas (DESIGN §12): each criterion with its figure and
verdict over a period, so a page can list the candidates and say why the others miss.

* **Street** (the devices of a mahalla naming that street): coverage — protected ÷ registered
  premises (household and business sites) of the street — at least the household target; no
  confirmed incident; its devices online (the share of the period without an ``offline``
  trouble) at least ``online_pct``.
* **House** (a household's or a business's site: its premises ref, else the device): protected
  now (``programme.coverage``), online at least ``online_pct``, no confirmed incident, a test in
  every calendar month of the period (``programme.history.required_months``).
* **Mahalla**: response p80 from the press to on scene at most ``on_scene_p80_s``; a mahalla
  no post reached in the period has no figure and does not meet it.

Online shares count each device from its registration (or the period's start) to the period's
end; disabled devices are not expected online and are left out. What an observer reads is the
scope's decision (DESIGN §10): streets in full, houses only as counts per street
(``Scope.reads_private_sites``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.auth.scope import Scope
from alertnet.config import Settings
from alertnet.dispatch.stats import percentile
from alertnet.models import Device, DeviceStatus, Mahalla
from alertnet.programme import history
from alertnet.programme.coverage import PROGRAMME_SITES, percent, protects, site_key

CRITERIA_STREET = ("coverage", "no_confirmed_incident", "online")
CRITERIA_SITE = ("protected", "online", "no_confirmed_incident", "monthly_tests")
CRITERIA_MAHALLA = ("response_p80_on_scene",)


@dataclass(frozen=True, slots=True)
class Thresholds:
    street_coverage_pct: float
    online_pct: float
    on_scene_p80_s: float

    @classmethod
    def of(cls, settings: Settings) -> Thresholds:
        return cls(
            street_coverage_pct=settings.target_household_pct,
            online_pct=settings.exemplary_online_pct,
            on_scene_p80_s=settings.exemplary_on_scene_p80_s,
        )

    def as_dict(self) -> dict[str, float]:
        return {
            "street_coverage_pct": self.street_coverage_pct,
            "online_pct": self.online_pct,
            "on_scene_p80_s": self.on_scene_p80_s,
        }


@dataclass(slots=True)
class Facts:
    """One device and what the period says about it."""

    device: Device
    protecting: bool
    window_s: float = 0.0
    offline_s: float = 0.0
    incidents: int = 0
    months: set[str] = field(default_factory=set)

    @property
    def counted_online(self) -> bool:
        return self.device.status != DeviceStatus.DISABLED.value and self.window_s > 0


def online_pct(facts: Iterable[Facts]) -> float | None:
    """The share (%) of the devices' time in the period without an offline trouble."""
    counted = [fact for fact in facts if fact.counted_online]
    total = sum(fact.window_s for fact in counted)
    if total <= 0:
        return None
    return 100 * (total - sum(min(fact.offline_s, fact.window_s) for fact in counted)) / total


def criterion(met: bool, value: Any, **more: Any) -> dict[str, Any]:
    return {"met": met, "value": value, **more}


def _online_criterion(facts: Sequence[Facts], thresholds: Thresholds) -> dict[str, Any]:
    share = online_pct(facts)
    shown = None if share is None else round(share, 2)
    return criterion(share is not None and share >= thresholds.online_pct, shown)


def _verdict(row: dict[str, Any]) -> dict[str, Any]:
    row["exemplary"] = all(item["met"] for item in row["criteria"].values())
    return row


async def _facts(
    session: AsyncSession,
    mahalla_ids: Sequence[int],
    *,
    since: datetime,
    until: datetime,
    now: datetime,
) -> list[Facts]:
    devices = await session.scalars(
        select(Device).where(Device.mahalla_id.in_(mahalla_ids)).order_by(Device.id)
    )
    offline = await history.offline_periods(session, mahalla_ids, since=since, until=until)
    incidents = await history.confirmed_incidents(session, mahalla_ids, since=since, until=until)
    months = await history.tested_months(session, mahalla_ids, since=since, until=until)
    found = []
    for device in devices:
        start = max(since, device.created_at)
        fact = Facts(
            device,
            protecting=protects(
                status=device.status,
                kind=device.kind,
                site=device.site,
                last_seen_at=device.last_seen_at,
                supervision_interval_s=device.supervision_interval_s,
                now=now,
            ),
            window_s=max(0.0, (until - start).total_seconds()),
            offline_s=history.merged_length_s(offline.get(device.id, []), start, until),
            incidents=incidents.get(device.id, 0),
            months=months.get(device.id, set()),
        )
        found.append(fact)
    return found


def _street_row(
    mahalla: Mahalla, street: str, facts: Sequence[Facts], thresholds: Thresholds
) -> dict[str, Any]:
    sites: dict[tuple[str, str, str], bool] = {}
    for fact in facts:
        device = fact.device
        if device.site in PROGRAMME_SITES:
            key = (device.site, *site_key(device.id, device.premises_ref))
            sites[key] = sites.get(key, False) or fact.protecting
    protected = sum(sites.values())
    coverage = percent(protected, len(sites))
    incidents = sum(fact.incidents for fact in facts)
    return _verdict(
        {
            "mahalla_id": mahalla.id,
            "mahalla": mahalla.name,
            "street": street,
            "premises": len(sites),
            "protected": protected,
            "devices": len(facts),
            "criteria": {
                "coverage": criterion(
                    coverage is not None and coverage >= thresholds.street_coverage_pct,
                    coverage,
                ),
                "no_confirmed_incident": criterion(incidents == 0, incidents),
                "online": _online_criterion(facts, thresholds),
            },
        }
    )


def _site_row(
    mahalla: Mahalla,
    facts: Sequence[Facts],
    thresholds: Thresholds,
    *,
    since: datetime,
    until: datetime,
    now: datetime,
) -> dict[str, Any]:
    first = facts[0].device
    registered = min(fact.device.created_at for fact in facts)
    required = history.required_months(max(since, registered), until, now)
    tested = set().union(*(fact.months for fact in facts))
    missing = [month for month in required if month not in tested]
    incidents = sum(fact.incidents for fact in facts)
    protected = any(fact.protecting for fact in facts)
    return _verdict(
        {
            "mahalla_id": mahalla.id,
            "mahalla": mahalla.name,
            "street": next((f.device.street for f in facts if f.device.street), ""),
            "site": first.site,
            "ref": first.premises_ref,
            "name": first.name,
            "address": first.address,
            "lat": first.lat,
            "lon": first.lon,
            "devices": [fact.device.eui for fact in facts],
            "criteria": {
                "protected": criterion(protected, protected),
                "online": _online_criterion(facts, thresholds),
                "no_confirmed_incident": criterion(incidents == 0, incidents),
                "monthly_tests": criterion(
                    not missing,
                    len(required) - len(missing),
                    required=len(required),
                    missing=missing,
                ),
            },
        }
    )


def _sites_by_street(sites: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Houses as counts per (mahalla, street): how many, how many exemplary, how many miss
    each criterion — all an observer may know of them (DESIGN §10)."""
    groups: dict[tuple[int, str], dict[str, Any]] = {}
    for house in sites:
        key = (house["mahalla_id"], house["street"])
        group = groups.setdefault(
            key,
            {
                "mahalla_id": house["mahalla_id"],
                "mahalla": house["mahalla"],
                "street": house["street"],
                "sites": 0,
                "exemplary": 0,
                "missing": dict.fromkeys(CRITERIA_SITE, 0),
            },
        )
        group["sites"] += 1
        group["exemplary"] += int(house["exemplary"])
        for name, item in house["criteria"].items():
            group["missing"][name] += int(not item["met"])
    return [groups[key] for key in sorted(groups, key=lambda k: (groups[k]["mahalla"], k[1]))]


def _mahalla_row(
    mahalla: Mahalla, times: Sequence[float], thresholds: Thresholds
) -> dict[str, Any]:
    p80 = percentile(sorted(times), 80)
    shown = None if p80 is None else round(p80, 1)
    return _verdict(
        {
            "id": mahalla.id,
            "name": mahalla.name,
            "risk": mahalla.risk,
            "criteria": {
                "response_p80_on_scene": criterion(
                    p80 is not None and p80 <= thresholds.on_scene_p80_s,
                    shown,
                    arrivals=len(times),
                )
            },
        }
    )


async def exemplary(
    session: AsyncSession,
    scope: Scope,
    *,
    since: datetime,
    until: datetime,
    now: datetime,
    thresholds: Thresholds,
    mahalla_id: int | None = None,
) -> dict[str, Any]:
    """The exemplary figures of the mahallas ``scope`` sees (one, with ``mahalla_id``).

    ``{"since", "until", "thresholds", "mahallas", "streets", "sites", "sites_by_street"}``:
    ``sites`` (houses) is None for a scope that reads households and businesses only as counts per
    street. Rows are ordered by mahalla, then street (sites: street, then ref).
    """
    query = select(Mahalla).where(scope.mahallas()).order_by(Mahalla.name)
    if mahalla_id is not None:
        query = query.where(Mahalla.id == mahalla_id)
    mahallas = {mahalla.id: mahalla for mahalla in await session.scalars(query)}
    ids = list(mahallas)
    facts = await _facts(session, ids, since=since, until=until, now=now) if ids else []
    on_scene = await history.times_to_on_scene(session, ids, since=since, until=until)

    by_street: dict[tuple[int, str], list[Facts]] = defaultdict(list)
    by_site: dict[tuple[int, str, str, str], list[Facts]] = defaultdict(list)
    for fact in facts:
        device = fact.device
        mahalla_of = device.mahalla_id
        if mahalla_of is None:
            continue
        if device.street:
            by_street[mahalla_of, device.street].append(fact)
        if device.site in PROGRAMME_SITES:
            by_site[(mahalla_of, device.site, *site_key(device.id, device.premises_ref))].append(
                fact
            )
    streets = [
        _street_row(mahallas[key[0]], key[1], members, thresholds)
        for key, members in by_street.items()
    ]
    streets.sort(key=lambda row: (row["mahalla"], row["street"]))
    sites = [
        _site_row(mahallas[key[0]], members, thresholds, since=since, until=until, now=now)
        for key, members in by_site.items()
    ]
    sites.sort(key=lambda row: (row["mahalla"], row["street"], row["ref"] or "", row["devices"]))
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "thresholds": thresholds.as_dict(),
        "mahallas": [
            _mahalla_row(mahalla, on_scene.get(mahalla.id, []), thresholds)
            for mahalla in mahallas.values()
        ],
        "streets": streets,
        "sites": sites if scope.reads_private_sites() else None,
        "sites_by_street": _sites_by_street(sites),
    }

"""Exemplary streets, houses and mahallas (DESIGN §12) on crafted histories, on SQLite and
PostgreSQL: each criterion's figure and verdict — street coverage, confirmed incidents (drills,
other outcomes and older ones left out), the online share from offline troubles (closed, open,
merged into another trouble), a test in every calendar month, and the mahalla's response p80
to on scene — and what an observer reads of houses (counts per street)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.auth.scope import Scope
from alertnet.db import unit_of_work
from alertnet.models import AlertAudit, Device, DeviceTestMonth, Mahalla
from alertnet.programme.exemplary import Thresholds, exemplary
from alertnet.programme.history import required_months
from tests.support.factories import create_alert, create_device, create_mahalla

SessionFactory = async_sessionmaker[AsyncSession]
NOW: Final = datetime(2026, 5, 15, 12, 0, tzinfo=UTC)
SINCE: Final = NOW - timedelta(days=90)  # 2026-02-14 12:00
LONG_AGO: Final = NOW - timedelta(days=400)
ALL_MONTHS: Final = ("2026-02", "2026-03", "2026-04")
THRESHOLDS: Final = Thresholds(street_coverage_pct=30.0, online_pct=99.0, on_scene_p80_s=600.0)
CONSOLE: Final = Scope(role="dispatcher", user_id=1, username="dispatch")
DAY: Final = timedelta(days=1)


async def home(
    session: AsyncSession,
    mahalla: Mahalla,
    street: str,
    ref: str | None,
    *,
    months: tuple[str, ...] = ALL_MONTHS,
    heard: bool = True,
    site: str = "household",
    kind: str = "intrusion_alarm",
    created_at: datetime = LONG_AGO,
) -> Device:
    """A household's alarm registered long ago, heard now, tested in ``months``."""
    device = await create_device(
        session,
        kind=kind,
        site=site,
        mahalla_id=mahalla.id,
        premises_ref=ref,
        street=street,
        name=f"home {ref}",
        supervision_interval_s=3600,
        last_seen_at=NOW - timedelta(minutes=5) if heard else None,
        created_at=created_at,
    )
    for month in months:
        session.add(DeviceTestMonth(device_id=device.id, month=month, first_at=NOW))
    await session.flush()
    return device


async def offline_trouble(
    session: AsyncSession,
    device: Device,
    opened_at: datetime,
    closed_at: datetime | None,
    *,
    opened_for: str = "offline",
    cleared: str = "offline",
) -> None:
    """A trouble alert of ``device`` with the audit trail alertnet writes for it."""
    alert = await create_alert(
        session,
        device,
        category="trouble",
        state="new" if closed_at is None else "closed",
        opened_at=opened_at,
        closed_at=closed_at,
        trouble=opened_for if closed_at is None else "",
        outcome=None if closed_at is None else "resolved",
    )
    session.add(
        AlertAudit(
            alert_id=alert.id, at=opened_at, actor="supervision", to_state="new",
            reason=f"trouble: {opened_for}",
        )
    )  # fmt: skip
    if closed_at is not None:
        session.add(
            AlertAudit(
                alert_id=alert.id, at=closed_at, actor=device.eui, from_state="new",
                to_state="closed", reason=f"{cleared} cleared",
            )
        )  # fmt: skip
    await session.flush()


async def incident(
    session: AsyncSession,
    device: Device,
    outcome: str,
    *,
    opened_at: datetime = NOW - 10 * DAY,
    drill: bool = False,
    on_scene_s: float | None = None,
    category: str = "intrusion",
) -> None:
    await create_alert(
        session,
        device,
        category=category,
        state="closed",
        outcome=outcome,
        drill=drill,
        opened_at=opened_at,
        on_scene_at=None if on_scene_s is None else opened_at + timedelta(seconds=on_scene_s),
        closed_at=opened_at + timedelta(hours=1),
    )


async def figures(session_factory: SessionFactory, scope: Scope = CONSOLE) -> dict[str, Any]:
    async with session_factory() as session:
        return await exemplary(
            session, scope, since=SINCE, until=NOW, now=NOW, thresholds=THRESHOLDS
        )


def verdicts(row: dict[str, Any]) -> dict[str, tuple[bool, Any]]:
    return {name: (item["met"], item["value"]) for name, item in row["criteria"].items()}


async def test_houses_each_criterion_with_its_figure(session_factory: SessionFactory) -> None:
    async with unit_of_work(session_factory) as session:
        chorsu = await create_mahalla(session, "Chorsu")
        model = await home(session, chorsu, "Navoiy", "A")
        await home(session, chorsu, "Navoiy", "A", kind="fire_alarm", months=())
        untested = await home(session, chorsu, "Navoiy", "B", months=("2026-02", "2026-04"))
        flaky = await home(session, chorsu, "Navoiy", "C")
        # Two days offline within the period: 88 of 90 days online.
        await offline_trouble(session, flaky, NOW - 30 * DAY, NOW - 28 * DAY)
        robbed = await home(session, chorsu, "Bobur", "D")
        await incident(session, robbed, "confirmed")
        await incident(session, model, "false_alarm")
        await incident(session, model, "confirmed", drill=True)
        await incident(session, model, "handed_over", opened_at=SINCE - DAY)
        silent = await home(session, chorsu, "Bobur", None, heard=False)
        # A new house, registered in late April: no month is both over and half its own yet.
        await home(session, chorsu, "Bobur", "NEW", created_at=NOW - 20 * DAY, months=())
    found = await figures(session_factory)
    sites = {row["ref"] or row["devices"][0]: row for row in found["sites"]}
    assert verdicts(sites["A"]) == {
        "protected": (True, True),
        "online": (True, 100.0),
        "no_confirmed_incident": (True, 0),
        "monthly_tests": (True, 3),
    }
    assert sites["A"]["exemplary"] is True and len(sites["A"]["devices"]) == 2
    assert sites["A"]["name"] == "home A" and sites["A"]["street"] == "Navoiy"
    tests = sites["B"]["criteria"]["monthly_tests"]
    assert (tests["met"], tests["value"], tests["required"], tests["missing"]) == (
        False, 2, 3, ["2026-03"],
    )  # fmt: skip
    assert sites["B"]["exemplary"] is False
    assert verdicts(sites["C"])["online"] == (False, round(100 * 88 / 90, 2))
    assert verdicts(sites["D"])["no_confirmed_incident"] == (False, 1)
    assert verdicts(sites[silent.eui])["protected"] == (False, False)
    assert verdicts(sites["NEW"])["monthly_tests"] == (True, 0)
    assert sites["NEW"]["exemplary"] is True
    assert untested.eui in sites["B"]["devices"]


async def test_streets_coverage_incidents_and_online_share(session_factory: SessionFactory) -> None:
    async with unit_of_work(session_factory) as session:
        chorsu = await create_mahalla(session, "Chorsu")
        await home(session, chorsu, "Navoiy", "A")
        await home(session, chorsu, "Navoiy", "B")
        flaky = await home(session, chorsu, "Navoiy", "C")
        await offline_trouble(session, flaky, NOW - 30 * DAY, NOW - 28 * DAY)
        robbed = await home(session, chorsu, "Bobur", "D")
        await incident(session, robbed, "handed_over")
        await home(session, chorsu, "Bobur", "E", heard=False)
        # Chilonzor: 1 of 4 premises protected (25 % < 30 %); a public button on it counts for
        # the online share, not for the premises.
        await home(session, chorsu, "Chilonzor", "F")
        for ref in ("G", "H", "I"):
            await home(session, chorsu, "Chilonzor", ref, heard=False)
        button = await create_device(
            session, mahalla_id=chorsu.id, street="Chilonzor", created_at=LONG_AGO,
            last_seen_at=NOW,
        )  # fmt: skip
        await offline_trouble(session, button, NOW - 45 * DAY, None)  # still offline
    streets = {row["street"]: row for row in (await figures(session_factory))["streets"]}
    navoiy = streets["Navoiy"]
    assert (navoiy["premises"], navoiy["protected"], navoiy["devices"]) == (3, 3, 3)
    assert verdicts(navoiy) == {
        "coverage": (True, 100.0),
        "no_confirmed_incident": (True, 0),
        "online": (True, round(100 * (270 - 2) / 270, 2)),
    }
    assert navoiy["exemplary"] is True
    bobur = streets["Bobur"]
    assert verdicts(bobur)["coverage"] == (True, 50.0)
    assert verdicts(bobur)["no_confirmed_incident"] == (False, 1)
    assert bobur["exemplary"] is False
    chilonzor = streets["Chilonzor"]
    assert (chilonzor["premises"], chilonzor["protected"], chilonzor["devices"]) == (4, 1, 5)
    assert verdicts(chilonzor)["coverage"] == (False, 25.0)
    # Five devices of 90 days, one offline for the last 45: 405 of 450 device-days online.
    assert verdicts(chilonzor)["online"] == (False, 90.0)


async def test_offline_periods_come_from_offline_troubles_only(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        mahalla = await create_mahalla(session, "Mirobod")
        battery = await home(session, mahalla, "Navoiy", "A")
        # A low battery is no offline period.
        await offline_trouble(
            session, battery, NOW - 40 * DAY, NOW - 20 * DAY,
            opened_for="low_battery", cleared="low_battery",
        )  # fmt: skip
        merged = await home(session, mahalla, "Navoiy", "B")
        # Offline joined a low-battery trouble and was the last to clear: counted from the
        # trouble's opening (the figure errs towards "not online").
        await offline_trouble(
            session, merged, NOW - 9 * DAY, NOW - 0.9 * DAY,
            opened_for="low_battery", cleared="offline",
        )  # fmt: skip
        older = await home(session, mahalla, "Navoiy", "C")
        # Began before the period: only the part inside counts (0.9 days).
        await offline_trouble(session, older, SINCE - 5 * DAY, SINCE + 0.9 * DAY)
    sites = {row["ref"]: row for row in (await figures(session_factory))["sites"]}
    assert verdicts(sites["A"])["online"] == (True, 100.0)
    assert verdicts(sites["B"])["online"] == (False, round(100 * (90 - 8.1) / 90, 2))
    assert verdicts(sites["C"])["online"] == (True, 99.0)


async def test_the_mahalla_response_p80_to_on_scene(session_factory: SessionFactory) -> None:
    async with unit_of_work(session_factory) as session:
        quick = await create_mahalla(session, "Quick")
        slow = await create_mahalla(session, "Slow")
        await create_mahalla(session, "Quiet")
        quick_button = await create_device(session, mahalla_id=quick.id)
        slow_button = await create_device(session, mahalla_id=slow.id)
        for seconds in (300, 400, 500, 550, 900):
            await incident(session, quick_button, "false_alarm", on_scene_s=seconds)
        # Left out: a drill, a trouble, and an alert opened before the period.
        await incident(session, quick_button, "other", on_scene_s=5000, drill=True)
        await incident(session, quick_button, "resolved", on_scene_s=5000, category="trouble")
        await incident(session, quick_button, "other", on_scene_s=5000, opened_at=SINCE - DAY)
        for seconds in (300, 700, 800):
            await incident(session, slow_button, "no_one_found", on_scene_s=seconds)
    rows = {row["name"]: row for row in (await figures(session_factory))["mahallas"]}
    response = rows["Quick"]["criteria"]["response_p80_on_scene"]
    assert (response["met"], response["value"], response["arrivals"]) == (True, 550.0, 5)
    assert rows["Quick"]["exemplary"] is True
    assert verdicts(rows["Slow"]) == {"response_p80_on_scene": (False, 800.0)}
    assert verdicts(rows["Quiet"]) == {"response_p80_on_scene": (False, None)}


async def test_an_observer_reads_its_mahalla_and_houses_only_as_counts_per_street(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        own = await create_mahalla(session, "Own")
        other = await create_mahalla(session, "Other")
        await home(session, own, "Navoiy", "A")
        await home(session, own, "Navoiy", "B", months=())
        await home(session, own, "Navoiy", "C", heard=False)
        await home(session, other, "Secret street", "Z")
    observer = Scope(role="observer", user_id=2, username="team", mahalla_id=own.id)
    found = await figures(session_factory, observer)
    assert found["sites"] is None
    assert [row["name"] for row in found["mahallas"]] == ["Own"]
    assert [row["street"] for row in found["streets"]] == ["Navoiy"]
    assert found["sites_by_street"] == [
        {
            "mahalla_id": own.id,
            "mahalla": "Own",
            "street": "Navoiy",
            "sites": 3,
            "exemplary": 1,
            "missing": {
                "protected": 1,
                "online": 0,
                "no_confirmed_incident": 0,
                "monthly_tests": 1,
            },
        }
    ]
    assert "home A" not in repr(found) and "Secret" not in repr(found)


@pytest.mark.parametrize(
    ("start", "until", "now", "months"),
    [
        # 90 days to mid-May: February (14.5 of 28 days), March and April; May still runs.
        (SINCE, NOW, NOW, ["2026-02", "2026-03", "2026-04"]),
        # Starting on 20 February: February is mostly outside the period.
        (datetime(2026, 2, 20, tzinfo=UTC), NOW, NOW, ["2026-03", "2026-04"]),
        # A Tashkent month (UTC+5) read later: April, not the five hours of March.
        (
            datetime(2026, 3, 31, 19, tzinfo=UTC),
            datetime(2026, 4, 30, 19, tzinfo=UTC),
            NOW,
            ["2026-04"],
        ),
        # The same month read on its last day: not over yet, nothing required.
        (
            datetime(2026, 3, 31, 19, tzinfo=UTC),
            datetime(2026, 4, 30, 12, tzinfo=UTC),
            datetime(2026, 4, 30, 12, tzinfo=UTC),
            [],
        ),
        # Across a new year.
        (
            datetime(2025, 11, 1, tzinfo=UTC),
            datetime(2026, 1, 20, tzinfo=UTC),
            datetime(2026, 2, 1, tzinfo=UTC),
            ["2025-11", "2025-12", "2026-01"],
        ),
    ],
)
def test_the_months_a_test_is_required_in(
    start: datetime, until: datetime, now: datetime, months: list[str]
) -> None:
    assert required_months(start, until, now) == months

"""Coverage (DESIGN §12) on crafted registries, on SQLite and PostgreSQL: which devices make a
site protected (kind, site type, status, heard within twice the supervision interval), sites
shared through a premises ref, rounding, null for zero counts, ``met``, and district and
region rows summing counts before dividing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.auth.scope import Scope
from alertnet.db import unit_of_work
from alertnet.models import Mahalla
from alertnet.programme.coverage import Tally, Targets, coverage, coverage_row, percent
from tests.support.factories import create_device, create_mahalla

SessionFactory = async_sessionmaker[AsyncSession]
NOW: Final = datetime(2026, 5, 15, 9, 0, tzinfo=UTC)
TARGETS: Final = Targets(household_pct=30.0, business_pct=60.0)
CONSOLE: Final = Scope(role="dispatcher", user_id=1, username="dispatch")
HOUR: Final = 3600


async def alarm(
    session: AsyncSession,
    mahalla: Mahalla,
    *,
    site: str = "household",
    kind: str = "intrusion_alarm",
    ref: str | None = None,
    heard_ago_s: float | None = 60,
    interval_s: int = HOUR,
    status: str = "active",
) -> None:
    """A device of ``mahalla`` last heard ``heard_ago_s`` before NOW (None: never)."""
    await create_device(
        session,
        kind=kind,
        site=site,
        mahalla_id=mahalla.id,
        premises_ref=ref,
        supervision_interval_s=interval_s,
        status=status,
        last_seen_at=None if heard_ago_s is None else NOW - timedelta(seconds=heard_ago_s),
    )


async def rows(session_factory: SessionFactory, level: str = "mahalla") -> dict[str, Any]:
    async with session_factory() as session:
        found = await coverage(session, CONSOLE, level=level, targets=TARGETS, now=NOW)  # type: ignore[arg-type]
    return {row["name"]: row for row in found}


async def test_protected_sites_count_each_site_once_and_only_what_protects_it(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        mahalla = await create_mahalla(session, "Chorsu", households=10, businesses=4)
        # Protected households: the site H1 (two alarms, one site), a device without a ref,
        # and one heard exactly twice its interval ago.
        await alarm(session, mahalla, ref="H1")
        await alarm(session, mahalla, ref="H1", kind="fire_alarm")
        await alarm(session, mahalla)
        await alarm(session, mahalla, heard_ago_s=2 * HOUR)
        # Not protecting: disabled, never heard, offline, heard too long ago, a panic or medical
        # button of a household, an intrusion alarm of a public site.
        await alarm(session, mahalla, ref="H2", status="disabled")
        await alarm(session, mahalla, ref="H3", heard_ago_s=None)
        await alarm(session, mahalla, ref="H4", status="offline", heard_ago_s=3 * HOUR)
        await alarm(session, mahalla, ref="H5", heard_ago_s=2 * HOUR + 1)
        await alarm(session, mahalla, ref="H6", kind="panic_button")
        await alarm(session, mahalla, ref="H7", kind="medical_button")
        await alarm(session, mahalla, ref="P1", site="public")
        # A long supervision interval (a DC-09 panel's daily test) keeps its site protected.
        await alarm(session, mahalla, ref="H8", interval_s=90_000, heard_ago_s=40 * HOUR)
        # Businesses: one site B1 with two alarms; a second business never heard.
        await alarm(session, mahalla, site="business", ref="B1")
        await alarm(session, mahalla, site="business", ref="B1", kind="fire_alarm")
        await alarm(session, mahalla, site="business", ref="B2", heard_ago_s=None)
    row = (await rows(session_factory))["Chorsu"]
    assert row == {
        "id": mahalla.id,
        "name": "Chorsu",
        "district": "",
        "region": "",
        "risk": "red",
        "households": 10,
        "businesses": 4,
        "protected_households": 4,
        "protected_businesses": 1,
        "household_pct": 40.0,
        "business_pct": 25.0,
        "household_target_pct": 30.0,
        "business_target_pct": 60.0,
        "met": False,
    }


async def test_a_household_and_a_business_sharing_a_ref_count_once_each(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        mahalla = await create_mahalla(session, "Mirobod", households=3, businesses=5)
        await alarm(session, mahalla, ref="SHOP-HOME", site="household")
        await alarm(session, mahalla, ref="SHOP-HOME", site="business")
        await alarm(session, mahalla, ref="SHOP-HOME", site="business", kind="fire_alarm")
        await alarm(session, mahalla, site="business")
        await alarm(session, mahalla, site="business")
    row = (await rows(session_factory))["Mirobod"]
    assert (row["protected_households"], row["protected_businesses"]) == (1, 3)
    # round(100 * 1 / 3, 1) and 3 / 5: both at or above their targets.
    assert (row["household_pct"], row["business_pct"], row["met"]) == (33.3, 60.0, True)


async def test_zero_counts_give_null_shares_and_met_looks_at_the_others_only(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        empty = await create_mahalla(session, "Empty", risk="green")
        await alarm(session, empty)  # protected, but no households declared
        shops = await create_mahalla(session, "Shops", risk="yellow", businesses=2)
        await alarm(session, shops, site="business")
        await alarm(session, shops, site="business", ref="X")
    found = await rows(session_factory)
    assert found["Empty"]["household_pct"] is None and found["Empty"]["business_pct"] is None
    assert found["Empty"]["protected_households"] == 1 and found["Empty"]["met"] is True
    assert found["Shops"]["household_pct"] is None and found["Shops"]["business_pct"] == 100.0
    assert found["Shops"]["met"] is True


async def test_district_and_region_rows_sum_counts_before_dividing(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        north = await create_mahalla(
            session, "North", risk="green", district="Yunusobod", region="Tashkent",
            households=10, businesses=0,
        )  # fmt: skip
        south = await create_mahalla(
            session, "South", risk="yellow", district="Yunusobod", region="Tashkent",
            households=20, businesses=10,
        )  # fmt: skip
        other = await create_mahalla(
            session, "Other", risk="red", district="Chilonzor", region="Tashkent",
            households=70, businesses=0,
        )  # fmt: skip
        far = await create_mahalla(
            session, "Far", risk="green", district="Markaz", region="Samarqand",
            households=5, businesses=5,
        )  # fmt: skip
        for _ in range(3):
            await alarm(session, north)
        for _ in range(6):
            await alarm(session, south, site="business")
        for _ in range(7):
            await alarm(session, other)
    districts = await rows(session_factory, "district")
    # Yunusobod: 3 of 30 households (not the mean of 30 % and 0 %), 6 of 10 businesses.
    assert districts["Yunusobod"]["mahallas"] == 2
    assert (districts["Yunusobod"]["households"], districts["Yunusobod"]["businesses"]) == (30, 10)
    assert districts["Yunusobod"]["household_pct"] == 10.0
    assert districts["Yunusobod"]["business_pct"] == 60.0
    assert districts["Yunusobod"]["risk"] == "yellow" and districts["Yunusobod"]["met"] is False
    assert districts["Yunusobod"]["region"] == "Tashkent"
    regions = await rows(session_factory, "region")
    assert regions["Tashkent"]["households"] == 100
    assert regions["Tashkent"]["protected_households"] == 10
    assert regions["Tashkent"]["household_pct"] == 10.0 and regions["Tashkent"]["risk"] == "red"
    assert regions["Tashkent"]["mahallas"] == 3
    assert regions["Samarqand"]["household_pct"] == 0.0
    # Red first, then by name.
    async with session_factory() as session:
        ordered = await coverage(session, CONSOLE, level="mahalla", targets=TARGETS, now=NOW)
    assert [row["name"] for row in ordered] == ["Other", "South", "Far", "North"]
    assert {row["id"] for row in ordered} == {north.id, south.id, other.id, far.id}


def test_rounding_and_met_against_the_targets() -> None:
    assert percent(1, 3) == 33.3 and percent(2, 3) == 66.7 and percent(0, 0) is None
    assert percent(1, 8) == 12.5
    just = coverage_row("m", "red", Tally(1000, 100, 300, 60), TARGETS)
    assert (just["household_pct"], just["business_pct"], just["met"]) == (30.0, 60.0, True)
    short = coverage_row("m", "red", Tally(1000, 100, 299, 60), TARGETS)
    assert (short["household_pct"], short["met"]) == (29.9, False)

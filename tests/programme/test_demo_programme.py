"""The demo city's programme (``alertnet serve --demo``) looks like a real start: Bodomzor has
reached its coverage targets, Chorsu and Mirobod are far below, and some houses are exemplary
while others miss a monthly test or were never heard."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet import demo
from alertnet.auth.scope import Scope
from alertnet.db import unit_of_work
from alertnet.models import utcnow
from alertnet.programme.coverage import Targets, coverage
from alertnet.programme.exemplary import Thresholds, exemplary

CONSOLE = Scope(role="dispatcher", user_id=1, username="dispatch")


async def test_the_demo_city_meets_its_targets_in_one_mahalla_of_three(
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    async with unit_of_work(session_factory) as session:
        await demo.seed_demo(session)
        await demo.apply_demo_mode(session, enabled=True)
    now = utcnow()
    async with session_factory() as session:
        rows = await coverage(
            session, CONSOLE, level="mahalla", targets=Targets(30.0, 60.0), now=now
        )
        figures = await exemplary(
            session,
            CONSOLE,
            since=now - timedelta(days=90),
            until=now,
            now=now,
            thresholds=Thresholds(30.0, 99.0, 600.0),
        )
    met = {row["name"]: row["met"] for row in rows}
    assert met == {"Chorsu": False, "Mirobod": False, "Bodomzor": True}
    by_name = {row["name"]: row for row in rows}
    assert by_name["Bodomzor"]["household_pct"] == 30.6
    assert by_name["Bodomzor"]["business_pct"] == 61.1
    assert 0 < by_name["Chorsu"]["household_pct"] < 5
    sites = figures["sites"]
    assert sites is not None
    exemplary_sites = [site for site in sites if site["exemplary"]]
    missing_tests = [site for site in sites if not site["criteria"]["monthly_tests"]["met"]]
    unprotected = [site for site in sites if not site["criteria"]["protected"]["met"]]
    assert exemplary_sites and missing_tests and unprotected
    assert len(exemplary_sites) > len(missing_tests)

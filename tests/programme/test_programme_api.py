"""The programme's HTTP API on the real app (SQLite and PostgreSQL): coverage, exemplary and
the monthly report as each role reads them — an observer its own mahalla only, with nothing
personal of a household or a business (DESIGN §10) — and the admin's change of a mahalla's
counts."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.models import utcnow
from tests.auth.helpers import Account, bearer
from tests.support.asgi import AppClient

from .helpers import BUTTON_EUI, DEAD_BUTTON_EUI, OTHER_STREET, STREET, City, build_city, leaked

SessionFactory = async_sessionmaker[AsyncSession]
THIS_MONTH_PATH = "/api/v1/stats/mahalla-report?mahalla_id={id}&month={month}"


async def get(api: AppClient, path: str, who: Account | None, status: int = 200) -> Any:
    answer = await api.get(path, headers=bearer(who) if who else {})
    assert answer.status_code == status, (path, who and who.role, answer.text)
    return answer.json()


def this_month() -> str:
    # The report's months are local (Asia/Tashkent); mid-month either reading agrees, and a
    # test at a month boundary still asks for a month that has begun.
    return utcnow().strftime("%Y-%m")


@pytest.fixture
async def city(api: AppClient, session_factory: SessionFactory) -> City:
    return await build_city(session_factory)


async def test_coverage_for_the_console_and_for_the_mahalla_team(
    api: AppClient, city: City
) -> None:
    rows = await get(api, "/api/v1/stats/coverage", city.dispatcher)
    assert [row["name"] for row in rows] == ["Chorsu", "Bodomzor"]  # red first
    chorsu = rows[0]
    # The home and the shop are protected; the dead home is offline.
    assert (chorsu["protected_households"], chorsu["protected_businesses"]) == (1, 1)
    assert (chorsu["household_pct"], chorsu["business_pct"], chorsu["met"]) == (10.0, 50.0, False)
    district = await get(api, "/api/v1/stats/coverage?level=district", city.dispatcher)
    assert {row["name"] for row in district} == {"Shayxontohur", "Yunusobod"}
    (region,) = await get(api, "/api/v1/stats/coverage?level=region", city.admin)
    assert (region["name"], region["households"], region["protected_households"]) == (
        "Tashkent", 110, 2,
    )  # fmt: skip

    own = await get(api, "/api/v1/stats/coverage", city.observer)
    assert own == [chorsu]
    asked = await get(api, f"/api/v1/stats/coverage?mahalla_id={city.chorsu}", city.observer)
    assert asked == [chorsu]
    await get(api, f"/api/v1/stats/coverage?mahalla_id={city.bodomzor}", city.observer, 403)
    # A district or region row sums other mahallas: not the team's to read.
    await get(api, "/api/v1/stats/coverage?level=district", city.observer, 403)
    await get(api, "/api/v1/stats/coverage?level=region", city.observer, 403)
    await get(api, "/api/v1/stats/coverage", city.post, 403)
    await get(api, "/api/v1/stats/coverage", None, 401)
    await get(api, "/api/v1/stats/coverage?level=street", city.dispatcher, 422)


async def test_exemplary_for_the_console_and_for_the_mahalla_team(
    api: AppClient, city: City
) -> None:
    console = await get(api, "/api/v1/stats/exemplary?days=90", city.dispatcher)
    assert console["days"] == 90 and console["thresholds"]["online_pct"] == 99.0
    assert {row["name"] for row in console["mahallas"]} == {"Chorsu", "Bodomzor"}
    refs = {site["ref"] for site in console["sites"]}
    assert {"HOME-REF-7", "SHOP-REF-2"} <= refs
    home = next(site for site in console["sites"] if site["ref"] == "HOME-REF-7")
    assert home["name"] == "Dilnoza uyi" and home["criteria"]["protected"]["met"] is True

    team = await get(api, "/api/v1/stats/exemplary?days=90", city.observer)
    assert team["sites"] is None
    assert [row["name"] for row in team["mahallas"]] == ["Chorsu"]
    assert {row["street"] for row in team["streets"]} <= {STREET, OTHER_STREET}
    (houses,) = [row for row in team["sites_by_street"] if row["street"] == STREET]
    assert (houses["sites"], houses["missing"]["protected"]) == (3, 1)
    assert leaked(team) == []
    assert "Secret street" not in str(team)
    path = f"/api/v1/stats/exemplary?mahalla_id={city.bodomzor}"
    await get(api, path, city.observer, 403)
    await get(api, "/api/v1/stats/exemplary", city.post, 403)
    await get(api, "/api/v1/stats/exemplary?days=0", city.dispatcher, 422)
    await get(api, "/api/v1/stats/exemplary?days=367", city.dispatcher, 422)


async def test_the_monthly_report_figures_as_each_role_reads_them(
    api: AppClient, city: City
) -> None:
    month = this_month()
    report = await get(api, THIS_MONTH_PATH.format(id=city.chorsu, month=month), city.observer)
    assert report["mahalla"]["name"] == "Chorsu" and report["month"] == month
    assert report["coverage"]["protected_households"] == 1
    assert report["incidents"]["by_category"]["intrusion"] == 1
    assert [device["eui"] for device in report["offline_public"]] == [DEAD_BUTTON_EUI]
    assert report["offline_by_street"] == [{"street": STREET, "offline": 1}]
    assert report["exemplary"]["sites"] is None
    assert report["response"]["alerts"] == 1
    assert leaked(report) == []

    console = await get(api, THIS_MONTH_PATH.format(id=city.chorsu, month=month), city.admin)
    assert console["exemplary"]["sites"] and console["offline_public"][0]["name"]
    assert BUTTON_EUI not in {device["eui"] for device in console["offline_public"]}

    foreign = THIS_MONTH_PATH.format(id=city.bodomzor, month=month)
    await get(api, foreign, city.observer, 403)
    await get(api, THIS_MONTH_PATH.format(id=999_999, month=month), city.observer, 403)
    await get(api, THIS_MONTH_PATH.format(id=999_999, month=month), city.dispatcher, 404)
    await get(api, THIS_MONTH_PATH.format(id=city.chorsu, month=month), city.post, 403)
    for bad in ("2026-13", "26-01", "1999-12", "2999-01"):
        await get(api, THIS_MONTH_PATH.format(id=city.chorsu, month=bad), city.dispatcher, 422)


async def test_an_admin_changes_a_mahallas_counts_and_coverage_follows(
    api: AppClient, city: City
) -> None:
    path = "/api/v1/mahallas/Chorsu"
    changed = await api.patch(
        path, json={"households": 3, "businesses": 1}, headers=bearer(city.admin)
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["households"], body["businesses"], body["risk"]) == (3, 1, "red")
    (row,) = await get(api, f"/api/v1/stats/coverage?mahalla_id={city.chorsu}", city.dispatcher)
    assert (row["household_pct"], row["business_pct"], row["met"]) == (33.3, 100.0, True)

    risk = await api.patch(path, json={"risk": "yellow"}, headers=bearer(city.admin))
    assert risk.json()["risk"] == "yellow" and risk.json()["households"] == 3
    for who in (city.dispatcher, city.observer, city.post):
        refused = await api.patch(path, json={"households": 9}, headers=bearer(who))
        assert refused.status_code == 403
    for bad in ({"households": -1}, {}, {"lat": 41.3}, {"risk": "purple"}):
        refused = await api.patch(path, json=bad, headers=bearer(city.admin))
        assert refused.status_code == 422, bad
    missing = await api.patch(
        "/api/v1/mahallas/Nowhere", json={"households": 1}, headers=bearer(city.admin)
    )
    assert missing.status_code == 404

"""``GET /api/v1/alerts`` as the history (DESIGN §10), through the real app on SQLite and
PostgreSQL: every filter, the caller's scope, keyset pages (newest first, ``before``) and the
refusal of every bad parameter with a 422 ``invalid_input`` — while the plain call stays the
console's queue (open alerts, escalated first).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.auth.helpers import Account, bearer
from tests.history.helpers import (
    HOME_EUI,
    HOME_NAME,
    PANIC_EUI,
    YUNUSOBOD,
    Archive,
    build_archive,
)
from tests.support.asgi import AppClient


@pytest.fixture
async def archive(session_factory: async_sessionmaker[AsyncSession]) -> Archive:
    return await build_archive(session_factory)


async def listed(api: AppClient, who: Account, **params: Any) -> list[int]:
    response = await api.get("/api/v1/alerts", params=params, headers=bearer(who))
    assert response.status_code == 200, response.text
    return [alert["id"] for alert in response.json()]


def named(archive: Archive, *names: str) -> list[int]:
    return [archive.ids[name] for name in names]


async def test_the_plain_call_is_still_the_consoles_queue(api: AppClient, archive: Archive) -> None:
    # Open alerts only, the escalated one first although the accepted panic outranks it.
    assert await listed(api, archive.dispatcher) == named(archive, "A7", "A8")
    assert await listed(api, archive.dispatcher, state="open") == named(archive, "A7", "A8")
    queue = (await api.get("/api/v1/alerts", headers=bearer(archive.dispatcher))).json()
    assert queue[0]["state"] == "escalated" and "Link" not in queue


async def test_state_filters(api: AppClient, archive: Archive) -> None:
    who = archive.dispatcher
    everything = named(archive, "A9", "A8", "A7", "A6", "A5", "A4", "A3", "A2", "A1")
    assert await listed(api, who, state="all") == everything
    assert await listed(api, who, state="closed") == named(
        archive, "A9", "A6", "A5", "A4", "A2", "A1"
    )
    assert await listed(api, who, state="cancelled") == named(archive, "A3")
    assert await listed(api, who, state="escalated") == named(archive, "A7")
    assert await listed(api, who, state="closed,cancelled", category="fire") == named(archive, "A3")
    # Open, but in history order when asked for it.
    assert await listed(api, who, state="open", order="newest") == named(archive, "A8", "A7")


async def test_period_filters_read_local_time_and_whole_days(
    api: AppClient, archive: Archive
) -> None:
    who = archive.dispatcher
    # The day shift of 2 March in Tashkent time: A2 (08:10) to A8 (19:45).
    shift = {"from": "2026-03-02T08:00", "to": "2026-03-02T20:00", "state": "all"}
    assert await listed(api, who, **shift) == named(
        archive, "A8", "A7", "A6", "A5", "A4", "A3", "A2"
    )
    # The same instants with an explicit offset, and in UTC.
    utc = {"from": "2026-03-02T03:00:00Z", "to": "2026-03-02T15:00:00+00:00", "state": "all"}
    assert await listed(api, who, **utc) == await listed(api, who, **shift)
    # A bare date as "to" takes in that whole day; "from" is inclusive, "to" exclusive.
    one_day = {"from": "2026-03-02", "to": "2026-03-02", "state": "all"}
    assert await listed(api, who, **one_day) == await listed(api, who, **shift)
    assert await listed(api, who, state="all", to="2026-03-02T08:10") == named(archive, "A1")
    assert await listed(api, who, state="all", **{"from": "2026-03-03"}) == named(archive, "A9")


async def test_mahalla_category_device_post_and_drill_filters(
    api: AppClient, archive: Archive
) -> None:
    who = archive.dispatcher
    chorsu = named(archive, "A9", "A8", "A5", "A4", "A1")
    assert await listed(api, who, state="all", mahalla=str(archive.chorsu)) == chorsu
    assert await listed(api, who, state="all", mahalla="Chorsu") == chorsu
    assert await listed(api, who, state="all", mahalla_id=archive.chorsu) == chorsu
    assert await listed(api, who, state="all", mahalla=YUNUSOBOD) == named(archive, "A6", "A3")
    assert await listed(api, who, state="all", mahalla="Nowhere") == []
    assert await listed(api, who, state="all", category="intrusion") == named(archive, "A7", "A2")
    assert await listed(api, who, state="all", device=HOME_EUI.upper()) == named(
        archive, "A7", "A2"
    )
    # A post's alerts are those it held or was offered: P-2 declined A5.
    assert await listed(api, who, state="all", post="P-2") == named(archive, "A9", "A5", "A2")
    assert await listed(api, who, state="all", post=str(archive.p1)) == named(
        archive, "A8", "A5", "A4", "A1"
    )
    assert await listed(api, who, state="all", drill="true") == named(archive, "A4")
    assert archive.ids["A4"] not in await listed(api, who, state="all", drill="false")
    combined = {"state": "closed", "mahalla": "Chorsu", "drill": "false", "post": "P-1"}
    assert await listed(api, who, **combined) == named(archive, "A5", "A1")


async def test_free_text_search(api: AppClient, archive: Archive) -> None:
    who = archive.dispatcher
    a5 = archive.ids["A5"]
    assert a5 in await listed(api, who, state="all", q=str(a5))
    assert a5 in await listed(api, who, state="all", q=f"#{a5}")
    assert await listed(api, who, state="all", q="karimov") == named(archive, "A7", "A2")
    assert await listed(api, who, state="all", q=HOME_EUI[-6:]) == named(archive, "A7", "A2")
    assert await listed(api, who, state="all", q="Юнус") == named(archive, "A6", "A3")
    assert await listed(api, who, state="all", q="child pressed") == named(archive, "A1")
    assert await listed(api, who, state="all", q="handed_over") == named(archive, "A9")
    # LIKE wildcards are searched for, not obeyed.
    assert await listed(api, who, state="all", q="%") == []
    # Only the outcomes false_alarm and handed_over hold an underscore.
    assert await listed(api, who, state="all", q="_") == named(archive, "A9", "A1")


async def test_observers_read_their_mahalla_and_search_only_what_they_may_read(
    api: AppClient, archive: Archive
) -> None:
    observer = archive.observer_bodomzor
    assert await listed(api, observer, state="all") == named(archive, "A7", "A2")
    # The household's name and the post's closing note are not theirs to search.
    assert await listed(api, observer, state="all", q="karimov") == []
    assert await listed(api, observer, state="all", q=HOME_NAME) == []
    assert await listed(api, observer, state="all", q="Bodomzor") == named(archive, "A7", "A2")
    chorsu_observer = archive.observer_chorsu
    assert await listed(api, chorsu_observer, state="all", q="child pressed") == []
    # Another mahalla by id is refused; by name it is simply nothing of theirs.
    other = await api.get(
        "/api/v1/alerts",
        params={"state": "all", "mahalla": archive.chorsu},
        headers=bearer(observer),
    )
    assert other.status_code == 403 and other.json()["code"] == "forbidden"
    assert await listed(api, observer, state="all", mahalla="Chorsu") == []
    rows = (
        await api.get("/api/v1/alerts", params={"state": "all"}, headers=bearer(observer))
    ).json()
    assert all(row.get("device_name", "") == "" for row in rows)
    assert all(round(row["lat"], 3) == row["lat"] for row in rows)
    # A post reads the alerts it held or was offered.
    assert await listed(api, archive.crew, state="all") == named(archive, "A8", "A5", "A4", "A1")


async def test_history_rows_carry_when_each_stage_was_reached(
    api: AppClient, archive: Archive
) -> None:
    rows = (
        await api.get(
            "/api/v1/alerts",
            params={"state": "all", "device": PANIC_EUI, "category": "panic", "drill": "false"},
            headers=bearer(archive.dispatcher),
        )
    ).json()
    a1 = next(row for row in rows if row["id"] == archive.ids["A1"])
    assert a1["outcome"] == "false_alarm" and a1["post"] == "P-1"
    assert a1["accepted_at"].startswith("2026-03-01T17:30:20")
    assert a1["closed_at"].startswith("2026-03-01T17:50:00")


async def test_keyset_pages_cover_the_history_once_newest_first(
    api: AppClient, archive: Archive
) -> None:
    who = archive.dispatcher
    everything = await listed(api, who, state="all")
    pages: list[list[int]] = []
    before: int | None = None
    for _ in range(len(everything) + 2):
        params: dict[str, Any] = {"state": "all", "limit": 2}
        if before is not None:
            params["before"] = before
        response = await api.get("/api/v1/alerts", params=params, headers=bearer(who))
        page = [alert["id"] for alert in response.json()]
        if len(page) == 2:
            link = response.headers["link"]
            assert f"before={page[-1]}" in link and 'rel="next"' in link and "limit=2" in link
        else:
            assert "link" not in response.headers
        if not page:
            break
        pages.append(page)
        before = page[-1]
    assert [alert_id for page in pages for alert_id in page] == everything
    assert everything == sorted(everything, reverse=True)
    # A page after an id that is not an alert still starts below it.
    assert await listed(api, who, state="all", before=archive.ids["A5"]) == named(
        archive, "A4", "A3", "A2", "A1"
    )


BAD_PARAMETERS = [
    {"state": "bogus"},
    {"state": "open,nope"},
    {"from": "yesterday"},
    {"from": "2026-02-30"},
    {"to": "2026-03-02T25:00"},
    {"from": "2026-03-02", "to": "2026-03-01"},
    {"from": "2026-03-02T10:00", "to": "2026-03-02T10:00"},
    {"from": "0001-01-01T00:00+14:00"},
    {"from": "x" * 41},
    {"category": "burglary"},
    {"device": "70b3d57ed000900"},
    {"device": "zzzzzzzzzzzzzzzz"},
    {"mahalla": "   "},
    {"mahalla_id": 2**40},
    {"mahalla": "7", "mahalla_id": 8},
    {"post": "P-1\x01"},
    {"q": "a\x00b"},
    {"q": "x" * 101},
    {"drill": "maybe"},
    {"limit": 0},
    {"limit": 1001},
    {"limit": "ten"},
    {"before": 0},
    {"before": 2**63},
    {"before": "last"},
    {"order": "oldest"},
    {"order": "queue", "before": 5},
]


async def test_every_bad_parameter_is_a_422_naming_it(api: AppClient, archive: Archive) -> None:
    for params in BAD_PARAMETERS:
        paging_only = {"limit", "order"} & params.keys()
        for path in ("/api/v1/alerts", "/api/v1/alerts/export.csv"):
            if path.endswith(".csv") and paging_only:
                continue  # a file has no pages and one order
            response = await api.get(path, params=params, headers=bearer(archive.dispatcher))
            assert response.status_code == 422, (path, params, response.text)
            body = response.json()
            assert body["code"] == "invalid_input" and body["detail"], (params, body)


async def test_the_history_needs_a_login(api: AppClient, archive: Archive) -> None:
    for path in ("/api/v1/alerts?state=all", "/api/v1/alerts/export.csv"):
        response = await api.get(path)
        assert response.status_code == 401 and response.json()["code"] == "unauthorized"

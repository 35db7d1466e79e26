"""``GET /api/v1/alerts/export.csv`` (DESIGN §10) through the real app on SQLite and PostgreSQL:
a file Excel opens with Cyrillic intact (UTF-8 with a BOM, CRLF rows, ``sep=;`` on request),
times in Asia/Tashkent on a 24-hour clock, the same filters as the history, no formula a
spreadsheet would run, and for an observer exactly what §10 allows.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.alerts import export
from tests.auth.helpers import Account, bearer
from tests.history.helpers import (
    CANCEL_REASON,
    CLOSE_NOTE,
    DISPATCHER_NOTE,
    HOME_ADDRESS,
    HOME_AT,
    HOME_NAME,
    HOME_OWNER,
    HOME_PHONE,
    HOME_STREET,
    SHOP_NAME,
    SHOP_OWNER,
    SHOP_STREET,
    YUNUSOBOD,
    Archive,
    build_archive,
)
from tests.support.asgi import AppClient


@pytest.fixture
async def archive(session_factory: async_sessionmaker[AsyncSession]) -> Archive:
    return await build_archive(session_factory)


async def download(api: AppClient, who: Account, **params: Any) -> tuple[bytes, Any]:
    response = await api.get("/api/v1/alerts/export.csv", params=params, headers=bearer(who))
    assert response.status_code == 200, response.text
    return response.content, response


def parse(content: bytes, separator: str = ",") -> list[dict[str, str]]:
    assert content.startswith(b"\xef\xbb\xbf"), content[:10]
    text = content.decode("utf-8").removeprefix("\ufeff")
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=separator))


def by_id(rows: list[dict[str, str]], archive: Archive, name: str) -> dict[str, str]:
    return next(row for row in rows if row["id"] == str(archive.ids[name]))


async def test_a_file_excel_opens_with_cyrillic_and_local_times(
    api: AppClient, archive: Archive
) -> None:
    content, response = await download(api, archive.dispatcher, state="all")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="alertnet-alerts-')
    assert disposition.endswith('.csv"')
    assert b"\r\n" in content and content.count(b"\r\n") == 10  # header + 9 alerts
    rows = parse(content)
    assert list(rows[0]) == list(export.COLUMNS)
    assert [int(row["id"]) for row in rows] == sorted(archive.ids.values(), reverse=True)
    # Cyrillic survives the round trip (UTF-8 under the BOM).
    fire = by_id(rows, archive, "A3")
    assert fire["mahalla"] == YUNUSOBOD and fire["owner"] == SHOP_OWNER
    assert fire["street"] == SHOP_STREET and fire["state"] == "cancelled"
    # 22:30 on 1 March in Tashkent (17:30 UTC), 24-hour clock; durations in whole seconds.
    first = by_id(rows, archive, "A1")
    assert first["opened_at"] == "2026-03-01 22:30:00"
    assert first["accepted_at"] == "2026-03-01 22:30:20"
    assert first["closed_at"] == "2026-03-01 22:50:00"
    assert (first["to_accept_s"], first["to_on_scene_s"], first["to_close_s"]) == (
        "20",
        "240",
        "1200",
    )
    assert first["close_note"] == CLOSE_NOTE and first["post"] == "P-1"
    assert first["drill"] == "0" and by_id(rows, archive, "A4")["drill"] == "1"
    home = by_id(rows, archive, "A2")
    assert (home["device_name"], home["owner"], home["address"]) == (
        HOME_NAME,
        HOME_OWNER,
        HOME_ADDRESS,
    )
    assert home["dispatcher_notes"] == f"2026-03-02 08:11:00 disp: {DISPATCHER_NOTE}"
    assert float(home["lat"]) == HOME_AT[0]
    # The call list is for the alert in hand: it is never in the file.
    assert HOME_PHONE.encode() not in content and CANCEL_REASON.encode() not in content


async def test_a_semicolon_file_for_excel_with_a_decimal_comma(
    api: AppClient, archive: Archive
) -> None:
    content, _ = await download(api, archive.dispatcher, state="all", sep=";")
    rows = parse(content, ";")
    assert len(rows) == 9 and by_id(rows, archive, "A3")["mahalla"] == YUNUSOBOD


async def test_cells_a_spreadsheet_would_run_are_shown_as_text(
    api: AppClient, archive: Archive
) -> None:
    content, _ = await download(api, archive.dispatcher, state="all", category="fire")
    [fire] = parse(content)
    assert fire["device_name"] == "'" + SHOP_NAME
    assert not any(
        value.startswith(("=", "+", "-", "@")) for row in parse(content) for value in row.values()
    )
    assert [export.neutralise(cell) for cell in ("=1+1", "+7", "-2", "@x", "\tx", "ok")] == [
        "'=1+1",
        "'+7",
        "'-2",
        "'@x",
        "'\tx",
        "ok",
    ]


async def test_the_file_takes_the_historys_filters(api: AppClient, archive: Archive) -> None:
    content, _ = await download(
        api, archive.dispatcher, state="closed", mahalla="Chorsu", drill="false"
    )
    assert [row["id"] for row in parse(content)] == [
        str(archive.ids[name]) for name in ("A9", "A5", "A1")
    ]
    content, _ = await download(
        api, archive.dispatcher, state="all", **{"from": "2026-03-02", "to": "2026-03-02"}
    )
    assert len(parse(content)) == 7
    content, _ = await download(api, archive.dispatcher, state="all", before=archive.ids["A3"])
    assert [row["id"] for row in parse(content)] == [
        str(archive.ids[name]) for name in ("A2", "A1")
    ]
    empty, _ = await download(api, archive.dispatcher, q="nothing like this")
    assert parse(empty) == []


async def test_an_observer_gets_exactly_what_the_mahalla_team_may_read(
    api: AppClient, archive: Archive
) -> None:
    content, _ = await download(api, archive.observer_bodomzor, state="all")
    rows = parse(content)
    assert sorted(row["id"] for row in rows) == sorted(
        str(archive.ids[name]) for name in ("A2", "A7")
    )
    for row in rows:
        assert row["mahalla"] == "Bodomzor" and row["site"] == "household"
        assert row["device_name"] == "" and row["owner"] == "" and row["address"] == ""
        assert row["premises_ref"] == "" and row["street"] == HOME_STREET
        assert (row["lat"], row["lon"]) == ("41.329", "69.28")
        assert row["close_note"] == "" and row["dispatcher_notes"] == ""
    for secret in (HOME_NAME, HOME_OWNER, HOME_ADDRESS, HOME_PHONE, DISPATCHER_NOTE, "41.3291"):
        assert secret.encode() not in content, secret
    # A public button is shown in full to its mahalla's team.
    content, _ = await download(api, archive.observer_chorsu, state="all")
    rows = parse(content)
    assert {row["device_name"] for row in rows} == {"Chorsu bazaar, gate 3"}
    assert all(row["close_note"] == "" for row in rows)


async def test_a_post_exports_its_own_alerts_without_premises(
    api: AppClient, archive: Archive
) -> None:
    content, _ = await download(api, archive.crew, state="all")
    rows = parse(content)
    assert sorted(int(row["id"]) for row in rows) == sorted(
        archive.ids[name] for name in ("A1", "A4", "A5", "A8")
    )
    assert all(row["address"] == "" and row["owner"] == "" for row in rows)


async def test_a_filter_wider_than_one_file_is_refused_before_anything_is_sent(
    api: AppClient, archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "MAX_EXPORT_ROWS", 8)
    refused = await api.get(
        "/api/v1/alerts/export.csv", params={"state": "all"}, headers=bearer(archive.dispatcher)
    )
    assert refused.status_code == 422 and "narrow" in refused.json()["detail"]
    content, _ = await download(api, archive.dispatcher, state="closed")
    assert len(parse(content)) == 6

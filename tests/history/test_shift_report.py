"""``GET /api/v1/reports/shift`` (DESIGN §10) through the real app on SQLite and PostgreSQL: the
day shift of 2 March 2026 in the seeded archive, read back from the HTML as a person would —
counts by category and mahalla, handling-time percentiles without the drill, escalations, what
the next shift takes over, every alert with its timeline and notes — in each language, cut to
the mahalla team's rights for an observer, and reachable from a browser link (a login first).
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import datetime, timedelta
from html.parser import HTMLParser
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.auth.helpers import Account, bearer
from tests.history.helpers import (
    CANCEL_REASON,
    DISPATCHER_NOTE,
    HOME_ADDRESS,
    HOME_NAME,
    HOME_OWNER,
    HOME_PHONE,
    HOME_STREET,
    TASHKENT,
    YUNUSOBOD,
    Archive,
    build_archive,
)
from tests.support.asgi import AppClient

SHIFT: Final = {"from": "2026-03-02T08:00", "to": "2026-03-02T20:00"}
RAW_KEY: Final = re.compile(r"^[a-z][a-z0-9-]*(?:\.[a-z0-9_-]+)+$")


class Page(HTMLParser):
    """The report's text, its tables (caption → rows of cell texts) and alerts (id → text)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.alerts: dict[str, str] = {}
        self._title = ""
        self._caption: list[str] | None = None
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self._article: tuple[str, list[str]] | None = None
        self._skip = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in ("style", "script"):
            self._skip += 1
        elif tag == "table":
            self._table = []
        elif tag == "caption":
            self._caption = []
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "article":
            self._article = (found.get("id") or "", [])

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._skip -= 1
        elif tag == "caption" and self._caption is not None:
            self._title = " ".join("".join(self._caption).split())
            self._caption = None
        elif tag in ("td", "th") and self._cell is not None and self._table is not None:
            self._table[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table" and self._table is not None:
            self.tables[self._title] = [row for row in self._table if row]
            self._table = None
        elif tag == "article" and self._article is not None:
            self.alerts[self._article[0]] = " ".join("".join(self._article[1]).split())
            self._article = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.texts.append(data)
        for sink in (self._caption, self._cell):
            if sink is not None:
                sink.append(data)
        if self._article is not None:
            self._article[1].append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.texts).split())


@pytest.fixture
async def archive(session_factory: async_sessionmaker[AsyncSession]) -> Archive:
    return await build_archive(session_factory)


async def report(api: AppClient, who: Account, **params: Any) -> tuple[Page, Any]:
    response = await api.get(
        "/api/v1/reports/shift", params={**SHIFT, **params}, headers=bearer(who)
    )
    assert response.status_code == 200, response.text
    return Page(response.text), response


def row(table: list[list[str]], first: str) -> list[str]:
    return next(cells for cells in table if cells[0] == first)


async def test_the_dispatchers_report_of_a_day_shift(api: AppClient, archive: Archive) -> None:
    page, response = await report(api, archive.dispatcher, lang="en")
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-language"] == "en"
    assert response.headers["cache-control"] == "no-store"
    text = page.text
    assert "Shift report" in text
    assert "02.03.2026 08:00 – 02.03.2026 20:00 (Asia/Tashkent time)" in text  # noqa: RUF001
    assert "every mahalla" in text and "by disp (dispatcher)" in text

    # Six real alerts (the drill left out), three closed by a post, one cancelled, two
    # escalated, two still open at 20:00, one drill.
    figures = re.findall(
        r'<span class="figure">(\d+)</span> <span class="figure-label">([^<]+)</span>',
        response.text,
    )
    assert {name: int(count) for count, name in figures} == {
        "alerts (real)": 6,
        "closed by a post": 3,
        "cancelled": 1,
        "escalated": 2,
        "open at the end": 2,
        "drills (not counted)": 1,
    }
    categories = page.tables["By category"]
    assert row(categories, "Panic")[1] == "2" and row(categories, "Intrusion")[1] == "2"
    assert row(categories, "Fire")[1] == "1" and row(categories, "Device trouble")[1] == "1"
    assert row(categories, "Medical")[1] == "0"
    outcomes = page.tables["By outcome"]
    assert row(outcomes, "confirmed")[1] == "2" and row(outcomes, "cancelled")[1] == "1"
    mahallas = page.tables["By mahalla and category"]
    assert mahallas[0][0] == "Mahalla" and mahallas[0][-1] == "Total"
    assert row(mahallas, "Bodomzor")[-1] == "2" and row(mahallas, "Chorsu")[-1] == "2"
    assert row(mahallas, YUNUSOBOD)[-1] == "2"

    # Accepted after 120 s (A2), 40 s (A5), 10 s (A8): p50 40 s, p95 2 min. With the drill
    # (30 s) the median would be 30 s.
    handling = page.tables["The whole period"]
    assert handling[0] == ["Stage", "Alerts", "p50", "p80", "p95", "p99"]
    assert row(handling, "press → accepted") == [
        "press → accepted",
        "3",
        "40 s",
        "2 min 00 s",
        "2 min 00 s",
        "2 min 00 s",
    ]
    assert row(handling, "press → closed")[1] == "2"  # A2 and A5; A6 is a trouble
    assert "Per post (p50 / p95)" in page.tables

    assert "Escalations: 2" in text
    escalated = page.tables["Alerts no post took in time"]
    assert [cells[0] for cells in escalated[1:]] == [
        f"Intrusion #{archive.ids['A2']}",
        f"Intrusion #{archive.ids['A7']}",
    ]
    assert row(escalated, f"Intrusion #{archive.ids['A2']}")[5] == "P-2 at 02.03.2026 08:12"
    handover = page.tables["Alerts the next shift takes over"]
    assert [(cells[0], cells[3]) for cells in handover[1:]] == [
        (f"Intrusion #{archive.ids['A7']}", "ESCALATED"),
        (f"Panic #{archive.ids['A8']}", "Accepted"),
    ]

    assert "Every alert of the period: 7" in text
    assert sorted(page.alerts) == sorted(
        f"alert-{archive.ids[name]}" for name in ("A2", "A3", "A4", "A5", "A6", "A7", "A8")
    )
    a2 = page.alerts[f"alert-{archive.ids['A2']}"]
    for told in ("— → New", "New → ESCALATED", "no post eligible", "assigned by disp", "note"):
        assert told in a2, told
    assert DISPATCHER_NOTE in a2 and HOME_NAME in a2 and HOME_STREET in a2
    assert "08:11:00" in a2 and "08:40:00" in a2
    assert CANCEL_REASON in page.alerts[f"alert-{archive.ids['A3']}"]
    assert "DRILL" in page.alerts[f"alert-{archive.ids['A4']}"]
    assert "acknowledged" in page.alerts[f"alert-{archive.ids['A7']}"]
    # Yesterday's and tomorrow's alerts are not this shift's.
    assert f"#{archive.ids['A1']}" not in text and f"#{archive.ids['A9']}" not in text
    # The premises' people are never in a report, whoever reads it.
    assert HOME_PHONE not in response.text and HOME_OWNER not in response.text


async def test_the_page_is_self_contained_and_its_style_allowed_by_hash(
    api: AppClient, archive: Archive
) -> None:
    _, response = await report(api, archive.dispatcher)
    policy = response.headers["content-security-policy"]
    [style] = re.findall(r"<style>(.*?)</style>", response.text, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy and "script-src 'self'" in policy
    assert "@media print" in style and "@page" in style
    assert '<script type="module" src="/static/report/print.js"></script>' in response.text
    served = await api.get("/static/report/print.js")
    assert served.status_code == 200 and "window.print()" in served.text


@pytest.mark.parametrize(
    ("language", "title", "stage"),
    [
        ("uz", "Smena hisoboti", "bosish → qabul qilindi"),
        ("ru", "Отчёт за смену", "нажатие → принято"),
        ("en", "Shift report", "press → accepted"),
    ],
)
async def test_each_language_and_no_raw_keys(
    api: AppClient, archive: Archive, language: str, title: str, stage: str
) -> None:
    page, response = await report(api, archive.dispatcher, lang=language)
    assert f'<html lang="{language}">' in response.text
    assert title in page.text
    assert any(cells[0] == stage for table in page.tables.values() for cells in table), stage
    raw = [text.strip() for text in page.texts if RAW_KEY.match(text.strip())]
    assert raw == [], raw


async def test_the_users_own_language_is_the_default(api: AppClient, archive: Archive) -> None:
    chosen = await api.patch(
        "/api/v1/users/me", json={"language": "ru"}, headers=bearer(archive.dispatcher)
    )
    assert chosen.status_code == 200, chosen.text
    page, response = await report(api, archive.dispatcher)
    assert response.headers["content-language"] == "ru" and "Отчёт за смену" in page.text


async def test_an_observer_reads_its_mahallas_report_without_personal_data(
    api: AppClient, archive: Archive
) -> None:
    page, response = await report(api, archive.observer_bodomzor, lang="en")
    assert "mahalla Bodomzor only" in page.text
    assert "Mahalla team copy, without personal data" in page.text
    assert sorted(page.alerts) == sorted(f"alert-{archive.ids[name]}" for name in ("A2", "A7"))
    assert [cells[0] for cells in page.tables["By mahalla and category"][1:]] == ["Bodomzor"]
    assert "Per post (p50 / p95)" not in page.tables
    for secret in (
        HOME_NAME,
        HOME_OWNER,
        HOME_ADDRESS,
        HOME_PHONE,
        DISPATCHER_NOTE,
        "no post eligible",
        "assigned by disp",
        "Chorsu",
        YUNUSOBOD,
        "41.329123",
    ):
        assert secret not in response.text, secret
    a2 = page.alerts[f"alert-{archive.ids['A2']}"]
    assert HOME_STREET in a2 and "41.329, 69.28" in a2 and "New → ESCALATED" in a2


async def test_who_may_not_read_a_report(api: AppClient, archive: Archive) -> None:
    crew = await api.get("/api/v1/reports/shift", params=SHIFT, headers=bearer(archive.crew))
    assert crew.status_code == 403 and crew.json()["code"] == "forbidden"
    script = await api.get("/api/v1/reports/shift", params=SHIFT)
    assert script.status_code == 401 and script.json()["code"] == "unauthorized"


async def test_a_browser_without_a_session_logs_in_first_and_comes_back(
    api: AppClient, archive: Archive
) -> None:
    browser = await api.get(
        "/api/v1/reports/shift", params=SHIFT, headers={"Accept": "text/html,*/*;q=0.8"}
    )
    assert browser.status_code == 303
    location = urlsplit(browser.headers["location"])
    assert location.path == "/login"
    [next_path] = parse_qs(location.query)["next"]
    assert next_path == "/api/v1/reports/shift?from=2026-03-02T08%3A00&to=2026-03-02T20%3A00"
    # The session cookie that /login sets opens the report (a GET: no CSRF check needed).
    login = await api.post(
        "/api/v1/auth/login", json={"username": "disp", "password": "correct horse battery"}
    )
    assert login.status_code == 200, login.text
    back = await api.get(next_path, headers={"Accept": "text/html"})
    assert back.status_code == 200 and f'id="alert-{archive.ids["A2"]}"' in back.text


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-01-01", "to": "2026-03-02"},
        {"from": "2026-03-02T20:00", "to": "2026-03-02T08:00"},
        {"from": "tomorrow"},
        {"lang": "fr"},
        {"to": "2026-03-02T08:00\x01"},
    ],
    ids=["longer than 31 days", "from after to", "not a time", "unknown language", "control"],
)
async def test_bad_periods_and_languages_are_refused(
    api: AppClient, archive: Archive, params: dict[str, str]
) -> None:
    response = await api.get(
        "/api/v1/reports/shift", params={**SHIFT, **params}, headers=bearer(archive.dispatcher)
    )
    assert response.status_code == 422 and response.json()["code"] == "invalid_input"


async def test_without_a_period_the_report_covers_the_last_twelve_hours(
    api: AppClient, archive: Archive
) -> None:
    response = await api.get(
        "/api/v1/reports/shift", params={"lang": "en"}, headers=bearer(archive.dispatcher)
    )
    assert response.status_code == 200
    page = Page(response.text)
    [since, until] = re.findall(r"\d\d\.\d\d\.\d{4} \d\d:\d\d", page.text)[:2]
    shown = [
        datetime.strptime(when, "%d.%m.%Y %H:%M").replace(tzinfo=TASHKENT)
        for when in (since, until)
    ]
    assert shown[1] - shown[0] == timedelta(hours=12)
    # The archive is in March 2026: nothing of it happened in the last twelve hours.
    assert "No alert was opened in this period." in page.text

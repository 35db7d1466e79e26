"""The shift report as one printable HTML page (DESIGN §10): the browser makes the PDF.

The page is self-contained: its stylesheet (``report.css``, screen and print rules) is inlined
and allowed by its hash in the Content-Security-Policy, so a saved copy prints the same. The
only script is ``/static/report/print.js`` (the Print button); the period form and the
language links are plain GET links back to the report. Every text comes from the catalogs
(``reports.strings``); times are 24-hour in ``ALERTNET_TIMEZONE``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from alertnet.dispatch.stats import PERCENTILES, STAGES
from alertnet.reports.html import Child, Html, el, render
from alertnet.reports.shift import ReportAlert, ShiftReport, TimelineEntry
from alertnet.reports.strings import Texts

STYLESHEET: Final = (Path(__file__).with_name("report.css")).read_text(encoding="utf-8")
_STYLE_HASH: Final = base64.b64encode(hashlib.sha256(STYLESHEET.encode()).digest()).decode()
CONTENT_SECURITY_POLICY: Final = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; script-src 'self'; "
    "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
REPORT_PATH: Final = "/api/v1/reports/shift"
DATE_TIME: Final = "%d.%m.%Y %H:%M"
CLOCK: Final = "%H:%M:%S"
INPUT_VALUE: Final = "%Y-%m-%dT%H:%M"


class ShiftPage:
    """Renders one report for one reader (language, time zone, who asked)."""

    def __init__(
        self,
        report: ShiftReport,
        texts: Texts,
        *,
        zone: ZoneInfo,
        username: str,
        role: str,
        languages: Sequence[str],
    ) -> None:
        self.report = report
        self.texts = texts
        self.t = texts.t
        self.zone = zone
        self.username = username
        self.role = role
        self.languages = languages

    # --- formatting -------------------------------------------------------------------------

    def when(self, value: datetime | None) -> str:
        return value.astimezone(self.zone).strftime(DATE_TIME) if value is not None else "—"

    def clock(self, value: datetime, day_of: datetime) -> str:
        """``14:05:09``, with the date in front when it is not ``day_of``'s day."""
        local = value.astimezone(self.zone)
        if local.date() != day_of.astimezone(self.zone).date():
            return local.strftime(f"%d.%m.%Y {CLOCK}")
        return local.strftime(CLOCK)

    def alert_title(self, alert: ReportAlert) -> str:
        category = self.texts.label("category", alert.category)
        if alert.trouble:
            troubles = ", ".join(
                self.texts.label("trouble", kind) for kind in alert.trouble.split(",") if kind
            )
            return self.t("alert.title-trouble", category=category, troubles=troubles, id=alert.id)
        return self.t("alert.title", category=category, id=alert.id)

    def badges(self, alert: ReportAlert) -> list[Html]:
        shown = [
            el(
                "span",
                {"class": f"state state-{alert.state}"},
                self.texts.label("state", alert.state),
            )
        ]
        if alert.drill:
            shown.append(el("span", {"class": "badge drill"}, self.t("drill.badge")))
        if alert.silent:
            shown.append(el("span", {"class": "badge silent"}, self.t("report.silent")))
        return shown

    def alert_link(self, alert: ReportAlert) -> Html:
        return el("a", {"href": f"#alert-{alert.id}"}, self.alert_title(alert))

    def table(
        self, caption: str, headers: Sequence[str], rows: Sequence[Child], *, cls: str = ""
    ) -> Html:
        if not rows:
            return el("p", {"class": "empty"}, self.t("report.none", caption=caption))
        return el(
            "table",
            {"class": f"data {cls}".strip()},
            el("caption", {}, caption),
            el(
                "thead",
                {},
                el("tr", {}, [el("th", {"scope": "col"}, header) for header in headers]),
            ),
            el("tbody", {}, rows),
        )

    # --- the parts --------------------------------------------------------------------------

    def toolbar(self) -> Html:
        report = self.report
        period = {"from": self.input_value(report.since), "to": self.input_value(report.until)}
        languages = [
            el(
                "a",
                {
                    "href": f"{REPORT_PATH}?{urlencode({**period, 'lang': code})}",
                    "lang": code,
                    "aria-current": "true" if code == self.texts.language else None,
                },
                code.upper(),
            )
            for code in self.languages
        ]
        return el(
            "nav",
            {"class": "toolbar screen-only", "aria-label": self.t("report.toolbar")},
            el(
                "form",
                {"method": "get", "action": REPORT_PATH, "class": "period-form"},
                el("label", {"for": "from"}, self.t("report.from")),
                el(
                    "input",
                    {
                        "type": "datetime-local",
                        "id": "from",
                        "name": "from",
                        "value": period["from"],
                        "required": True,
                    },
                ),
                el("label", {"for": "to"}, self.t("report.to")),
                el(
                    "input",
                    {
                        "type": "datetime-local",
                        "id": "to",
                        "name": "to",
                        "value": period["to"],
                        "required": True,
                    },
                ),
                el("input", {"type": "hidden", "name": "lang", "value": self.texts.language}),
                el("button", {"type": "submit"}, self.t("report.show")),
            ),
            el("button", {"type": "button", "id": "print-report"}, self.t("report.print")),
            el("span", {"class": "languages", "aria-label": self.t("language.label")}, languages),
            el("a", {"href": "/console"}, self.t("report.back-to-console")),
        )

    def input_value(self, value: datetime) -> str:
        return value.astimezone(self.zone).strftime(INPUT_VALUE)

    def header(self) -> Html:
        report = self.report
        reach = (
            self.t("report.scope-mahalla", mahalla=report.scope_mahalla)
            if report.scope_mahalla is not None
            else self.t("report.scope-all")
        )
        facts = [
            (
                self.t("report.period"),
                self.t(
                    "report.period-value",
                    since=self.when(report.since),
                    until=self.when(report.until),
                    zone=self.zone.key,
                ),
            ),
            (
                self.t("report.generated"),
                self.t(
                    "report.generated-value",
                    when=self.when(report.generated_at),
                    user=self.username,
                    role=self.texts.label("role", self.role),
                ),
            ),
            (self.t("report.scope"), reach),
        ]
        return el(
            "header",
            {"class": "report-header"},
            el("h1", {}, self.t("report.title")),
            el(
                "dl",
                {"class": "facts"},
                [[el("dt", {}, name), el("dd", {}, value)] for name, value in facts],
            ),
            None
            if report.with_free_text
            else el("p", {"class": "privacy"}, self.t("report.privacy-observer")),
        )

    def summary(self) -> Html:
        report = self.report
        closed = sum(
            count
            for outcome, count in report.by_outcome.items()
            if outcome not in ("open", "cancelled")
        )
        figures = [
            (self.t("report.figure.alerts", count=report.real_alerts), report.real_alerts),
            (self.t("report.figure.closed", count=closed), closed),
            (
                self.t("report.figure.cancelled", count=report.by_outcome["cancelled"]),
                report.by_outcome["cancelled"],
            ),
            (self.t("report.figure.escalated", count=len(report.escalated)), len(report.escalated)),
            (
                self.t("report.figure.open-at-end", count=len(report.open_at_end)),
                len(report.open_at_end),
            ),
            (self.t("report.figure.drills", count=report.drills), report.drills),
        ]
        return el(
            "section",
            {"class": "summary", "aria-label": self.t("report.summary")},
            el(
                "ul",
                {"class": "figures"},
                [
                    el(
                        "li",
                        {},
                        el("span", {"class": "figure"}, self.texts.number(value)),
                        " ",
                        el("span", {"class": "figure-label"}, name),
                    )
                    for name, value in figures
                ],
            ),
            el("p", {"class": "note"}, self.t("report.drills-left-out")),
        )

    def counts(self) -> Html:
        report = self.report
        category_rows = [
            el(
                "tr",
                {},
                el("th", {"scope": "row"}, self.texts.label("category", category)),
                el("td", {"class": "num"}, self.texts.number(count)),
            )
            for category, count in report.by_category.items()
        ]
        outcome_rows = [
            el(
                "tr",
                {},
                el("th", {"scope": "row"}, self.texts.label("outcome", outcome)),
                el("td", {"class": "num"}, self.texts.number(count)),
            )
            for outcome, count in sorted(
                report.by_outcome.items(), key=lambda item: (-item[1], item[0])
            )
        ]
        categories = [category for category, count in report.by_category.items() if count]
        mahalla_rows = [
            el(
                "tr",
                {},
                el("th", {"scope": "row"}, name or self.t("alert.no-mahalla")),
                [
                    el(
                        "td",
                        {"class": "num"},
                        self.texts.number(counts[category]) if counts[category] else "—",
                    )
                    for category in categories
                ],
                el("td", {"class": "num total"}, self.texts.number(sum(counts.values()))),
            )
            for name, counts in report.by_mahalla.items()
        ]
        return el(
            "section",
            {"class": "counts"},
            el("h2", {}, self.t("report.counts")),
            el(
                "div",
                {"class": "columns"},
                self.table(
                    self.t("report.by-category"),
                    [self.t("report.col.category"), self.t("report.col.alerts")],
                    category_rows,
                ),
                self.table(
                    self.t("report.by-outcome"),
                    [self.t("report.col.outcome"), self.t("report.col.alerts")],
                    outcome_rows,
                ),
            ),
            self.table(
                self.t("report.by-mahalla"),
                [
                    self.t("report.col.mahalla"),
                    *(self.texts.label("category", c) for c in categories),
                    self.t("report.col.total"),
                ],
                mahalla_rows,
                cls="wide",
            ),
        )

    def percentile_cells(self, figures: dict[str, Any]) -> list[Html]:
        return [
            el("td", {"class": "num"}, self.texts.duration(figures.get(f"p{p}")))
            for p in PERCENTILES
        ]

    def handling(self) -> Html:
        report = self.report
        percentile_headers = [f"p{p}" for p in PERCENTILES]
        overall = [
            el(
                "tr",
                {},
                el("th", {"scope": "row"}, self.t(f"stage.{stage}")),
                el("td", {"class": "num"}, self.texts.number(report.handling[stage]["count"])),
                self.percentile_cells(report.handling[stage]),
            )
            for stage in STAGES
        ]

        def grouped(rows: Sequence[dict[str, Any]], no_group: str) -> list[Html]:
            return [
                el(
                    "tr",
                    {},
                    el("th", {"scope": "row"}, row["name"] or no_group),
                    el("td", {"class": "num"}, self.texts.number(row["alerts"])),
                    [
                        el(
                            "td",
                            {"class": "num"},
                            self.texts.duration(row[stage]["p50"])
                            + " / "
                            + self.texts.duration(row[stage]["p95"]),
                        )
                        for stage in STAGES
                    ],
                )
                for row in rows
            ]

        stage_headers = [self.t(f"stage.{stage}") for stage in STAGES]
        parts: list[Child] = [
            el("h2", {}, self.t("report.handling")),
            el("p", {"class": "note"}, self.t("report.handling-note")),
            self.table(
                self.t("report.handling-all"),
                [self.t("report.col.stage"), self.t("report.col.alerts"), *percentile_headers],
                overall,
            ),
            self.table(
                self.t("report.handling-by-mahalla"),
                [self.t("report.col.mahalla"), self.t("report.col.alerts"), *stage_headers],
                grouped(report.handling_by_mahalla, self.t("alert.no-mahalla")),
                cls="wide",
            ),
        ]
        if report.handling_by_post is not None:
            parts.append(
                self.table(
                    self.t("report.handling-by-post"),
                    [self.t("report.col.post"), self.t("report.col.alerts"), *stage_headers],
                    grouped(report.handling_by_post, self.t("report.no-post")),
                    cls="wide",
                )
            )
        return el("section", {"class": "handling"}, parts)

    def escalations(self) -> Html:
        report = self.report
        rows = [
            el(
                "tr",
                {},
                el("th", {"scope": "row"}, self.alert_link(alert)),
                el("td", {}, alert.mahalla or self.t("alert.no-mahalla")),
                el("td", {}, self.when(alert.opened_at)),
                el("td", {}, self.when(alert.first_escalated_at)),
                el("td", {"class": "num"}, self.texts.number(alert.escalations)),
                el("td", {}, self.taken(alert)),
                el("td", {}, self.badges(alert)),
            )
            for alert in report.escalated
        ]
        headers = ["alert", "mahalla", "opened", "escalated", "times", "taken", "state"]
        return el(
            "section",
            {"class": "escalations"},
            el("h2", {}, self.t("report.escalations", count=report.escalations)),
            self.table(
                self.t("report.escalated-alerts"),
                [self.t(f"report.col.{h}") for h in headers],
                rows,
                cls="wide",
            ),
        )

    def taken(self, alert: ReportAlert) -> str:
        if alert.accepted_at is None:
            return "—"
        return self.t(
            "report.taken-value", post=alert.post or "—", when=self.when(alert.accepted_at)
        )

    def open_at_end(self) -> Html:
        report = self.report
        listed = {alert.id for alert in report.alerts}
        rows = [
            el(
                "tr",
                {},
                el(
                    "th",
                    {"scope": "row"},
                    self.alert_link(alert) if alert.id in listed else self.alert_title(alert),
                ),
                el("td", {}, alert.mahalla or self.t("alert.no-mahalla")),
                el("td", {}, self.when(alert.opened_at)),
                el(
                    "td",
                    {},
                    self.texts.label("state", alert.state_at_end),
                    " ",
                    el("span", {"class": "badge drill"}, self.t("drill.badge"))
                    if alert.drill
                    else None,
                ),
                el("td", {}, alert.post or "—"),
            )
            for alert in report.open_at_end
        ]
        headers = ["alert", "mahalla", "opened", "state-at-end", "post"]
        return el(
            "section",
            {"class": "open-at-end"},
            el("h2", {}, self.t("report.open-at-end")),
            self.table(
                self.t("report.open-at-end-caption"),
                [self.t(f"report.col.{h}") for h in headers],
                rows,
                cls="wide",
            ),
        )

    def timeline_row(self, entry: TimelineEntry, alert: ReportAlert) -> Html:
        if entry.kind == "transition":
            states = {
                "from": self.texts.label("state", entry.from_state) if entry.from_state else "—",
                "to": self.texts.label("state", entry.to_state),
            }
            what: Child = self.t("detail.audit-change", **states)
        elif entry.kind == "note":
            what = self.t("report.timeline-note")
        else:
            what = self.t("report.timeline-acknowledged")
        return el(
            "tr",
            {"class": f"timeline-{entry.kind}"},
            el("td", {"class": "time"}, self.clock(entry.at, alert.opened_at)),
            el("td", {}, entry.actor),
            el("td", {}, what),
            el("td", {"class": "text"}, entry.text),
        )

    def alert_article(self, alert: ReportAlert) -> Html:
        device = alert.device_name or self.texts.label("device-kind", alert.device_kind)
        facts = [
            (self.t("report.opened"), self.when(alert.opened_at)),
            (self.t("report.mahalla"), alert.mahalla or self.t("alert.no-mahalla")),
            (
                self.t("report.device"),
                f"{device} · {alert.device_eui}" + (f" · {alert.street}" if alert.street else ""),
            ),
            (self.t("report.location"), f"{round(alert.lat, 5)}, {round(alert.lon, 5)}"),
            (self.t("report.post"), alert.post or "—"),
            (
                self.t("report.outcome"),
                self.texts.label("outcome", alert.outcome) if alert.outcome else "—",
            ),
        ]
        if alert.close_note:
            facts.append((self.t("report.close-note"), alert.close_note))
        timeline = [self.timeline_row(entry, alert) for entry in alert.timeline]
        headers = [
            self.t("report.col.time"),
            self.t("report.col.who"),
            self.t("report.col.what"),
            self.t("report.col.text"),
        ]
        return el(
            "article",
            {"class": "alert" + (" is-drill" if alert.drill else ""), "id": f"alert-{alert.id}"},
            el("h3", {}, self.alert_title(alert), " ", self.badges(alert)),
            el(
                "dl",
                {"class": "facts inline"},
                [[el("dt", {}, name), el("dd", {}, value)] for name, value in facts],
            ),
            self.table(self.t("report.timeline"), headers, timeline, cls="timeline"),
        )

    def alerts(self) -> Html:
        report = self.report
        parts: list[Child] = [el("h2", {}, self.t("report.alerts", count=report.total_alerts))]
        parts.extend(self.alert_article(alert) for alert in report.alerts)
        if not report.alerts:
            parts.append(el("p", {"class": "empty"}, self.t("report.no-alerts")))
        if report.unlisted:
            parts.append(
                el("p", {"class": "note"}, self.t("report.unlisted", count=report.unlisted))
            )
        return el("section", {"class": "alerts"}, parts)

    def page(self) -> str:
        report = self.report
        title = self.t(
            "report.page-title", since=self.when(report.since), until=self.when(report.until)
        )
        head = el(
            "head",
            {},
            el("meta", {"charset": "utf-8"}),
            el("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}),
            el("title", {}, title),
            el("style", {}, Html(STYLESHEET)),
            el("script", {"type": "module", "src": "/static/report/print.js"}),
        )
        body = el(
            "body",
            {"class": "report"},
            self.toolbar(),
            el(
                "main",
                {},
                self.header(),
                self.summary(),
                self.counts(),
                self.handling(),
                self.escalations(),
                self.open_at_end(),
                self.alerts(),
            ),
            el(
                "footer",
                {},
                self.t("report.footer", when=self.when(report.generated_at), zone=self.zone.key),
            ),
        )
        return "<!doctype html>\n" + render(el("html", {"lang": self.texts.language}, head, body))

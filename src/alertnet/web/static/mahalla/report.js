// The printable monthly report (/mahalla/report?mahalla_id=&month=YYYY-MM): the month's
// incidents and response times, with coverage, offline devices and exemplary figures as they
// stand when printed (GET /api/v1/stats/mahalla-report). The print stylesheet leaves out the
// controls; the browser makes the PDF.

import { api } from "../shared/api.js";
import { $ } from "../shared/dom.js";
import { timeZone } from "../shared/i18n.js";
import { renderCoverage } from "./coverage.js";
import { renderExemplary } from "./exemplary.js";
import { formatWhen } from "./format.js";
import { renderIncidents, renderOffline, renderResponse } from "./panels.js";
import { t } from "./strings.js";

// This month (YYYY-MM) in the configured time zone, as the report's months are.
export function currentMonth() {
  const parts = new Intl.DateTimeFormat("en-CA", { year: "numeric", month: "2-digit", timeZone: timeZone() }).formatToParts(new Date());
  const value = (type) => parts.find((part) => part.type === type).value;
  return `${value("year")}-${value("month")}`;
}

export function reportUrl(mahallaId, month) {
  return `/mahalla/report?mahalla_id=${encodeURIComponent(mahallaId)}&month=${encodeURIComponent(month)}`;
}

export async function loadReport(mahallaId, month) {
  $("#overview").hidden = true;
  $("#report").hidden = false;
  $("#print-report").addEventListener("click", () => window.print());
  $("#back-to-page").href = `/mahalla?mahalla_id=${encodeURIComponent(mahallaId)}`;
  const report = await api(`/api/v1/stats/mahalla-report?mahalla_id=${encodeURIComponent(mahallaId)}&month=${encodeURIComponent(month)}`);
  const title = t("report.title", { mahalla: report.mahalla.name, month: report.month });
  document.title = title;
  $("#report-title").textContent = title;
  $("#report-meta").textContent = t("report.meta", {
    since: formatWhen(report.since),
    until: formatWhen(report.until),
    generated: formatWhen(report.generated_at),
  });
  renderCoverage($("#report-coverage"), report.coverage);
  renderIncidents($("#report-incidents"), report.incidents, { confirmed: report.confirmed_incidents });
  renderResponse($("#report-response"), report.response);
  renderOffline($("#report-offline"), report.offline_public, report.offline_by_street);
  renderExemplary($("#report-exemplary"), report.exemplary);
  return report;
}

// Statistics: handling time per mahalla (a chart of p50/p80/p95 and a table of every stage),
// today and over 7 days, and the alerts of both periods by category and by outcome.

import { api, serverNow } from "../shared/api.js";
import { $, h, svg } from "../shared/dom.js";
import { describeError, formatDuration } from "./format.js";
import { S } from "./state.js";
import { label, t } from "./strings.js";

const API = "/api/v1";
const STAGES = ["to_offer_s", "to_accept_s", "to_on_scene_s", "to_close_s"];
const PERIODS = ["today", "week"];

function daysSinceMidnight() {
  const now = new Date(serverNow());
  const midnight = new Date(now);
  midnight.setHours(0, 0, 0, 0);
  return Math.max((now - midnight) / 86400000, 1 / 1440);
}

export async function loadStats() {
  const today = daysSinceMidnight().toFixed(6);
  try {
    const [handlingToday, handlingWeek, countsToday, countsWeek] = await Promise.all([
      api(`${API}/stats/handling?days=${today}&group_by=mahalla`),
      api(`${API}/stats/handling?days=7&group_by=mahalla`),
      api(`${API}/stats/counts?days=${today}`),
      api(`${API}/stats/counts?days=7`),
    ]);
    S.stats = { handlingToday, handlingWeek, countsToday, countsWeek };
    renderStats();
  } catch (error) {
    $("#stats-chart").replaceChildren(h("p", { class: "error" }, t("stats.load-failed", { error: describeError(error) })));
  }
}

// One entry per mahalla: {name, today, week}, each period's row of the handling statistics.
function statsGroups() {
  const groups = new Map();
  const add = (rows, period) => {
    for (const row of rows) {
      const key = row.id === null ? "none" : String(row.id);
      if (!groups.has(key)) groups.set(key, { name: row.name || t("alert.no-mahalla"), today: null, week: null });
      groups.get(key)[period] = row;
    }
  };
  add(S.stats.handlingToday, "today");
  add(S.stats.handlingWeek, "week");
  return [...groups.values()].sort((a, b) => a.name.localeCompare(b.name));
}

function figuresCell(row, stage) {
  const figures = row && row[stage];
  if (!figures || !figures.count) return h("td", {}, "—");
  const short = (value) => formatDuration(value, { short: true });
  return h("td", { class: "figures" }, `${short(figures.p50)} / ${short(figures.p80)} / ${short(figures.p95)}`);
}

export function renderStats() {
  if (!S.stats) return;
  const groups = statsGroups();
  renderStatsChart(groups, $("#stats-stage").value);
  const rows = [];
  for (const group of groups) {
    for (const period of PERIODS) {
      const row = group[period];
      rows.push(
        h(
          "tr",
          {},
          h("th", { scope: "row" }, group.name),
          h("td", {}, t(`stats.period.${period}`)),
          h("td", {}, row ? String(row.alerts) : "0"),
          STAGES.map((stage) => figuresCell(row, stage)),
        ),
      );
    }
  }
  $("#stats-table tbody").replaceChildren(...rows);
  renderCounts();
}

function renderStatsChart(groups, stage) {
  const container = $("#stats-chart");
  if (groups.length === 0) {
    container.replaceChildren(h("p", { class: "empty" }, t("stats.no-alerts")));
    return;
  }
  const width = 420;
  const labelWidth = 112;
  const valueWidth = 128;
  const barWidth = width - labelWidth - valueWidth - 8;
  const barHeight = 12;
  const groupHeight = 2 * (barHeight + 4) + 10;
  const height = groups.length * groupHeight + 4;
  let max = 1;
  for (const group of groups) {
    for (const row of [group.today, group.week]) {
      const figures = row && row[stage];
      if (figures && figures.count) max = Math.max(max, figures.p95 ?? figures.p50 ?? 0);
    }
  }
  const scale = (seconds) => (Math.max(0, seconds) / max) * barWidth;
  const summary = [];
  const elements = [];
  groups.forEach((group, index) => {
    const top = index * groupHeight + 2;
    const name = group.name.length > 16 ? `${group.name.slice(0, 15)}…` : group.name;
    elements.push(svg("text", { x: 0, y: top + barHeight + 2, class: "chart-label" }, name));
    PERIODS.forEach((period, row) => {
      const y = top + row * (barHeight + 4);
      const figures = group[period] && group[period][stage];
      const periodText = t(`stats.chart-period.${period}`);
      elements.push(svg("text", { x: labelWidth - 4, y: y + barHeight - 2, class: "chart-period", "text-anchor": "end" }, periodText));
      if (!figures || !figures.count) {
        elements.push(svg("text", { x: labelWidth + 2, y: y + barHeight - 2, class: "chart-value muted" }, t("stats.no-data")));
        summary.push(t("stats.summary-no-data", { name: group.name, period: periodText }));
        return;
      }
      const p50 = scale(figures.p50);
      const p95 = scale(figures.p95 ?? figures.p50);
      const p80 = labelWidth + scale(figures.p80 ?? figures.p50);
      const durations = { p50: formatDuration(figures.p50), p95: formatDuration(figures.p95) };
      elements.push(
        svg("rect", { x: labelWidth, y, width: Math.max(p95, 1), height: barHeight, class: `bar-p95 period-${period}` }),
        svg("rect", { x: labelWidth, y, width: Math.max(p50, 1), height: barHeight, class: `bar-p50 period-${period}` }),
        svg("line", { x1: p80, x2: p80, y1: y, y2: y + barHeight, class: "bar-p80" }),
        svg("text", { x: labelWidth + barWidth + 6, y: y + barHeight - 2, class: "chart-value" }, t("stats.bar-value", durations)),
      );
      summary.push(t("stats.summary", { name: group.name, period: periodText, count: figures.count, ...durations }));
    });
  });
  const description = t("stats.chart", { stage: t(`stage.${stage}`), summary: summary.join("; ") });
  container.replaceChildren(
    svg("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": description, class: "stats-chart" }, elements),
  );
}

function countBar(fraction) {
  const bar = h("span", { class: "count-bar" });
  bar.style.width = `${Math.round(fraction * 100)}%`; // CSSOM, which a style-src CSP allows
  return bar;
}

function countsTable(caption, entries, total) {
  return h(
    "table",
    { class: "data-table compact counts-table" },
    h("caption", {}, caption),
    h(
      "tbody",
      {},
      entries.map(([name, count]) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, name),
          h("td", { class: "count-cell" }, String(count)),
          h("td", { class: "count-bar-cell", "aria-hidden": "true" }, countBar(total ? count / total : 0)),
        ),
      ),
    ),
  );
}

function countsColumn(period, counts) {
  const total = t("stats.counts-total", { period, count: counts.total });
  const heading = counts.drills ? t("stats.counts-drills", { total, count: counts.drills }) : total;
  const byCategory = Object.entries(counts.by_category).map(([name, count]) => [label("category", name), count]);
  const byOutcome = Object.entries(counts.by_outcome).map(([name, count]) => [label("outcome", name), count]);
  return h(
    "div",
    { class: "counts-column" },
    h("h4", {}, heading),
    countsTable(t("stats.by-category", { period }), byCategory, counts.total),
    countsTable(t("stats.by-outcome", { period }), byOutcome, counts.total),
  );
}

function renderCounts() {
  const { countsToday, countsWeek } = S.stats;
  $("#stats-counts").replaceChildren(
    countsColumn(t("stats.today"), countsToday),
    countsColumn(t("stats.week"), countsWeek),
  );
}

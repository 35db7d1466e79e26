// The History tab: past and present alerts with the filters of GET /api/v1/alerts (DESIGN §10),
// newest first, a page at a time ("Older alerts" asks for the ids below the last one shown),
// a CSV download of the same filters and a link to the printable shift report. Choosing an
// alert opens its full record (facts, offers, events, audit trail) in the Alert tab.
// (history.js is that record's lower part; this module is the list of alerts.)

import { api } from "../shared/api.js";
import { $, h } from "../shared/dom.js";
import { currentLanguage } from "../shared/i18n.js";
import { select } from "./detail.js";
import { alertTitle, describeError, formatDuration, formatWhen } from "./format.js";
import { S } from "./state.js";
import { label, t } from "./strings.js";
import { categoryIcon, drillBadge, stateBadge } from "./widgets.js";

const API = "/api/v1";
const PAGE_SIZE = 50;
// The shift report covers at most this much (alertnet.reports.api.MAX_PERIOD).
const REPORT_MAX_MS = 31 * 86400 * 1000;
// Excel with a decimal comma (Russian, Uzbek regional settings) splits columns on ";" only.
const SEMICOLON_LANGUAGES = new Set(["ru", "uz"]);
const FIELDS = ["state", "category", "mahalla", "from", "to", "drill", "post", "device", "q"];

const A = {
  filters: null, // the filters of the list shown: {name: value}, empty values left out
  items: [],
  done: false,
  loading: 0, // a token: an answer to an older request is dropped
  started: false,
};

// The form's filters as query parameters (empty ones left out).
function formFilters() {
  const form = $("#archive-filters");
  const filters = {};
  for (const name of FIELDS) {
    const value = (form.elements[name]?.value ?? "").trim();
    if (value !== "") filters[name] = value;
  }
  if (!filters.state) filters.state = "all";
  return filters;
}

function query(filters, extra = {}) {
  return new URLSearchParams({ ...filters, ...extra }).toString();
}

function updateLinks(filters) {
  const csv = new URLSearchParams(filters);
  if (SEMICOLON_LANGUAGES.has(currentLanguage())) csv.set("sep", ";");
  $("#archive-csv").href = `${API}/alerts/export.csv?${csv}`;
  const report = new URLSearchParams();
  const from = Date.parse(filters.from ?? "");
  const to = Date.parse(filters.to ?? "");
  if (filters.from && filters.to && to > from && to - from <= REPORT_MAX_MS) {
    report.set("from", filters.from);
    report.set("to", filters.to);
  }
  const suffix = report.toString();
  $("#archive-report").href = `${API}/reports/shift${suffix ? `?${suffix}` : ""}`;
}

function stageText(alert) {
  const opened = Date.parse(alert.opened_at);
  const parts = [];
  if (alert.accepted_at) {
    parts.push(t("archive.row-accepted", { duration: formatDuration((Date.parse(alert.accepted_at) - opened) / 1000) }));
  }
  if (alert.closed_at) {
    const key = alert.state === "cancelled" ? "archive.row-cancelled" : "archive.row-closed";
    parts.push(t(key, { when: formatWhen(alert.closed_at) }));
  }
  return parts.join(" · ");
}

function row(alert) {
  const facts = [
    alert.mahalla || t("alert.no-mahalla"),
    t("archive.row-opened", { when: formatWhen(alert.opened_at) }),
    alert.post ? t("archive.row-post", { post: alert.post }) : null,
    alert.outcome ? label("outcome", alert.outcome) : null,
  ].filter(Boolean);
  const title = alertTitle(alert);
  return h(
    "li",
    { class: `archive-row cat-${alert.category} state-${alert.state}`, "data-alert-id": alert.id },
    h(
      "button",
      {
        type: "button",
        class: "archive-open",
        "data-key": `archive-${alert.id}`,
        "aria-label": t("archive.open", { title }),
        onclick: () => select(alert.id),
      },
      h("span", { class: "archive-title" }, categoryIcon(alert.category), ` ${title} `, stateBadge(alert.state), alert.drill ? [" ", drillBadge()] : null),
      h("span", { class: "archive-facts" }, facts.join(" · ")),
      h("span", { class: "archive-stages" }, stageText(alert)),
    ),
  );
}

function render() {
  const list = $("#archive-list");
  list.replaceChildren(...A.items.map(row));
  const summary = $("#archive-summary");
  if (A.items.length === 0) summary.textContent = t("archive.empty");
  else summary.textContent = t(A.done ? "archive.count-all" : "archive.count", { count: A.items.length });
  $("#archive-older").hidden = A.done;
  document.body.dataset.archive = A.done ? "complete" : "more";
}

async function loadPage({ append }) {
  const token = ++A.loading;
  const extra = { limit: PAGE_SIZE, order: "newest" };
  if (append && A.items.length) extra.before = A.items[A.items.length - 1].id;
  $("#archive-older").disabled = true;
  if (!append) $("#archive-summary").textContent = t("archive.loading");
  try {
    const page = await api(`${API}/alerts?${query(A.filters, extra)}`);
    if (token !== A.loading) return;
    A.items = append ? [...A.items, ...page] : page;
    A.done = page.length < PAGE_SIZE;
    render();
  } catch (error) {
    if (token !== A.loading) return;
    $("#archive-summary").textContent = t("archive.load-failed", { error: describeError(error) });
    document.body.dataset.archive = "error";
  } finally {
    if (token === A.loading) $("#archive-older").disabled = false;
  }
}

// A new search with what the form says.
export function searchArchive() {
  A.filters = formFilters();
  A.items = [];
  A.done = false;
  updateLinks(A.filters);
  return loadPage({ append: false });
}

function fillMahallas() {
  const select = $("#archive-mahalla");
  const chosen = select.value;
  const options = [h("option", { value: "" }, t("archive.mahalla-all"))];
  for (const mahalla of [...S.mahallas.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    options.push(h("option", { value: mahalla.id }, mahalla.name));
  }
  select.replaceChildren(...options);
  if ([...select.options].some((option) => option.value === chosen)) select.value = chosen;
}

// The tab is shown: the first time, the newest alerts of every state.
export function showArchive() {
  fillMahallas();
  if (!A.started) {
    A.started = true;
    searchArchive();
  }
}

export function wireArchive() {
  const form = $("#archive-filters");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    searchArchive();
  });
  form.addEventListener("reset", () => setTimeout(searchArchive, 0));
  $("#archive-older").addEventListener("click", () => loadPage({ append: true }));
  updateLinks({ state: "all" });
}

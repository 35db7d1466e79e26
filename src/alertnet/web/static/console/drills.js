// The Drills tab (DESIGN §12): a dispatcher starts a training drill (mahalla, number of
// devices, spread in minutes) and reads how each drill went: per alert the time to offer, to
// acceptance and to arrival on scene, per post its answers and the offers it missed. The list
// and the open report refresh while the tab is shown. Observers read their own mahalla's
// drills (the server scopes them) without the start form; choosing a drill alert opens it in
// the Alert tab.

import { api } from "../shared/api.js";
import { $, h } from "../shared/dom.js";
import { select } from "./detail.js";
import { describeError, formatDuration, formatWhen } from "./format.js";
import { S } from "./state.js";
import { label, t } from "./strings.js";
import { dataTable, drillBadge, say } from "./widgets.js";

const API = "/api/v1";
const REFRESH_MS = 5000;
const STAGES = ["to_offer_s", "to_accept_s", "to_on_scene_s"];

const D = {
  drills: [],
  openId: null, // the drill whose report is shown
  report: null,
  timer: null,
  loading: 0, // a token: an answer to an older request is dropped
};

function seconds(value) {
  return value === null || value === undefined ? "—" : formatDuration(value, { short: true });
}

function median(summary) {
  return summary && summary.count ? seconds(summary.p50) : "—";
}

function fillMahallas() {
  const chooser = $("#drill-mahalla");
  const chosen = chooser.value;
  const mahallas = [...S.mahallas.values()].sort((a, b) => a.name.localeCompare(b.name));
  chooser.replaceChildren(...mahallas.map((mahalla) => h("option", { value: mahalla.id }, mahalla.name)));
  if ([...chooser.options].some((option) => option.value === chosen)) chooser.value = chosen;
}

function drillRow(drill) {
  const events = drill.events || {};
  const title = t("drills.row-title", { id: drill.id, mahalla: drill.mahalla });
  return h(
    "li",
    { class: `drill-row drill-${drill.state}${drill.id === D.openId ? " open" : ""}`, "data-drill-id": drill.id },
    h(
      "button",
      {
        type: "button",
        class: "drill-open",
        "data-key": `drill-${drill.id}`,
        "aria-label": t("drills.open", { title }),
        "aria-pressed": String(drill.id === D.openId),
        onclick: () => openReport(drill.id),
      },
      h("span", { class: "drill-title" }, title, " ", h("span", { class: "drill-state" }, label("drill-state", drill.state))),
      h(
        "span",
        { class: "drill-facts" },
        t("drills.row-facts", {
          when: formatWhen(drill.started_at),
          who: drill.started_by,
          created: events.created ?? 0,
          count: drill.device_count,
        }),
      ),
    ),
  );
}

function renderList() {
  const list = $("#drill-list");
  list.replaceChildren(...D.drills.map(drillRow));
  $("#drills-summary").textContent = D.drills.length ? "" : t("drills.empty");
}

function alertCell(row) {
  if (row.alert_id === null || row.alert_id === undefined) return h("td", {}, "—");
  return h(
    "td",
    {},
    h(
      "button",
      {
        type: "button",
        class: "link-button",
        "data-key": `drill-alert-${row.alert_id}`,
        "aria-label": t("drills.open-alert", { id: row.alert_id }),
        onclick: () => select(row.alert_id),
      },
      `#${row.alert_id}`,
    ),
    " ",
    row.alert_state ? label("state", row.alert_state) : "",
  );
}

function alertRow(row) {
  const device = row.device_name ? `${row.device_name} (${row.device_eui})` : row.device_eui;
  const eventState = row.state === "skipped" && row.note ? `${label("drill-event", row.state)}: ${row.note}` : label("drill-event", row.state);
  return h(
    "tr",
    { class: `drill-alert event-${row.state}`, "data-n": row.n },
    h("td", {}, String(row.n)),
    h("td", {}, device, h("br"), h("small", {}, eventState)),
    alertCell(row),
    h("td", {}, row.post || "—"),
    ...STAGES.map((stage) => h("td", { class: "figures", "data-stage": stage }, seconds(row[stage]))),
  );
}

function postRow(post) {
  const misses = post.misses.map((miss) => `#${miss.alert_id}`).join(", ");
  return h(
    "tr",
    { class: "drill-post", "data-post": post.post },
    h("td", {}, post.post),
    h("td", {}, String(post.offers)),
    h("td", { "data-answer": "accepted" }, String(post.accepted)),
    h("td", { "data-answer": "declined" }, String(post.declined)),
    h("td", { "data-answer": "expired" }, misses ? `${post.expired} (${misses})` : String(post.expired)),
    h("td", {}, String(post.withdrawn)),
    h("td", { class: "figures" }, median(post.answer_s)),
  );
}

function renderReport() {
  const box = $("#drill-report");
  const report = D.report;
  if (!report) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  const summary = report.summary;
  const stop =
    S.canAct && report.state === "running"
      ? h("button", { type: "button", id: "drill-stop", class: "action", onclick: () => stopDrill(report.id) }, t("drills.stop"))
      : null;
  const parts = [
    h("h3", {}, drillBadge(), " ", t("drills.report-heading", { id: report.id, mahalla: report.mahalla })),
    h(
      "p",
      { class: "summary" },
      t("drills.report-meta", {
        when: formatWhen(report.started_at),
        who: report.started_by,
        spread: formatDuration(report.spread_s),
        state: label("drill-state", report.state),
      }),
    ),
    h(
      "p",
      { class: "summary", id: "drill-summary" },
      t("drills.report-summary", {
        created: summary.created,
        count: summary.events,
        skipped: summary.skipped,
        never: summary.never_accepted,
        offer: median(summary.to_offer_s),
        accept: median(summary.to_accept_s),
        scene: median(summary.to_on_scene_s),
      }),
    ),
    stop,
    dataTable(
      t("drills.alerts-caption"),
      [
        t("drills.col.n"),
        t("drills.col.device"),
        t("drills.col.alert"),
        t("drills.col.post"),
        t("page.stats-col.to_offer_s"),
        t("page.stats-col.to_accept_s"),
        t("page.stats-col.to_on_scene_s"),
      ],
      report.alerts.map(alertRow),
    ),
    // null for an observer: per-post figures are the console's (the server leaves them out).
    report.posts && dataTable(
      t("drills.posts-caption"),
      [
        t("drills.col.post"),
        t("drills.col.offers"),
        t("drills.col.accepted"),
        t("drills.col.declined"),
        t("drills.col.expired"),
        t("drills.col.withdrawn"),
        t("drills.col.answer"),
      ],
      report.posts.map(postRow),
    ),
  ];
  box.replaceChildren(...parts.filter(Boolean));
  box.hidden = false;
  box.dataset.drillId = String(report.id);
  box.dataset.state = report.state;
}

async function loadList() {
  const token = ++D.loading;
  try {
    const drills = await api(`${API}/drills?limit=50`);
    if (token !== D.loading) return;
    D.drills = drills;
    renderList();
    document.body.dataset.drills = "loaded";
  } catch (error) {
    if (token !== D.loading) return;
    $("#drills-summary").textContent = t("drills.load-failed", { error: describeError(error) });
  }
}

async function loadReport() {
  if (D.openId === null) return;
  const id = D.openId;
  try {
    const report = await api(`${API}/drills/${id}`);
    if (id !== D.openId) return;
    D.report = report;
    renderReport();
  } catch (error) {
    if (id !== D.openId) return;
    say(t("drills.load-failed", { error: describeError(error) }), "error");
  }
}

export function openReport(id) {
  D.openId = id;
  renderList();
  return loadReport();
}

async function refresh() {
  await loadList();
  await loadReport();
}

async function startDrill(event) {
  event.preventDefault();
  const form = $("#drill-form");
  if (!form.reportValidity()) return;
  const button = $("#drill-start");
  const body = {
    mahalla: Number(form.elements.mahalla.value),
    devices: Number(form.elements.devices.value),
    spread_s: Math.round(Number(form.elements.spread.value) * 60),
  };
  button.disabled = true;
  say(t("drills.starting"));
  try {
    const drill = await api(`${API}/drills`, { method: "POST", body });
    say(t("drills.started", { id: drill.id, mahalla: drill.mahalla }));
    D.openId = drill.id;
    D.report = drill;
    renderReport();
    await loadList();
  } catch (error) {
    say(t("drills.start-failed", { error: describeError(error) }), "error");
  } finally {
    button.disabled = false;
  }
}

async function stopDrill(id) {
  try {
    D.report = await api(`${API}/drills/${id}/stop`, { method: "POST" });
    say(t("drills.stopped", { id }));
    renderReport();
    await loadList();
  } catch (error) {
    say(t("drills.stop-failed", { error: describeError(error) }), "error");
  }
}

// The tab is shown: the form (dispatchers only), the list, the open report; kept fresh.
export function showDrills() {
  $("#drill-form").hidden = !S.canAct;
  if (S.canAct) fillMahallas();
  clearInterval(D.timer);
  D.timer = setInterval(refresh, REFRESH_MS);
  return refresh();
}

export function hideDrills() {
  clearInterval(D.timer);
  D.timer = null;
}

export function wireDrills() {
  $("#drill-form").addEventListener("submit", startDrill);
}

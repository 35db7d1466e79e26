// The mahalla page (/mahalla, DESIGN §12) for the mahalla team (observers: their own mahalla)
// and dispatchers (any mahalla, picked from a list): coverage against the target, open alerts,
// incidents of the last 30 days, response times, devices offline, the map of buttons and
// alarms, exemplary streets and houses, and the printable monthly report (/mahalla/report).
// Native ES modules, no build step:
//
//   coverage.js  the coverage bars            panels.js    alerts, incidents, response, offline
//   map.js       the Leaflet map              exemplary.js exemplary streets and houses
//   report.js    the monthly report layout    format.js / strings.js  how figures and texts read
//
// What it shows is what the API answers for the caller: the server cuts an observer's reads
// (DESIGN §10), the page only lays them out. For tests, window.alertnetMahalla holds what the
// page loaded.

import { ApiError, api } from "../shared/api.js";
import { $, h } from "../shared/dom.js";
import { riskBadge } from "../shared/format.js";
import { mountLanguageSwitch } from "../shared/language.js";
import { currentUser, goToLogin, logout } from "../shared/session.js";
import { renderCoverage } from "./coverage.js";
import { renderExemplary } from "./exemplary.js";
import { describeError } from "./format.js";
import { initMap, renderMap } from "./map.js";
import { renderIncidents, renderOffline, renderOpenAlerts, renderResponse } from "./panels.js";
import { currentMonth, loadReport, reportUrl } from "./report.js";
import { applyStrings, label, t } from "./strings.js";

const REPORT_PATH = "/mahalla/report";
const RISK_ORDER = { red: 0, yellow: 1, green: 2 };
const loaded = {};

function say(text, kind = "info") {
  const status = $("#page-status");
  status.textContent = text;
  status.dataset.kind = kind;
}

function here() {
  return location.pathname + location.search;
}

// Runs one panel's load; a failure says so in that panel and leaves the others standing.
async function panel(container, work) {
  try {
    await work();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) throw error;
    container.hidden = false;
    container.replaceChildren(h("p", { class: "panel-error", role: "alert" }, t("page.panel-failed", { error: describeError(error) })));
  }
}

function showMahalla(mahalla) {
  $("#mahalla-name").textContent = mahalla.name;
  $("#mahalla-risk").replaceChildren(riskBadge(mahalla.risk));
  $("#mahalla-area").textContent = [mahalla.district, mahalla.region].filter(Boolean).join(", ");
}

async function loadOverview(mahalla) {
  const id = encodeURIComponent(mahalla.id);
  showMahalla(mahalla);
  await Promise.all([
    panel($("#coverage"), async () => {
      const rows = await api(`/api/v1/stats/coverage?level=mahalla&mahalla_id=${id}`);
      loaded.coverage = rows[0] ?? null;
      renderCoverage($("#coverage"), loaded.coverage);
    }),
    panel($("#open-alerts"), async () => {
      loaded.alerts = await api(`/api/v1/alerts?state=open&mahalla_id=${id}`);
      renderOpenAlerts($("#open-alerts"), $("#alerts-count"), loaded.alerts);
    }),
    panel($("#incidents"), async () => {
      loaded.counts = await api(`/api/v1/stats/counts?days=30&mahalla_id=${id}`);
      renderIncidents($("#incidents"), loaded.counts);
    }),
    panel($("#response"), async () => {
      const rows = await api("/api/v1/stats/handling?days=30&group_by=mahalla");
      loaded.response = rows.find((row) => row.id === mahalla.id) ?? null;
      renderResponse($("#response"), loaded.response);
    }),
    panel($("#offline"), async () => {
      const [devices, streets] = await Promise.all([
        api(`/api/v1/devices?status=offline&mahalla_id=${id}`),
        api(`/api/v1/devices/offline-by-street?mahalla_id=${id}`),
      ]);
      loaded.offline = { devices, streets };
      renderOffline($("#offline"), devices, streets);
    }),
    panel($("#map-note"), async () => {
      loaded.devices = await api(`/api/v1/devices?mahalla_id=${id}`);
      renderMap(loaded.devices, mahalla);
    }),
    panel($("#exemplary"), async () => {
      loaded.exemplary = await api(`/api/v1/stats/exemplary?days=90&mahalla_id=${id}`);
      renderExemplary($("#exemplary"), loaded.exemplary);
    }),
  ]);
  $("#report-form").onsubmit = (event) => {
    event.preventDefault();
    window.open(reportUrl(mahalla.id, $("#report-month").value || currentMonth()), "_blank", "noopener");
  };
}

function wirePicker(mahallas, chosen, onPick) {
  const select = $("#mahalla-select");
  select.replaceChildren(...mahallas.map((mahalla) => h("option", { value: String(mahalla.id) }, mahalla.name)));
  select.value = String(chosen.id);
  select.addEventListener("change", () => {
    const mahalla = mahallas.find((item) => String(item.id) === select.value);
    const url = new URL(location.href);
    url.searchParams.set("mahalla_id", select.value);
    history.replaceState(null, "", url);
    onPick(mahalla);
  });
  $("#pick-wrap").hidden = false;
}

async function loadTileUrl() {
  try {
    const config = await api("/web/config.json");
    return config.tile_url || null;
  } catch {
    return null;
  }
}

async function main() {
  const reportMode = location.pathname === REPORT_PATH;
  document.body.dataset.mode = reportMode ? "report" : "page";
  applyStrings();
  window.addEventListener("alertnet:unauthorized", () => goToLogin(here()));
  $("#logout").addEventListener("click", async () => {
    try {
      await logout();
    } finally {
      goToLogin("/mahalla");
    }
  });
  const me = await currentUser();
  if (me === null) {
    goToLogin(here());
    return;
  }
  mountLanguageSwitch({ signedIn: () => true, onError: (text) => say(text, "error") });
  document.body.dataset.role = me.role;
  $("#whoami-name").textContent = me.username;
  $("#whoami-role").textContent = label("role", me.role);
  if (me.role === "post") {
    $("#overview").replaceChildren(h("p", { class: "banner" }, t("start.post-account")));
    return;
  }
  // Red mahallas first (the programme starts with them), then by name.
  const mahallas = (await api("/api/v1/mahallas")).sort(
    (a, b) => (RISK_ORDER[a.risk] ?? 3) - (RISK_ORDER[b.risk] ?? 3) || a.name.localeCompare(b.name),
  );
  const params = new URLSearchParams(location.search);
  const wanted = me.role === "observer" ? me.mahalla_id : Number(params.get("mahalla_id"));
  const mahalla = mahallas.find((item) => item.id === wanted) ?? mahallas[0];
  if (!mahalla) {
    say(t("start.no-mahalla"), "error");
    return;
  }
  window.alertnetMahalla = { me, mahalla, loaded };
  if (reportMode) {
    showMahalla(mahalla);
    loaded.report = await loadReport(mahalla.id, params.get("month") || currentMonth());
  } else {
    $("#report-month").value = currentMonth();
    if (me.role !== "observer" && mahallas.length > 1) {
      wirePicker(mahallas, mahalla, (picked) => {
        window.alertnetMahalla.mahalla = picked;
        loadOverview(picked).catch((error) => say(t("start.failed", { error: describeError(error) }), "error"));
      });
    }
    initMap(await loadTileUrl());
    await loadOverview(mahalla);
  }
  document.body.dataset.ready = "true";
}

main().catch((error) => {
  say(t("start.failed", { error: describeError(error) }), "error");
  document.body.dataset.ready = "failed";
  throw error;
});

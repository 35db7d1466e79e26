// The mahalla page's smaller panels: open alerts, incidents by category, response times and
// devices offline. Each takes what the API answered (already cut by the caller's scope: an
// observer gets public buttons by name and households and businesses only as counts per
// street, DESIGN §10) and draws it into its container.

import { h } from "../shared/dom.js";
import { categoryName, formatDuration, formatWhen, table } from "./format.js";
import { formatNumber, label, t } from "./strings.js";

// Police categories first; device troubles are the console's business.
const CATEGORIES = ["panic", "fire", "medical", "intrusion", "tamper"];

export function renderOpenAlerts(list, count, alerts) {
  count.textContent = `(${formatNumber(alerts.length)})`;
  if (alerts.length === 0) {
    list.replaceChildren(h("li", { class: "muted" }, t("alerts.none")));
    return;
  }
  list.replaceChildren(
    ...alerts.map((alert) => {
      const where = alert.device_name || (alert.premises && alert.premises.street) || t("alerts.no-street");
      return h(
        "li",
        { class: `alert-row state-${alert.state}`, "data-alert-id": String(alert.id) },
        h("strong", {}, t("alerts.number", { id: alert.id }), " ", categoryName(alert.category)),
        alert.drill ? h("span", { class: "drill-badge" }, t("alerts.drill")) : null,
        " · ",
        label("state", alert.state),
        " · ",
        where,
        " · ",
        h("span", { class: "muted" }, t("alerts.opened", { when: formatWhen(alert.opened_at) })),
      );
    }),
  );
}

// counts: GET /api/v1/stats/counts (or the report's "incidents").
export function renderIncidents(container, counts, { confirmed = null } = {}) {
  const rows = CATEGORIES.map((category) => [categoryName(category), formatNumber(counts.by_category[category] ?? 0)]);
  const police = CATEGORIES.reduce((sum, category) => sum + (counts.by_category[category] ?? 0), 0);
  const outcomes = Object.entries(counts.by_outcome || {})
    .filter(([outcome]) => outcome !== "resolved")
    .map(([outcome, count]) => t("incidents.outcome", { outcome: label("outcome", outcome), count }));
  const parts = [
    table([t("incidents.category"), t("incidents.count")], rows, { className: "data-table compact" }),
    h("p", {}, t("incidents.total", { count: police })),
    confirmed === null ? null : h("p", {}, t("incidents.confirmed", { count: confirmed })),
    h("p", { class: "muted" }, t("incidents.drills", { count: counts.drills ?? 0 })),
    outcomes.length ? h("p", { class: "muted" }, t("incidents.outcomes", { list: outcomes.join(", ") })) : null,
  ];
  container.replaceChildren(...parts.filter(Boolean));
}

// stages: {alerts, to_accept_s: {count, p50, p80}, to_on_scene_s: {…}} of one mahalla (or null).
export function renderResponse(container, stages) {
  if (!stages || !stages.alerts || !stages.to_accept_s || !stages.to_on_scene_s) {
    container.replaceChildren(h("p", { class: "muted" }, t("response.none")));
    return;
  }
  const row = (key) => [
    t(`response.${key}`),
    formatDuration(stages[key].p50),
    formatDuration(stages[key].p80),
    formatNumber(stages[key].count),
  ];
  container.replaceChildren(
    table(
      [t("response.stage"), t("response.p50"), t("response.p80"), t("response.count")],
      [row("to_accept_s"), row("to_on_scene_s")],
      { className: "data-table compact" },
    ),
  );
}

// devices: the offline devices the scope lists; streets: offline alarms counted per street.
export function renderOffline(container, devices, streets) {
  const listed = devices.length
    ? h(
        "ul",
        { class: "plain-list offline-list" },
        devices.map((device) =>
          h(
            "li",
            { "data-eui": device.eui },
            h("strong", {}, device.name || device.eui),
            " · ",
            label("kind", device.kind),
            " · ",
            t("offline.last-seen", { when: formatWhen(device.last_seen_at) }),
          ),
        ),
      )
    : h("p", { class: "muted" }, t("offline.no-public"));
  const counted = streets.length
    ? table(
        [t("offline.street"), t("offline.alarms")],
        streets.map((row) => [row.street || t("offline.no-street"), formatNumber(row.offline)]),
        { caption: t("offline.by-street"), className: "data-table compact offline-streets" },
      )
    : h("p", { class: "muted" }, t("offline.no-private"));
  container.replaceChildren(h("h3", {}, t("offline.public")), listed, counted);
}

// The record under an alert's detail: its offers, the device events with every reception,
// and the audit trail of state changes.

import { h } from "../shared/dom.js";
import { formatClock, formatDistance } from "../shared/format.js";
import { countdownText, formatWhen } from "./format.js";
import { label, t, tParts } from "./strings.js";
import { dataTable, drillBadge } from "./widgets.js";

const OFFER_COLUMNS = ["post", "state", "offered", "decided", "distance", "reason"];
const EVENT_COLUMNS = ["counter", "event", "happened", "received", "receptions", "signal"];
const AUDIT_COLUMNS = ["when", "who", "change", "why"];

const headers = (table, columns) => columns.map((column) => t(`detail.${table}-col.${column}`));

export function offersSection(detail) {
  const rows = detail.offers.map((offer) =>
    h(
      "tr",
      { class: `offer-row offer-${offer.state}` },
      h("td", {}, offer.post || t("detail.post-id", { id: offer.post_id })),
      h("td", {}, label("offer-state", offer.state)),
      h("td", {}, formatWhen(offer.offered_at)),
      h(
        "td",
        {},
        offer.state === "pending"
          ? h("span", { "data-deadline": offer.deadline_at }, countdownText(offer.deadline_at))
          : formatWhen(offer.decided_at),
      ),
      h("td", {}, formatDistance(offer.distance_m)),
      h("td", {}, offer.reason || ""),
    ),
  );
  return h("section", { class: "detail-section" }, dataTable(t("detail.offers"), headers("offers", OFFER_COLUMNS), rows));
}

function receptionText(reception) {
  const parts = [
    reception.gateway_id
      ? t("detail.via", { transport: reception.transport, gateway: reception.gateway_id })
      : reception.transport,
  ];
  if (reception.rssi !== null) parts.push(t("detail.rssi", { rssi: reception.rssi }));
  if (reception.snr !== null) parts.push(t("detail.snr", { snr: reception.snr }));
  parts.push(formatClock(reception.received_at));
  return parts.join(" · ");
}

// "2× " and, when the receptions are known, a disclosure listing them.
function receptionsCell(event) {
  let details = "";
  if (event.receptions.length) {
    const heard = event.gateways.length
      ? event.gateways.join(", ")
      : event.receptions.map((reception) => reception.transport).join(", ");
    details = h(
      "details",
      {},
      h("summary", {}, heard),
      h("ul", { class: "receptions" }, event.receptions.map((reception) => h("li", {}, receptionText(reception)))),
    );
  }
  return tParts("detail.receptions", { count: event.reception_count, details });
}

// What a source said beyond the event code: an alarm panel's code, zone, area (partition),
// user and clock skew (DC-09, DESIGN §9.1), e.g. "E130 · zone 015 · area 01".
const SOURCE_DETAILS = [
  ["code", "detail.source-code"],
  ["zone", "detail.source-zone"],
  ["partition", "detail.source-partition"],
  ["user", "detail.source-user"],
  ["clock_skew_s", "detail.source-clock-skew"],
];

function sourceDetails(event) {
  const details = event.details || {};
  const parts = SOURCE_DETAILS.filter(([name]) => details[name] !== undefined && details[name] !== null).map(
    ([name, key]) => t(key, { value: String(details[name]) }),
  );
  return parts.length ? h("div", { class: "event-source" }, parts.join(" · ")) : null;
}

export function eventsSection(detail) {
  const rows = detail.events.map((event) => {
    const cancel = event.code === "cancel";
    return h(
      "tr",
      { class: cancel ? "event-row event-cancel" : "event-row" },
      h("td", {}, event.counter === null ? "—" : String(event.counter)),
      h(
        "td",
        {},
        cancel ? h("strong", {}, t("detail.cancel-pressed")) : label("event", event.code),
        event.drill ? [" ", drillBadge()] : null,
        sourceDetails(event),
      ),
      h("td", {}, formatWhen(event.occurred_at)),
      h("td", {}, formatWhen(event.received_at)),
      h("td", {}, receptionsCell(event)),
      h(
        "td",
        {},
        event.best_rssi !== null ? t("detail.best-signal", { rssi: event.best_rssi, snr: event.best_snr ?? "—" }) : "—",
      ),
    );
  });
  return h("section", { class: "detail-section" }, dataTable(t("detail.events"), headers("events", EVENT_COLUMNS), rows));
}

export function auditSection(detail) {
  const rows = detail.audit.map((entry) =>
    h(
      "tr",
      { class: `audit-row audit-to-${entry.to}` },
      h("td", {}, formatWhen(entry.at)),
      h("td", { class: "audit-actor" }, entry.actor),
      h("td", {}, t("detail.audit-change", { from: entry.from ? label("state", entry.from) : "—", to: label("state", entry.to) })),
      h("td", {}, entry.reason || ""),
    ),
  );
  return h("section", { class: "detail-section" }, dataTable(t("detail.audit"), headers("audit", AUDIT_COLUMNS), rows));
}

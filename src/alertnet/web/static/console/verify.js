// A camera alert waiting for a dispatcher (DESIGN §9.3): what each camera event saw, with its
// Frigate snapshot link, and the two answers — Confirm (dispatched like an intrusion) and
// Dismiss (a false alarm; refused with new_evidence when another event merged in meanwhile,
// so nobody dismisses a person they have not looked at). Overdue verify alerts ring like
// escalations (state.js: verifyOverdue); the clock below redraws when one becomes due.

import { api } from "../shared/api.js";
import { h } from "../shared/dom.js";
import { describeError, formatWhen } from "./format.js";
import { scheduleRender } from "./render.js";
import { S, upsertAlert, verifyOverdue } from "./state.js";
import { t } from "./strings.js";
import { say } from "./widgets.js";

const events = new Map(); // "<alert id>:<last event id>" → the camera events then

function eventItem(event) {
  const zones = event.zones && event.zones.length ? event.zones.join(", ") : t("verify.no-zone");
  const score = typeof event.score === "number" ? ` · ${Math.round(event.score * 100)} %` : "";
  return h(
    "li",
    { class: "camera-event", "data-event-id": String(event.id) },
    h("span", { class: "camera-what" }, t("verify.event", { label: event.label || "?", zones }), score),
    " ",
    h("span", { class: "camera-when" }, formatWhen(event.received_at)),
    " ",
    event.snapshot
      ? h("a", { href: event.snapshot, target: "_blank", rel: "noopener", class: "snapshot-link" }, t("verify.snapshot"))
      : h("span", { class: "no-snapshot" }, t("verify.no-snapshot")),
  );
}

function fill(list, found) {
  list.replaceChildren(...(found.length ? found.map(eventItem) : [h("li", { class: "empty" }, t("verify.no-events"))]));
}

async function loadEvents(detail, list) {
  const key = `${detail.id}:${detail.last_event_id}`;
  if (events.has(key)) {
    fill(list, events.get(key));
    return;
  }
  list.replaceChildren(h("li", { class: "empty" }, t("verify.loading")));
  try {
    const found = await api(`/api/v1/alerts/${detail.id}/camera-events`);
    events.set(key, found);
    fill(list, found);
  } catch (error) {
    list.replaceChildren(h("li", { class: "error" }, t("verify.load-failed", { error: describeError(error) })));
  }
}

async function answer(detail, path, body, done, refresh) {
  try {
    const view = await api(`/api/v1/alerts/${detail.id}/${path}`, { method: "POST", body });
    upsertAlert(view);
    scheduleRender();
    say(t(done, { id: detail.id }), "success");
  } catch (error) {
    if (error.code === "new_evidence") say(t("verify.new-evidence", { id: detail.id }), "error");
    else say(t("verify.failed", { error: describeError(error) }), "error");
  }
  await refresh();
}

// The detail's verify section: the banner, the events with snapshot links, the two answers.
export function verifySection(detail, refresh) {
  // Snapshots show people: only dispatchers and admins get them (the API says so too).
  const list = S.canAct ? h("ol", { class: "camera-events", "aria-label": t("verify.events-label") }) : null;
  if (list) loadEvents(detail, list);
  const overdue = verifyOverdue(detail);
  const buttons = S.canAct
    ? h(
        "div",
        { class: "actions verify-actions", role: "group", "aria-label": t("verify.group") },
        h(
          "button",
          {
            type: "button",
            class: "action confirm",
            "data-key": "verify-confirm",
            onclick: (event) => {
              event.currentTarget.disabled = true;
              answer(detail, "confirm", undefined, "verify.confirmed", refresh);
            },
          },
          t("verify.confirm"),
        ),
        h(
          "button",
          {
            type: "button",
            class: "action dismiss danger",
            "data-key": "verify-dismiss",
            onclick: (event) => {
              event.currentTarget.disabled = true;
              answer(detail, "dismiss", { last_event_id: detail.last_event_id }, "verify.dismissed", refresh);
            },
          },
          t("verify.dismiss"),
        ),
      )
    : null;
  return h(
    "section",
    { class: `detail-section verify ${overdue ? "overdue" : ""}`, "data-verify": overdue ? "overdue" : "waiting" },
    h("h3", {}, t("verify.heading")),
    h("p", { class: "banner verify-banner" }, t(overdue ? "verify.overdue-banner" : "verify.banner")),
    list,
    buttons,
  );
}

// Redraw (and so ring) the moment a verify alert becomes overdue, not at the next feed message.
let dueSeen = new Set();
setInterval(() => {
  const due = new Set([...S.alerts.values()].filter((alert) => verifyOverdue(alert)).map((alert) => alert.id));
  if ([...due].some((id) => !dueSeen.has(id))) scheduleRender();
  dueSeen = due;
}, 1000);

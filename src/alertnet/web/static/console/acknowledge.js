// Acknowledging an alert, shared by every dispatcher (DESIGN §10): the server records who and
// when and tells every console (alert.updated), so one dispatcher's acknowledgement silences
// the escalation alarm on all of them. An alert that escalates again rings again until it is
// acknowledged again (state.js: isAcknowledged). Also the acknowledgement line of the detail.

import { api } from "../shared/api.js";
import { h } from "../shared/dom.js";
import { describeError, formatWhen } from "./format.js";
import { scheduleRender } from "./render.js";
import { OPEN_STATES, S, isAcknowledged, upsertAlert } from "./state.js";
import { t } from "./strings.js";
import { say } from "./widgets.js";

// Acknowledge the alerts ``ids`` on the server; says what happened (and who was first).
export async function acknowledgeAlerts(ids) {
  const results = await Promise.allSettled(
    ids.map((id) => api(`/api/v1/alerts/${id}/acknowledge`, { method: "POST" })),
  );
  const failed = results.find((result) => result.status === "rejected");
  const views = results.filter((result) => result.status === "fulfilled").map((result) => result.value);
  for (const view of views) upsertAlert(view);
  scheduleRender();
  if (failed) {
    say(t("ack.failed", { error: describeError(failed.reason) }), "error");
    return;
  }
  const byOthers = views.filter((view) => S.me && view.acknowledged_by !== S.me.username);
  if (views.length === 1 && byOthers.length === 1) {
    say(t("ack.already", { id: views[0].id, who: byOthers[0].acknowledged_by }));
  } else if (views.length === 1) {
    say(t("alarm.acknowledged", { id: views[0].id }), "success");
  } else if (views.length > 1) {
    say(t("alarm.acknowledged-many", { count: views.length }), "success");
  }
}

// "Acknowledged by disp-a at 14:02" (or not yet), with the button for a dispatcher.
export function acknowledgementSection(detail, refresh) {
  const open = OPEN_STATES.has(detail.state);
  const done = isAcknowledged(detail);
  let text;
  if (!detail.acknowledged_at) text = t("ack.none");
  else if (done || !open) text = t("ack.by", { who: detail.acknowledged_by, when: formatWhen(detail.acknowledged_at) });
  else text = t("ack.stale", { who: detail.acknowledged_by, when: formatWhen(detail.acknowledged_at) });
  const button =
    S.canAct && open && !done
      ? h(
          "button",
          {
            type: "button",
            class: "action ack",
            "data-key": "detail-ack",
            "aria-label": t("ack.button-label", { id: detail.id }),
            onclick: async (event) => {
              event.currentTarget.disabled = true;
              await acknowledgeAlerts([detail.id]);
              await refresh();
            },
          },
          t("ack.button"),
        )
      : null;
  return h(
    "section",
    { class: `detail-section acknowledgement ${done ? "acknowledged" : "unacknowledged"}`, "data-acknowledged": String(done) },
    h("h3", {}, t("ack.heading")),
    h("p", { class: "ack-state" }, text, " ", button),
  );
}

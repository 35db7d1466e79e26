// What a dispatcher does to an open alert: assign it to a post from the nearest-first list,
// withdraw a pending offer, cancel it with a reason (acknowledging it: acknowledge.js). Forms
// open in a drawer under the action bar; after a change the detail is reloaded by refresh.

import { api } from "../shared/api.js";
import { $, h } from "../shared/dom.js";
import { formatDistance } from "../shared/format.js";
import { candidateNotes, loadEligibility, offDutyList } from "./eligibility.js";
import { describeError } from "./format.js";
import { label, t } from "./strings.js";
import { say } from "./widgets.js";

const API = "/api/v1";

// The buttons for an open alert; refresh() reloads the detail after an action succeeded.
export function actionBar(detail, pending, refresh) {
  const buttons = [];
  // A camera alert in verify is confirmed or dismissed first (verify.js), never assigned.
  if (detail.category !== "trouble" && detail.state !== "verify") {
    buttons.push(
      h(
        "button",
        {
          type: "button",
          class: "action assign",
          "data-key": "assign",
          "aria-expanded": String(Boolean($("#detail-drawer.candidates"))),
          onclick: () => openCandidates(detail.id, refresh),
        },
        t("actions.assign"),
      ),
    );
  }
  if (pending) {
    buttons.push(
      h(
        "button",
        { type: "button", class: "action withdraw", "data-key": "withdraw", onclick: () => withdraw(pending, refresh) },
        t("actions.withdraw", { post: pending.post }),
      ),
    );
  }
  buttons.push(
    h("button", { type: "button", class: "action cancel danger", "data-key": "cancel", onclick: () => openCancel(detail.id, refresh) }, t("actions.cancel")),
  );
  return h("div", { class: "actions", role: "group", "aria-label": t("actions.group") }, buttons);
}

export function closeDrawer() {
  const drawer = $("#detail-drawer");
  if (drawer) drawer.remove();
}

function drawer(kind, alertId, ...children) {
  closeDrawer();
  const element = h(
    "div",
    {
      id: "detail-drawer",
      class: `drawer ${kind}`,
      "data-alert-id": alertId,
      onkeydown: (event) => {
        if (event.key === "Escape") {
          closeDrawer();
          $('[data-key="assign"], [data-key="cancel"]')?.focus();
        }
      },
    },
    ...children,
  );
  const actions = $("#detail .actions");
  if (actions) actions.after(element);
  else $("#detail").append(element);
  return element;
}

function closeButton(text) {
  return h("button", { type: "button", class: "close-drawer", "data-key": "close-drawer", onclick: () => closeDrawer() }, text);
}

async function openCandidates(alertId, refresh) {
  const panel = drawer("candidates", alertId, h("h3", {}, t("assign.heading")), h("p", { class: "empty" }, t("assign.loading")));
  let candidates;
  let offDuty;
  try {
    ({ onDuty: candidates, offDuty } = await loadEligibility(api, alertId));
  } catch (error) {
    panel.replaceChildren(h("p", { class: "error" }, t("assign.list-failed", { error: describeError(error) })));
    return;
  }
  if (!panel.isConnected) return;
  const items = candidates.map((post) => {
    const { eligible, notes } = candidateNotes(post);
    const distance = formatDistance(post.distance_m);
    return h(
      "li",
      { class: `candidate ${eligible ? "eligible" : "ineligible"}`, "data-post-id": post.id, "data-reason": post.reason },
      h("span", { class: "candidate-name" }, post.callsign),
      h("span", { class: "candidate-distance" }, distance),
      h("span", { class: "candidate-status" }, label("post-status", post.status)),
      h("span", { class: "candidate-notes" }, notes),
      h(
        "button",
        {
          type: "button",
          class: "action assign-to",
          "data-key": `assign-${post.id}`,
          "aria-label": t("assign.button-label", { id: alertId, post: post.callsign, distance }),
          onclick: (event) => assign(alertId, post, event.currentTarget, refresh),
        },
        t("assign.button"),
      ),
    );
  });
  panel.replaceChildren(
    h("h3", { id: "candidates-heading" }, t("assign.heading-alert", { id: alertId })),
    items.length
      ? h("ol", { class: "candidates", "aria-labelledby": "candidates-heading" }, items)
      : h("p", { class: "empty" }, t("assign.no-post")),
    offDutyList(offDuty),
    closeButton(t("assign.close")),
  );
  const first = $("button.assign-to", panel);
  if (first) first.focus();
}

async function assign(alertId, post, button, refresh) {
  button.disabled = true;
  say(t("assign.working", { id: alertId, post: post.callsign }));
  try {
    await api(`${API}/alerts/${alertId}/assign`, { method: "POST", body: { post_id: post.id } });
    say(t("assign.done", { id: alertId, post: post.callsign }), "success");
    closeDrawer();
    await refresh();
    $('[data-key="assign"]')?.focus();
  } catch (error) {
    button.disabled = false;
    say(t("assign.failed", { post: post.callsign, error: describeError(error) }), "error");
  }
}

async function withdraw(offer, refresh) {
  say(t("withdraw.working", { post: offer.post }));
  try {
    await api(`${API}/offers/${offer.id}/withdraw`, { method: "POST" });
    say(t("withdraw.done", { post: offer.post, id: offer.alert_id }), "success");
    await refresh();
  } catch (error) {
    say(t("withdraw.failed", { error: describeError(error) }), "error");
  }
}

function openCancel(alertId, refresh) {
  const reason = h("textarea", { id: "cancel-reason", name: "reason", rows: 2, required: true, maxlength: 500, "data-key": "cancel-reason" });
  const form = h(
    "form",
    {
      class: "cancel-form",
      onsubmit: (event) => {
        event.preventDefault();
        cancelAlert(alertId, reason.value.trim(), form, refresh);
      },
    },
    h("label", { for: "cancel-reason" }, t("cancel.reason", { id: alertId })),
    reason,
    h(
      "div",
      { class: "form-buttons" },
      h("button", { type: "submit", class: "action danger confirm-cancel", "data-key": "confirm-cancel" }, t("cancel.confirm", { id: alertId })),
      closeButton(t("cancel.keep")),
    ),
  );
  drawer("cancelling", alertId, form);
  reason.focus();
}

async function cancelAlert(alertId, reason, form, refresh) {
  if (!reason) {
    say(t("cancel.no-reason"), "error");
    $("#cancel-reason")?.focus();
    return;
  }
  for (const button of form.querySelectorAll("button")) button.disabled = true;
  try {
    await api(`${API}/alerts/${alertId}/cancel`, { method: "POST", body: { reason } });
    say(t("cancel.done", { id: alertId }), "success");
    closeDrawer();
    await refresh();
    $("#detail-title")?.focus();
  } catch (error) {
    for (const button of form.querySelectorAll("button")) button.disabled = false;
    say(t("cancel.failed", { error: describeError(error) }), "error");
  }
}

// The alert queue: escalated first, then by priority and age. Rows are kept per alert and
// redrawn only when what they show changed, so focus and clicks survive live updates.

import { $, h } from "../shared/dom.js";
import { riskBadge } from "../shared/format.js";
import { acknowledge } from "./alarm.js";
import { select } from "./detail.js";
import { categoryLabel, countdownText, formatWhen, since, troubleText } from "./format.js";
import { S, isAcknowledged } from "./state.js";
import { t, tParts } from "./strings.js";
import { categoryIcon, drillBadge, stateBadge } from "./widgets.js";

const queueRows = new Map(); // alert id → <li>

function queueOrder(a, b) {
  return (
    (b.state === "escalated") - (a.state === "escalated") ||
    b.priority - a.priority ||
    Date.parse(a.opened_at) - Date.parse(b.opened_at) ||
    a.id - b.id
  );
}

function shownInQueue(alert) {
  if (S.queueFilter === "police") return alert.category !== "trouble";
  if (S.queueFilter === "trouble") return alert.category === "trouble";
  return true;
}

function rowParts(alert) {
  const offer = S.offers.get(alert.id);
  const parts = [
    h("span", { class: "cat" }, categoryIcon(alert.category), h("span", { class: "cat-label" }, categoryLabel(alert.category))),
    h("span", { class: "prio", title: t("queue.priority-title") }, t("queue.priority", { priority: alert.priority })),
    stateBadge(alert.state),
  ];
  if (alert.drill) parts.push(drillBadge());
  parts.push(
    h(
      "span",
      { class: "where" },
      h("span", { class: "mahalla" }, alert.mahalla || t("alert.no-mahalla")),
      " ",
      riskBadge(alert.risk),
    ),
    h(
      "span",
      { class: "age", title: t("queue.opened-title", { when: formatWhen(alert.opened_at) }) },
      tParts("queue.opened-ago", { age: h("span", { "data-since": alert.opened_at }, since(alert.opened_at)) }),
    ),
  );
  if (alert.category === "trouble" && alert.trouble) {
    parts.push(h("span", { class: "trouble-list" }, troubleText(alert.trouble.split(","))));
  }
  if (alert.press_count > 1) parts.push(h("span", { class: "presses" }, t("queue.presses", { count: alert.press_count })));
  if (alert.cancel_count > 0) parts.push(h("span", { class: "cancels" }, t("queue.cancels", { count: alert.cancel_count })));
  if (offer) {
    const countdown = h("span", { class: "countdown", "data-deadline": offer.deadline_at }, countdownText(offer.deadline_at));
    parts.push(h("span", { class: "offer" }, tParts("queue.offered-to", { post: offer.post, countdown })));
  } else if (alert.post && (alert.state === "accepted" || alert.state === "on_scene")) {
    const held = alert.state === "accepted" ? "queue.on-the-way" : "queue.on-scene";
    parts.push(h("span", { class: "offer held" }, t(held, { post: alert.post })));
  }
  return parts;
}

function createRow(alert) {
  const main = h("button", {
    type: "button",
    class: "row-main",
    "data-key": `row-${alert.id}`,
    onclick: () => select(alert.id, { pan: true }),
  });
  const li = h("li", { class: "alert-row", "data-alert-id": alert.id }, main);
  if (S.canAct) {
    li.append(
      h(
        "button",
        {
          type: "button",
          class: "action ack",
          "data-key": `ack-${alert.id}`,
          "aria-label": t("queue.ack-label", { id: alert.id }),
          onclick: () => acknowledge([alert.id]),
        },
        t("queue.ack"),
      ),
    );
  }
  return li;
}

function updateRow(li, alert) {
  const unacknowledged = alert.state === "escalated" && !isAcknowledged(alert);
  li.className = [
    "alert-row",
    `cat-${alert.category}`,
    `state-${alert.state}`,
    alert.drill ? "drill" : "",
    unacknowledged ? "unacknowledged" : "",
    alert.id === S.selectedId ? "selected" : "",
  ]
    .filter(Boolean)
    .join(" ");
  li.dataset.state = alert.state;
  const main = $(".row-main", li);
  if (alert.id === S.selectedId) main.setAttribute("aria-current", "true");
  else main.removeAttribute("aria-current");
  const offer = S.offers.get(alert.id);
  const signature = JSON.stringify([alert, offer?.id ?? null, offer?.deadline_at ?? null]);
  if (li.dataset.signature !== signature) {
    li.dataset.signature = signature;
    main.replaceChildren(...rowParts(alert));
  }
  const ack = $(".ack", li);
  if (ack) ack.hidden = !unacknowledged;
}

export function renderQueue() {
  const list = $("#queue-list");
  const alerts = [...S.alerts.values()].filter(shownInQueue).sort(queueOrder);
  const wanted = new Set(alerts.map((alert) => alert.id));
  for (const [id, li] of queueRows) {
    if (!wanted.has(id)) {
      li.remove();
      queueRows.delete(id);
    }
  }
  const rows = alerts.map((alert) => {
    let li = queueRows.get(alert.id);
    if (!li) {
      li = createRow(alert);
      queueRows.set(alert.id, li);
    }
    updateRow(li, alert);
    return li;
  });
  const inOrder = rows.length === list.children.length && rows.every((li, index) => list.children[index] === li);
  if (!inOrder) {
    const active = document.activeElement;
    list.append(...rows);
    if (active && list.contains(active) && document.activeElement !== active) active.focus();
  }
  const escalated = alerts.filter((alert) => alert.state === "escalated").length;
  $("#queue-count").textContent = escalated
    ? t("queue.count-escalated", { count: alerts.length, escalated })
    : t("queue.count", { count: alerts.length });
  $("#queue-empty").hidden = alerts.length > 0 || !S.loaded;
}

// Once a second: the ages and countdowns on screen move on without a redraw.
export function tick() {
  for (const element of document.querySelectorAll("[data-since]")) {
    element.textContent = since(element.dataset.since);
  }
  for (const element of document.querySelectorAll("[data-deadline]")) {
    element.textContent = countdownText(element.dataset.deadline);
  }
}

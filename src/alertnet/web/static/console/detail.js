// The selected alert in full: title, banners (drill, escalated, cancel pressed), the facts,
// the action bar for dispatchers, and its offers, events and audit below.

import { api } from "../shared/api.js";
import { $, h } from "../shared/dom.js";
import { formatDistance, riskBadge } from "../shared/format.js";
import { actionBar, closeDrawer } from "./actions.js";
import { alertTitle, countdownText, describeError, formatWhen, since, troubleText } from "./format.js";
import { auditSection, eventsSection, offersSection } from "./history.js";
import { panToAlert } from "./map.js";
import { premisesSections, silentBanners } from "./premises.js";
import { scheduleRender } from "./render.js";
import { OPEN_STATES, S } from "./state.js";
import { label, t, tParts } from "./strings.js";
import { showTab } from "./tabs.js";
import { verifySection } from "./verify.js";
import { categoryIcon, drillBadge, rebuildKeepingFocus, stateBadge } from "./widgets.js";
import { workflowSections } from "./workflow.js";

let detailTimer = null;

export function scheduleDetailRefresh() {
  clearTimeout(detailTimer);
  detailTimer = setTimeout(() => loadDetail(), 150);
}

export async function select(id, { pan = false } = {}) {
  S.selectedId = id;
  showTab("detail");
  scheduleRender();
  if (pan) panToAlert(id);
  if (S.detail && S.detail.id !== id) {
    closeDrawer();
    $("#detail").replaceChildren(h("p", { class: "empty" }, t("detail.loading", { id })));
  }
  await loadDetail();
}

async function loadDetail() {
  const id = S.selectedId;
  if (id === null) return;
  const token = ++S.detailToken;
  try {
    const detail = await api(`/api/v1/alerts/${id}`);
    if (token !== S.detailToken) return;
    S.detail = detail;
    renderDetail();
  } catch (error) {
    if (token !== S.detailToken) return;
    $("#detail").replaceChildren(h("p", { class: "error" }, t("detail.load-failed", { id, error: describeError(error) })));
  }
}

function row(key, ...value) {
  return [h("dt", {}, t(key)), h("dd", {}, ...value)];
}

function banners(detail) {
  const shown = [];
  if (detail.drill) shown.push(h("p", { class: "banner drill-banner" }, t("detail.drill-banner")));
  if (detail.state === "escalated") shown.push(h("p", { class: "banner escalated-banner" }, t("detail.escalated-banner")));
  if (detail.cancel_count > 0) {
    shown.push(h("p", { class: "banner cancel-banner" }, t("detail.cancel-banner", { count: detail.cancel_count })));
  }
  return shown;
}

function facts(detail, pending) {
  const age = h("span", { "data-since": detail.opened_at }, since(detail.opened_at));
  const presses = detail.press_count >= 3 ? t("detail.presses-raised", { count: detail.press_count }) : String(detail.press_count);
  return h(
    "dl",
    { class: "facts" },
    row("detail.priority", String(detail.priority)),
    row("detail.opened", tParts("detail.opened-value", { when: formatWhen(detail.opened_at), age })),
    row("detail.mahalla", detail.mahalla || t("detail.no-mahalla"), " ", riskBadge(detail.risk)),
    row("detail.device", h("code", {}, detail.device_eui), ` ${label("device-kind", detail.device_kind)}`),
    row("detail.address", detail.address || "—"),
    row("detail.location", `${detail.lat.toFixed(5)}, ${detail.lon.toFixed(5)}`),
    row("detail.presses", presses),
    detail.category === "trouble" ? row("detail.trouble", troubleText((detail.trouble || "").split(",")) || "—") : null,
    pending
      ? row(
          "detail.offered-to",
          tParts("detail.offered-to-value", {
            post: pending.post,
            distance: formatDistance(pending.distance_m),
            countdown: h("span", { "data-deadline": pending.deadline_at }, countdownText(pending.deadline_at)),
          }),
        )
      : null,
    detail.post ? row("detail.post", detail.post) : null,
    row("detail.refusals", String(detail.refusal_count)),
    row("detail.first-offer", formatWhen(detail.first_offered_at)),
    row("detail.accepted", formatWhen(detail.accepted_at)),
    row("detail.on-scene", formatWhen(detail.on_scene_at)),
    detail.escalated_at ? row("detail.escalated", formatWhen(detail.escalated_at)) : null,
    detail.closed_at ? row(detail.state === "cancelled" ? "detail.cancelled" : "detail.closed", formatWhen(detail.closed_at)) : null,
    detail.outcome ? row("detail.outcome", label("outcome", detail.outcome)) : null,
    detail.note ? row("detail.note", detail.note) : null,
  );
}

function renderDetail() {
  const detail = S.detail;
  const container = $("#detail");
  $("#detail-empty").hidden = true;
  const open = OPEN_STATES.has(detail.state);
  const pending = detail.offers.find((offer) => offer.state === "pending");
  rebuildKeepingFocus(container, () => {
    const drawer = $("#detail-drawer", container);
    const keepDrawer = drawer && drawer.dataset.alertId === String(detail.id) && open ? drawer : null;
    const heading = h(
      "h2",
      { class: "detail-title", id: "detail-title", tabindex: "-1" },
      categoryIcon(detail.category),
      ` ${alertTitle(detail)} `,
      stateBadge(detail.state),
      detail.drill ? [" ", drillBadge()] : null,
    );
    const parts = [heading, ...banners(detail), ...silentBanners(detail, loadDetail), facts(detail, pending)];
    parts.push(...premisesSections(detail));
    if (detail.state === "verify") parts.push(verifySection(detail, loadDetail));
    if (S.canAct && open) parts.push(actionBar(detail, pending, loadDetail));
    if (keepDrawer) parts.push(keepDrawer);
    parts.push(...workflowSections(detail, loadDetail));
    parts.push(offersSection(detail), eventsSection(detail), auditSection(detail));
    container.replaceChildren(...parts);
  });
}

// Coverage against the target (DESIGN §12): for households and for businesses, how many sites
// are protected, the share and the target, as a bar with the target marked on it.

import { h } from "../shared/dom.js";
import { formatPct, verdict } from "./format.js";
import { formatNumber, t } from "./strings.js";

function bar(pct, target, text) {
  const fill = h("span", { class: "bar-fill" });
  fill.style.width = `${Math.min(100, Math.max(0, pct ?? 0))}%`;
  const mark = h("span", { class: "bar-target", title: t("coverage.target-mark", { target: formatPct(target) }) });
  mark.style.left = `${Math.min(100, Math.max(0, target))}%`;
  const met = pct !== null && pct >= target;
  return h(
    "span",
    {
      class: `bar ${met ? "bar-met" : "bar-below"}`,
      role: "progressbar",
      "aria-valuemin": "0",
      "aria-valuemax": "100",
      "aria-valuenow": String(pct ?? 0),
      "aria-valuetext": text,
    },
    fill,
    mark,
  );
}

function part(kind, protectedCount, count, pct, target) {
  const name = t(`coverage.${kind}`);
  if (!count) {
    return h("div", { class: "coverage-part", "data-kind": kind }, h("h3", {}, name), h("p", { class: "muted" }, t("coverage.no-count")));
  }
  const text = t("coverage.figure", {
    protected: formatNumber(protectedCount),
    total: formatNumber(count),
    pct: formatPct(pct),
  });
  const goal = t("coverage.target", { target: formatPct(target) });
  return h(
    "div",
    { class: "coverage-part", "data-kind": kind, "data-pct": String(pct) },
    h("h3", {}, name),
    h("p", { class: "coverage-figure" }, text, " · ", goal, " ", verdict(pct >= target)),
    bar(pct, target, `${text}; ${goal}`),
  );
}

// row: one row of GET /api/v1/stats/coverage (or null when there is none).
export function renderCoverage(container, row) {
  if (!row) {
    container.replaceChildren(h("p", { class: "muted" }, t("coverage.none")));
    return;
  }
  container.replaceChildren(
    part("households", row.protected_households, row.households, row.household_pct, row.household_target_pct),
    part("businesses", row.protected_businesses, row.businesses, row.business_pct, row.business_target_pct),
    h("p", { class: "coverage-verdict", "data-met": String(row.met) }, t(row.met ? "coverage.met" : "coverage.below")),
  );
}

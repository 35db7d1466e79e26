// How the mahalla page writes its figures: durations, percentages, dates and the verdict of a
// criterion (a word and a sign, never a colour alone).

import { h } from "../shared/dom.js";
import { formatClock, formatDate } from "../shared/format.js";
import { currentLanguage } from "../shared/i18n.js";
import { label, t } from "./strings.js";

// "4 min 05 s" from seconds; "—" when there is no figure.
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined) return t("figure.none");
  const whole = Math.round(seconds);
  if (whole < 60) return t("duration.s", { s: whole });
  if (whole < 3600) return t("duration.min-s", { min: Math.floor(whole / 60), s: String(whole % 60).padStart(2, "0") });
  return t("duration.h-min", { h: Math.floor(whole / 3600), min: String(Math.floor((whole % 3600) / 60)).padStart(2, "0") });
}

// "31.5 %" in the page's language; "—" for null (nothing to divide by).
export function formatPct(value) {
  if (value === null || value === undefined) return t("figure.none");
  const number = new Intl.NumberFormat(currentLanguage(), { maximumFractionDigits: 2 }).format(value);
  return t("figure.pct", { pct: number });
}

export function formatWhen(iso) {
  return iso ? `${formatDate(iso)} ${formatClock(iso)}` : t("figure.none");
}

// A criterion's verdict: "✓ met" / "✗ missed", with a class for colour.
export function verdict(met) {
  return h("span", { class: met ? "verdict verdict-met" : "verdict verdict-missed", "data-met": String(Boolean(met)) }, t(met ? "verdict.met" : "verdict.missed"));
}

export function categoryName(category) {
  return label("category", category);
}

export function describeError(error) {
  return error && error.message ? error.message : String(error);
}

export function table(headings, rows, { caption = null, className = "data-table" } = {}) {
  return h(
    "table",
    { class: className },
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, headings.map((heading) => h("th", { scope: "col" }, heading)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell, index) => (index === 0 ? h("th", { scope: "row" }, cell) : h("td", {}, cell)))))),
  );
}

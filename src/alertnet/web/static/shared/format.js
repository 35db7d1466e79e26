// How both pages write distances, clock times, dates, countdowns and risk classes. Clock
// times are always 24-hour in the configured time zone (ALERTNET_TIMEZONE, default
// Asia/Tashkent), whatever the browser's own locale and time zone are.

import { h } from "./dom.js";
import { currentLanguage, formatNumber, t, timeZone } from "./i18n.js";

const RISKS = new Set(["red", "yellow", "green"]);

export function formatDistance(metres) {
  if (metres === null || metres === undefined) return t("distance.unknown");
  if (metres < 1000) return t("distance.m", { m: formatNumber(Math.round(metres)) });
  const digits = metres < 10000 ? 1 : 0;
  const km = new Intl.NumberFormat(currentLanguage(), { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return t("distance.km", { km: km.format(metres / 1000) });
}

// The formatters follow the page's language and the configured zone; made once per pair.
const formatters = new Map();

function formatter(kind) {
  const key = `${kind}|${currentLanguage()}|${timeZone()}`;
  if (!formatters.has(key)) {
    const options =
      kind === "clock"
        ? { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }
        : { day: "2-digit", month: "2-digit", year: "numeric" };
    formatters.set(key, new Intl.DateTimeFormat(currentLanguage(), { ...options, timeZone: timeZone() }));
  }
  return formatters.get(key);
}

function parse(iso) {
  if (!iso) return null;
  const when = new Date(iso);
  return Number.isNaN(when.getTime()) ? null : when;
}

// "14:05:09" in the configured zone.
export function formatClock(iso) {
  const when = parse(iso);
  return when ? formatter("clock").format(when) : "—";
}

// "30.11.2026" (the language's order) for the day in the configured zone.
export function formatDate(iso) {
  const when = parse(iso);
  return when ? formatter("date").format(when) : "—";
}

// Whether two instants fall on the same day in the configured zone.
export function sameDay(a, b) {
  return formatter("date").format(a) === formatter("date").format(b);
}

export function formatCountdown(ms) {
  const seconds = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

// A risk class with colour AND text, never colour alone.
export function riskBadge(risk) {
  const known = RISKS.has(risk) ? risk : "unknown";
  return h("span", { class: `risk risk-${known}`, "data-risk": known }, t(`risk.${known}`));
}

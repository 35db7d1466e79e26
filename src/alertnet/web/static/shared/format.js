// How both pages write distances, clock times, countdowns and risk classes.

import { h } from "./dom.js";
import { t } from "./i18n.js";

const RISKS = new Set(["red", "yellow", "green"]);

export function formatDistance(metres) {
  if (metres === null || metres === undefined) return t("distance.unknown");
  if (metres < 1000) return t("distance.m", { m: Math.round(metres) });
  return t("distance.km", { km: (metres / 1000).toFixed(metres < 10000 ? 1 : 0) });
}

export function formatClock(iso) {
  if (!iso) return "—";
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "—";
  return when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
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

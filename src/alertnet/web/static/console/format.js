// How the console writes ages, durations, times, alert titles and post positions.

import { ApiError, serverNow } from "../shared/api.js";
import { formatClock, formatCountdown, formatDate, sameDay } from "../shared/format.js";
import { LOCATION_MAX_AGE_MS } from "./state.js";
import { hasText, label, t } from "./strings.js";

export function since(iso) {
  const ms = serverNow() - Date.parse(iso);
  return Number.isNaN(ms) ? "—" : formatDuration(Math.max(0, ms / 1000));
}

const pad = (value) => String(value).padStart(2, "0");

// "4 s", "3 min 05 s", "2 h 05 min"; short: "4s", "3m05s", "2h05m" (for dense tables).
export function formatDuration(seconds, { short = false } = {}) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  const style = short ? "duration-short" : "duration";
  if (s < 60) return t(`${style}.s`, { s });
  if (s < 3600) return t(`${style}.min-s`, { min: Math.floor(s / 60), s: pad(s % 60) });
  if (short || s < 86400) {
    return t(`${style}.h-min`, { h: Math.floor(s / 3600), min: pad(Math.floor(s / 60) % 60) });
  }
  return t("duration.d-h", { d: Math.floor(s / 86400), h: Math.floor(s / 3600) % 24 });
}

export function formatWhen(iso) {
  if (!iso) return "—";
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "—";
  const today = sameDay(new Date(serverNow()), when);
  return today ? formatClock(iso) : `${formatDate(iso)} ${formatClock(iso)}`;
}

export function categoryLabel(category) {
  return label("category", category);
}

export function categoryLetter(category) {
  const key = `category-letter.${category}`;
  return t(hasText(key) ? key : "category-letter.unknown");
}

export function troubleText(kinds) {
  return kinds
    .filter(Boolean)
    .map((kind) => label("trouble", kind))
    .join(", ");
}

export function alertTitle(alert) {
  const category = categoryLabel(alert.category);
  if (alert.category === "trouble" && alert.trouble) {
    const troubles = troubleText(alert.trouble.split(","));
    return t("alert.title-trouble", { category, troubles, id: alert.id });
  }
  return t("alert.title", { category, id: alert.id });
}

export function isStale(post) {
  if (!post.location_at) return true;
  return serverNow() - Date.parse(post.location_at) > LOCATION_MAX_AGE_MS;
}

export function positionText(post) {
  if (post.lat === null || post.lat === undefined) return t("position.none");
  if (!post.location_at) return t("position.time-unknown");
  const age = since(post.location_at);
  return t(isStale(post) ? "position.age-stale" : "position.age", { age });
}

export function countdownText(deadlineIso) {
  const left = Date.parse(deadlineIso) - serverNow();
  return left > 0 ? t("countdown.left", { time: formatCountdown(left) }) : t("countdown.overdue");
}

export function describeError(error) {
  if (error instanceof ApiError) {
    if (error.offline) return t("error.offline", { detail: error.detail });
    return t("error.http", { detail: error.message, status: error.status });
  }
  return String(error);
}

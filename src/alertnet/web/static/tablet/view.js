// Drawing the tablet from its state: header, link to dispatch, idle/alert/offer views, the
// offer's countdown and the position line. Nothing here changes the state.

import { serverNow } from "../shared/api.js";
import { $ } from "../shared/dom.js";
import { formatClock, formatCountdown, formatDistance, riskBadge } from "../shared/format.js";
import { renderPremises } from "./premises.js";
import { geo, link, onDuty, state } from "./state.js";
import { label, t } from "./strings.js";

const URGENT_MS = 10000;
const GEO_PROBLEMS = new Set(["denied", "unavailable", "unsupported", "insecure"]);

function alertTitle(alert) {
  return label("category-title", alert.category);
}

function address(alert) {
  if (alert.address) return alert.address;
  return t("alert.no-address", { lat: alert.lat.toFixed(5), lon: alert.lon.toFixed(5) });
}

function renderAlertFacts(prefix, alert) {
  $(`#${prefix}-title`).textContent = alertTitle(alert);
  $(`#${prefix}-address`).textContent = address(alert);
  $(`#${prefix}-kind`).textContent = label("device-kind", alert.device_kind) || t("alert.unknown-device");
  $(`#${prefix}-mahalla`).textContent = alert.mahalla || t("alert.unknown-mahalla");
  $(`#${prefix}-risk`).replaceChildren(riskBadge(alert.risk));
  $(`#${prefix}-drill`).hidden = !alert.drill;
  const cancel = $(`#${prefix}-cancel`);
  cancel.hidden = !(alert.cancel_count > 0);
  cancel.textContent = alert.cancel_count > 0 ? t("alert.cancel-pressed", { count: alert.cancel_count }) : "";
  renderPremises(prefix, alert);
}

// The offer's time left (ms, below 0 once the deadline passed), or null without an offer.
export function renderCountdown() {
  const offer = state.offer;
  if (!offer) return null;
  const deadline = Date.parse(offer.deadline_at);
  const total = Math.max(1000, deadline - Date.parse(offer.offered_at));
  const left = deadline - serverNow();
  const box = $("#offer-countdown");
  $("#offer-time").textContent = formatCountdown(left);
  $("#offer-bar").style.width = `${Math.max(0, Math.min(100, (100 * left) / total))}%`;
  if (left <= 0) {
    box.dataset.urgency = "over";
    $("#offer-time-label").textContent = t("offer.time-up");
    $("#accept").disabled = true;
  } else {
    box.dataset.urgency = left <= URGENT_MS ? "urgent" : "normal";
    $("#offer-time-label").textContent = t("offer.left");
    $("#accept").disabled = state.working;
  }
  return left;
}

function renderOffer() {
  const section = $("#offer");
  const offer = state.offer;
  section.hidden = offer === null;
  if (!offer) return;
  const alert = offer.alert || {};
  section.dataset.offerId = offer.id;
  section.classList.toggle("is-drill", Boolean(alert.drill));
  renderAlertFacts("offer", alert);
  if (alert.drill) $("#offer-title").textContent = t("alert.drill-title", { title: alertTitle(alert) });
  $("#offer-distance").textContent = formatDistance(offer.distance_m);
  $("#decline-open").disabled = state.working;
  $("#decline-confirm").disabled = state.working;
  renderCountdown();
}

function renderAlert() {
  const alert = state.alert;
  $("#view-alert").hidden = alert === null;
  if (!alert) return;
  $("#view-alert").dataset.alertId = alert.id;
  renderAlertFacts("alert", alert);
  const badge = $("#alert-state");
  badge.dataset.state = alert.state;
  badge.textContent = t(alert.state === "on_scene" ? "alert.on-scene" : "alert.accepted");
  const lat = Number(alert.lat).toFixed(6);
  const lon = Number(alert.lon).toFixed(6);
  $("#nav-geo").href = `geo:${lat},${lon}?q=${lat},${lon}`;
  $("#nav-map").href = `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=17/${lat}/${lon}`;
  $("#arrived").hidden = alert.state !== "accepted";
  $("#arrived").disabled = state.working;
  $("#close-open").hidden = !$("#close-form").hidden;
  $("#close-open").disabled = state.working;
  $("#close-confirm").disabled = state.working;
}

function renderIdle() {
  const show = state.loaded && state.alert === null;
  $("#view-idle").hidden = !show;
  if (!show || !state.post) return;
  const status = state.post.status;
  $("#idle-text").textContent = t(
    status === "off_duty" ? "idle.off-duty" : status === "busy" ? "idle.busy" : "idle.available",
  );
  $("#go-available").hidden = status !== "off_duty";
  $("#go-off-duty").hidden = status === "off_duty";
  $("#go-available").disabled = state.working;
  $("#go-off-duty").disabled = state.working || status === "busy";
}

function positionLine() {
  if (!onDuty()) return t("position.off-duty");
  if (geo.sentOk) {
    const time = formatClock(new Date(geo.sentOk.at).toISOString());
    if (geo.sentOk.accuracy_m === null) return t("position.sent", { time });
    return t("position.sent-accuracy", { time, accuracy: Math.round(geo.sentOk.accuracy_m) });
  }
  return t(geo.status === "waiting" ? "position.waiting" : "position.not-sent");
}

export function renderGeolocation() {
  const box = $("#geo-message");
  const text = onDuty() && GEO_PROBLEMS.has(geo.status) ? t(`geo.${geo.status}`) : "";
  box.hidden = !text;
  box.dataset.kind = geo.status;
  $("#geo-text").textContent = text;
  $("#geo-retry").hidden = geo.status !== "denied";
  $("#position-line").textContent = positionLine();
}

function renderHeader() {
  const post = state.post;
  $("#callsign").textContent = post ? post.callsign : "…";
  const badge = $("#status-badge");
  badge.dataset.status = post ? post.status : "unknown";
  badge.textContent = post ? label("post-status", post.status) : "…";
}

function renderLink() {
  const stream = link.stream;
  const now = stream && stream.online ? "online" : link.offlineSince ? "offline" : "connecting";
  document.body.dataset.link = now;
  $("#link-state").textContent = t(`link.${now}`);
  $("#offline-banner").hidden = now !== "offline";
  $("#offline-since").textContent = link.offlineSince ? t("link.since", { time: formatClock(link.offlineSince) }) : "";
}

export function render() {
  document.body.dataset.view = !state.loaded
    ? "loading"
    : state.offer
      ? "offer"
      : state.alert
        ? "alert"
        : "idle";
  $("#view-loading").hidden = state.loaded;
  renderHeader();
  renderLink();
  renderIdle();
  renderAlert();
  renderOffer();
  renderGeolocation();
}

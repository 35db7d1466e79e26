// Keeping the console's state current. It loads from REST once (and again after a gap in the
// feed), then applies the live stream's messages in seq order; messages that arrive while
// REST answers are held back and applied after, so the newest view of each resource wins.

import { api } from "../shared/api.js";
import { $ } from "../shared/dom.js";
import { formatClock } from "../shared/format.js";
import { goToLogin } from "../shared/session.js";
import { Stream } from "../shared/stream.js";
import { scheduleDetailRefresh } from "./detail.js";
import { fillMahallaFilter, scheduleDevicesRefresh } from "./devices.js";
import { describeError, formatDuration } from "./format.js";
import { scheduleRender } from "./render.js";
import { S, replaceAll, upsertAlert, upsertOffer } from "./state.js";
import { t } from "./strings.js";
import { say } from "./widgets.js";

const API = "/api/v1";

function applyMessage(message) {
  const data = message.data || {};
  switch (message.type) {
    case "alert.opened":
    case "alert.updated":
      upsertAlert(data);
      if (data.id === S.selectedId) scheduleDetailRefresh();
      break;
    case "alert.workflow": // a note, a tick, an acknowledgement (console only)
      if (data.alert_id === S.selectedId) scheduleDetailRefresh();
      break;
    case "offer.created":
    case "offer.updated":
      upsertOffer(data);
      if (data.alert_id === S.selectedId) scheduleDetailRefresh();
      break;
    case "post.updated":
      S.posts.set(data.id, data);
      break;
    case "device.updated":
      scheduleDevicesRefresh();
      break;
    default:
      break;
  }
}

function handleMessage(message) {
  if (S.buffer !== null) {
    S.buffer.push(message);
    return;
  }
  applyMessage(message);
  scheduleRender();
}

async function loadPendingOffers(alerts) {
  const offered = alerts.filter((alert) => alert.state === "offered");
  const offers = new Map();
  const details = await Promise.all(offered.map((alert) => api(`${API}/alerts/${alert.id}`).catch(() => null)));
  for (const detail of details) {
    const pending = detail && detail.offers.find((offer) => offer.state === "pending");
    if (pending) offers.set(detail.id, pending);
  }
  return offers;
}

// The whole picture over REST; stream messages that arrive meanwhile are applied after it.
export async function reload() {
  if (S.buffer === null) S.buffer = [];
  try {
    const [alerts, posts, mahallas] = await Promise.all([
      api(`${API}/alerts?state=open&limit=1000`),
      S.canAct ? api(`${API}/posts`) : Promise.resolve([]),
      api(`${API}/mahallas`).catch(() => []),
    ]);
    const offers = await loadPendingOffers(alerts);
    replaceAll({ alerts, offers, posts, mahallas });
    document.body.dataset.loaded = "true";
    fillMahallaFilter();
  } catch (error) {
    say(t("stream.load-failed", { error: describeError(error) }), "error");
  } finally {
    const held = S.buffer || [];
    S.buffer = null;
    for (const message of held) applyMessage(message);
    scheduleRender();
    if (S.selectedId !== null) scheduleDetailRefresh();
    if (S.tab === "devices" || S.devicesShown) scheduleDevicesRefresh();
  }
}

function streamState(state, text, banner = null) {
  const element = $("#stream-state");
  element.dataset.state = state;
  document.body.dataset.stream = state;
  $(".stream-text", element).textContent = text;
  const bannerElement = $("#connection-banner");
  bannerElement.hidden = !banner;
  if (banner) bannerElement.textContent = banner;
}

export function startStream() {
  const stream = new Stream();
  let reconnects = 0;
  stream.addEventListener("ready", async (event) => {
    const { first, resync } = event.detail;
    const wasOffline = S.offlineSince;
    S.offlineSince = null;
    if (!first) reconnects += 1;
    document.body.dataset.reconnects = String(reconnects);
    if (first || resync) {
      streamState("loading", t(first ? "stream.loading" : "stream.reloading"));
      await reload();
    }
    if (wasOffline && !first) {
      const gap = formatDuration((Date.now() - wasOffline) / 1000);
      streamState("live", t("stream.caught-up", { gap }));
      say(t("stream.back", { gap }), "success");
    } else {
      streamState("live", t("stream.live"));
    }
  });
  stream.addEventListener("message", (event) => handleMessage(event.detail));
  stream.addEventListener("offline", () => {
    if (S.offlineSince === null) S.offlineSince = Date.now();
    const time = formatClock(new Date(S.offlineSince).toISOString());
    if (stream.connects === 0) {
      streamState("connecting", t("stream.first-connect"));
      return;
    }
    streamState("reconnecting", t("stream.reconnecting", { time }), t("stream.interrupted", { time }));
    say(t("stream.dropped"), "error");
  });
  stream.addEventListener("unauthorized", () => {
    streamState("ended", t("stream.ended"), t("stream.ended-banner"));
    goToLogin("/console");
  });
  stream.start();
  return stream;
}

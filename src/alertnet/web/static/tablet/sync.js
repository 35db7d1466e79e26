// Keeping the tablet current. State comes from two places that agree: GET /api/v1/posts/me
// (on load, after a stream resync, and every few seconds while the stream is down) and the
// stream's offer.*, alert.* and post.updated messages. Both carry whole resource views,
// applied in arrival order, so the screen always ends up at the latest state.

import { ApiError, api } from "../shared/api.js";
import { goToLogin } from "../shared/session.js";
import { Stream } from "../shared/stream.js";
import { applyPost } from "./location.js";
import { describeError, toast } from "./messages.js";
import { endAlert, endOffer, setAlert, showOffer } from "./offer.js";
import { ACTIVE_ALERT_STATES, TERMINAL_ALERT_STATES, isMine, link, state } from "./state.js";
import { label, t } from "./strings.js";
import { render } from "./view.js";

const POLL_OFFLINE_MS = 10000;

function alertGone(alert) {
  if (alert.state === "closed") return t("alert.closed");
  if (alert.state === "cancelled") return t("alert.cancelled");
  return t("alert.reassigned");
}

function offerEnding(offer) {
  if (offer.state === "declined") return t("offer.declined");
  if (offer.state === "expired") return t("offer.expired");
  if (offer.state === "withdrawn") {
    const reason = (offer.reason || "").trim();
    if (!reason) return t("offer.withdrawn");
    return t(reason.startsWith("withdrawn") ? "offer.withdrawn-reason" : "offer.withdrawn-because", { reason });
  }
  return t("offer.ended-other", { state: label("offer-state", offer.state) });
}

function applySnapshot(me) {
  applyPost(me.post);
  if (me.alert && ACTIVE_ALERT_STATES.has(me.alert.state)) {
    setAlert(me.alert);
  } else if (state.alert) {
    endAlert(t("alert.ended-offline"));
  }
  if (me.offer) {
    if (state.offer && state.offer.id !== me.offer.id) endOffer(t("offer.earlier-ended-offline"));
    showOffer(me.offer);
  } else if (state.offer) {
    endOffer(t("offer.ended-offline"));
  }
  state.loaded = true;
}

function onOfferView(offer) {
  if (state.offer && state.offer.id === offer.id) {
    if (offer.state === "pending") {
      state.offer = offer;
    } else if (offer.state === "accepted") {
      endOffer(null);
      if (offer.alert) setAlert(offer.alert);
    } else {
      endOffer(offerEnding(offer));
    }
  } else if (offer.state === "pending") {
    showOffer(offer);
  } else {
    state.endedOffers.add(offer.id);
    if (offer.state === "accepted" && isMine(offer.post_id) && offer.alert) setAlert(offer.alert);
  }
}

function onAlertView(alert) {
  if (TERMINAL_ALERT_STATES.has(alert.state)) state.closedAlerts.add(alert.id);
  if (state.offer && state.offer.alert_id === alert.id) {
    state.offer = { ...state.offer, alert };
  }
  if (isMine(alert.post_id) && ACTIVE_ALERT_STATES.has(alert.state)) {
    setAlert(alert);
  } else if (state.alert && state.alert.id === alert.id) {
    endAlert(alertGone(alert));
  }
}

function onStreamMessage(message) {
  const data = message.data || {};
  switch (message.type) {
    case "post.updated":
      applyPost(data);
      break;
    case "offer.created":
      showOffer(data);
      break;
    case "offer.updated":
      onOfferView(data);
      break;
    case "alert.updated":
    case "alert.opened":
      onAlertView(data);
      break;
    default:
      break;
  }
  render();
}

// --- the snapshot over REST, and polling while the stream is down -------------------------

let snapshotRunning = false;
let snapshotAgain = false;
const queuedMessages = [];
let pollTimer = null;

async function loadSnapshot() {
  if (snapshotRunning) {
    snapshotAgain = true;
    return;
  }
  snapshotRunning = true;
  try {
    do {
      snapshotAgain = false;
      try {
        applySnapshot(await api("/api/v1/posts/me"));
      } catch (error) {
        if (!(error instanceof ApiError && error.offline)) toast(describeError(error), { error: true });
      }
    } while (snapshotAgain);
  } finally {
    snapshotRunning = false;
    // Messages that came meanwhile are newer than the stream position the snapshot followed.
    while (queuedMessages.length) onStreamMessage(queuedMessages.shift());
    render();
  }
}

function startPolling() {
  if (pollTimer !== null) return;
  pollTimer = setInterval(() => {
    if (link.stream && !link.stream.online) loadSnapshot();
  }, POLL_OFFLINE_MS);
}

function stopPolling() {
  if (pollTimer !== null) clearInterval(pollTimer);
  pollTimer = null;
}

export function startStream() {
  const stream = new Stream();
  link.stream = stream;
  stream.addEventListener("ready", (event) => {
    link.offlineSince = null;
    stopPolling();
    // A first connection or a resync starts from the current state; a reconnect resumes
    // with ?after= and the stream replays exactly what was missed.
    if (event.detail.first || event.detail.resync || !state.loaded) loadSnapshot();
    render();
  });
  stream.addEventListener("message", (event) => {
    if (snapshotRunning) queuedMessages.push(event.detail);
    else onStreamMessage(event.detail);
  });
  stream.addEventListener("offline", () => {
    if (!link.offlineSince) link.offlineSince = new Date().toISOString();
    startPolling();
    if (!state.loaded) loadSnapshot(); // the stream may be blocked while plain HTTP works
    render();
  });
  stream.addEventListener("unauthorized", () => goToLogin("/tablet"));
  stream.start();
}

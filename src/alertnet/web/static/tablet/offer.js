// The offer on screen: shown full-screen with the alarm and a countdown, ended (answered,
// expired, withdrawn) with a message. The alert the post then holds: shown until it closes.

import { serverNow } from "../shared/api.js";
import { alarm } from "./alarm.js";
import { hideToast, resetCloseForm, resetOfferForms, toast } from "./messages.js";
import { isMine, state } from "./state.js";
import { t } from "./strings.js";
import { render, renderCountdown } from "./view.js";

// After the deadline the server expires the offer within a second or two; if no word
// comes (no connection), the screen gives up on it after this long.
const OFFER_GRACE_MS = 8000;
const COUNTDOWN_TICK_MS = 250;

let countdownTimer = null;

function countdownTick() {
  const left = renderCountdown();
  if (left !== null && left < -OFFER_GRACE_MS) {
    endOffer(t("offer.gave-up"));
    render();
  }
}

function startCountdown() {
  stopCountdown();
  countdownTimer = setInterval(countdownTick, COUNTDOWN_TICK_MS);
  countdownTick();
}

function stopCountdown() {
  if (countdownTimer !== null) clearInterval(countdownTimer);
  countdownTimer = null;
}

export function showOffer(offer) {
  if (!offer || offer.state !== "pending" || !isMine(offer.post_id)) return;
  if (state.endedOffers.has(offer.id)) return;
  if (state.alert && state.alert.id === offer.alert_id) return; // already ours
  if (Date.parse(offer.deadline_at) + OFFER_GRACE_MS < serverNow()) return; // long gone
  const isNew = !state.offer || state.offer.id !== offer.id;
  state.offer = offer;
  if (isNew) {
    hideToast(); // nothing may cover the offer's buttons
    resetOfferForms();
    alarm.start();
    startCountdown();
  }
}

export function endOffer(message, { error = false } = {}) {
  if (!state.offer) return;
  state.endedOffers.add(state.offer.id);
  state.offer = null;
  alarm.stop();
  stopCountdown();
  resetOfferForms();
  if (message) toast(message, { error });
}

export function setAlert(alert) {
  if (!alert) return;
  if (state.closedAlerts.has(alert.id)) return;
  state.alert = alert;
  if (state.offer && state.offer.alert_id === alert.id) endOffer(null);
}

export function endAlert(message) {
  if (!state.alert) return;
  state.alert = null;
  resetCloseForm();
  if (message) toast(message);
}

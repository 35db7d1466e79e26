// The mobile post's tablet app (/tablet): duty status, position reports, offers, the alert.
// Native ES modules, no build step:
//
//   state.js     what the tablet knows           sync.js      REST snapshot + live stream
//   offer.js     the offer and the alert held    actions.js   what the crew does
//   location.js  position reports while on duty screen.js    keeping the screen on
//   view.js      drawing the state               alarm.js     the offer's tone and vibration
//   messages.js  toasts, errors, form resets     strings.js   every text shown (the language's catalog)
//   sound.js     the "tap to turn sound on" prompt and the sound indicator
//
// For tests and field debugging from the browser console, window.alertnetTablet exposes the
// state, the position reports and the stream.

import { $ } from "../shared/dom.js";
import { mountLanguageSwitch } from "../shared/language.js";
import { goToLogin, requireLogin } from "../shared/session.js";
import { accept, arrive, closeAlert, decline, setStatus, signOut } from "./actions.js";
import { alarm } from "./alarm.js";
import { watchPosition } from "./location.js";
import { describeError, fatal, formError, hideToast, resetCloseForm, resetOfferForms, toast } from "./messages.js";
import { syncWakeLock } from "./screen.js";
import { mountSoundControls } from "./sound.js";
import { geo, link, state } from "./state.js";
import { applyStrings, label, t } from "./strings.js";
import { startStream } from "./sync.js";
import { render, renderGeolocation } from "./view.js";

function wireOfferControls() {
  $("#accept").addEventListener("click", accept);
  $("#decline-open").addEventListener("click", () => {
    $("#offer-actions").hidden = true;
    $("#decline-form").hidden = false;
    $("#decline-form").scrollIntoView({ block: "end" });
  });
  $("#decline-back").addEventListener("click", resetOfferForms);
  $("#decline-form").addEventListener("change", () => {
    const chosen = $("#decline-form").reason.value;
    $("#decline-other").hidden = chosen !== "other";
    $("#decline-error").hidden = true;
  });
  $("#decline-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const chosen = form.reason.value;
    if (!chosen) {
      formError("#decline-error", t("form.choose-reason"));
      return;
    }
    // The reason is recorded as given (English codes), whatever language the page shows.
    const text = form.text.value.trim();
    decline(chosen === "other" ? (text ? `other: ${text}` : "other") : chosen);
  });
}

function wireAlertControls() {
  $("#arrived").addEventListener("click", arrive);
  $("#close-open").addEventListener("click", () => {
    $("#close-form").hidden = false;
    $("#close-open").hidden = true;
    $("#close-form").scrollIntoView({ block: "start" });
  });
  $("#close-back").addEventListener("click", () => {
    resetCloseForm();
    render();
  });
  $("#close-form").addEventListener("change", () => {
    $("#close-error").hidden = true;
  });
  $("#close-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const outcome = form.outcome.value;
    if (!outcome) {
      formError("#close-error", t("form.choose-outcome"));
      return;
    }
    closeAlert(outcome, form.note.value.trim());
  });
}

function wireControls() {
  $("#go-available").addEventListener("click", () => setStatus("available"));
  $("#go-off-duty").addEventListener("click", () => setStatus("off_duty"));
  wireOfferControls();
  wireAlertControls();
  $("#logout").addEventListener("click", signOut);
  $("#toast").addEventListener("click", hideToast);
  $("#geo-retry").addEventListener("click", () => {
    watchPosition();
    renderGeolocation();
  });
  // The browser drops the screen lock whenever the page is hidden: take it again on return.
  document.addEventListener("visibilitychange", syncWakeLock);
  // Every tap may unlock sound (browsers allow audio only after a user gesture).
  document.addEventListener("pointerdown", () => alarm.unlock(), { capture: true });
  document.addEventListener("keydown", () => alarm.unlock(), { capture: true });
  mountSoundControls();
}

async function main() {
  applyStrings();
  wireControls();
  window.addEventListener("alertnet:unauthorized", () => goToLogin("/tablet"));
  let user;
  try {
    user = await requireLogin();
  } catch (error) {
    fatal(t("start.unreachable", { error: describeError(error) }));
    return;
  }
  if (user.role !== "post" || user.post_id === null) {
    fatal(t("start.not-a-post", { username: user.username, role: label("role", user.role) }));
    $("#view-loading").hidden = true;
    return;
  }
  mountLanguageSwitch({ signedIn: () => true, onError: (text) => toast(text, { error: true }) });
  state.user = user;
  startStream();
  render();
  window.alertnetTablet = {
    state,
    geo,
    alarm,
    get stream() {
      return link.stream;
    },
  };
}

main();

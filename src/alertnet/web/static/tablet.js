// The mobile post's tablet app (/tablet): duty status, position reports, offers, the alert.
//
// State comes from two places that agree: GET /api/v1/posts/me (on load, after a stream
// resync, and every few seconds while the stream is down) and the stream's offer.*, alert.*
// and post.updated messages. Both carry whole resource views, applied in arrival order, so
// the screen always ends up at the latest state; offers and alerts that have ended are
// remembered by id so a late copy can never bring one back.

import {
  $,
  ApiError,
  Stream,
  api,
  formatClock,
  formatCountdown,
  formatDistance,
  goToLogin,
  humanize,
  logout,
  requireLogin,
  riskBadge,
  serverNow,
} from "/static/common.js";

const ACTIVE_ALERT_STATES = new Set(["accepted", "on_scene"]);
const TERMINAL_ALERT_STATES = new Set(["closed", "cancelled"]);
const CATEGORY_TITLES = {
  panic: "Panic button",
  intrusion: "Intrusion alarm",
  fire: "Fire alarm",
  medical: "Medical emergency",
  tamper: "Device tampered",
};
const OUTCOME_LABELS = {
  confirmed: "confirmed emergency",
  false_alarm: "false alarm",
  no_one_found: "no one found",
  handed_over: "handed over",
  other: "other",
};
const URGENT_MS = 10000;
// After the deadline the server expires the offer within a second or two; if no word
// comes (no connection), the screen gives up on it after this long.
const OFFER_GRACE_MS = 8000;

// Position reports: a new fix at most every SEND_MIN_MS; the last fix again every
// SEND_EVERY_MS so dispatch keeps seeing a fresh location while the car stands still
// (browsers report a stationary position once). A fix older than FIX_MAX_AGE_MS is not sent.
const SEND_MIN_MS = 4000;
const SEND_EVERY_MS = 15000;
const REFRESH_FIX_AFTER_MS = 60000;
const FIX_MAX_AGE_MS = 120000;
const POLL_OFFLINE_MS = 10000;

const state = {
  user: null,
  post: null,
  offer: null, // the pending offer on screen
  alert: null, // the alert this post holds (accepted / on scene)
  loaded: false,
  working: false, // an action request is in flight
  endedOffers: new Set(),
  closedAlerts: new Set(),
  rings: 0,
};

const geo = {
  watchId: null,
  status: "off", // off | waiting | ok | denied | unavailable | unsupported | insecure
  fix: null, // {lat, lon, accuracy_m, at}
  sentFix: null,
  sentAt: 0,
  sentOk: null,
  sending: false,
  refreshingAt: 0,
  timer: null,
};

let stream = null;
let offlineSince = null;
let pollTimer = null;
let countdownTimer = null;
let toastTimer = null;

// --- sound and vibration ------------------------------------------------------------------

class Alarm {
  constructor() {
    this.context = null;
    this.timer = null;
  }

  // Browsers let a page make sound only after a tap: every tap makes sure audio is on.
  unlock() {
    const AudioContextClass = window.AudioContext || window.webkitAudioContext;
    if (!this.context && AudioContextClass) {
      try {
        this.context = new AudioContextClass();
      } catch {
        this.context = null;
      }
    }
    if (this.context && this.context.state === "suspended") {
      this.context.resume().catch(() => {});
    }
  }

  start() {
    if (this.timer !== null) return;
    document.body.dataset.alarm = "on";
    this.ring();
    this.timer = setInterval(() => this.ring(), 2500);
  }

  stop() {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    document.body.dataset.alarm = "off";
    if (navigator.vibrate) navigator.vibrate(0);
  }

  ring() {
    state.rings += 1;
    this.beep();
    if (navigator.vibrate) navigator.vibrate([400, 150, 400, 150, 400]);
  }

  beep() {
    const context = this.context;
    if (!context || context.state !== "running") return;
    const start = context.currentTime + 0.02;
    for (let i = 0; i < 3; i += 1) {
      const at = start + i * 0.32;
      const oscillator = context.createOscillator();
      const gain = context.createGain();
      oscillator.type = "square";
      oscillator.frequency.value = i % 2 === 0 ? 880 : 660;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.4, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.26);
      oscillator.connect(gain).connect(context.destination);
      oscillator.start(at);
      oscillator.stop(at + 0.3);
    }
  }
}

const alarm = new Alarm();

// --- messages ------------------------------------------------------------------------------

function toast(text, { error = false, ms = 5000 } = {}) {
  const box = $("#toast");
  box.textContent = text;
  box.classList.toggle("toast-error", error);
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    box.hidden = true;
  }, ms);
}

function hideToast() {
  clearTimeout(toastTimer);
  $("#toast").hidden = true;
}

function describeError(error) {
  if (error instanceof ApiError) {
    if (error.offline) return "No connection to alertnet — nothing was sent. Try again.";
    return error.detail || error.error;
  }
  return String(error);
}

function fatal(text) {
  const box = $("#fatal");
  box.textContent = text;
  box.hidden = false;
}

// --- applying what the server says ---------------------------------------------------------

function isMine(postId) {
  return state.user !== null && postId === state.user.post_id;
}

function setPost(post) {
  if (!post || !isMine(post.id)) return;
  state.post = post;
  syncGeolocation();
}

function showOffer(offer) {
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

function endOffer(message, { error = false } = {}) {
  if (!state.offer) return;
  state.endedOffers.add(state.offer.id);
  state.offer = null;
  alarm.stop();
  stopCountdown();
  resetOfferForms();
  if (message) toast(message, { error });
}

function setAlert(alert) {
  if (!alert) return;
  if (state.closedAlerts.has(alert.id)) return;
  state.alert = alert;
  if (state.offer && state.offer.alert_id === alert.id) endOffer(null);
}

function endAlert(message) {
  if (!state.alert) return;
  state.alert = null;
  resetCloseForm();
  if (message) toast(message);
}

function alertGone(alert) {
  if (alert.state === "closed") return "The alert was closed.";
  if (alert.state === "cancelled") return "The dispatcher cancelled this alert.";
  return "The dispatcher gave this alert to another post.";
}

function applySnapshot(me) {
  setPost(me.post);
  if (me.alert && ACTIVE_ALERT_STATES.has(me.alert.state)) {
    setAlert(me.alert);
  } else if (state.alert) {
    endAlert("The alert ended while the tablet was offline.");
  }
  if (me.offer) {
    if (state.offer && state.offer.id !== me.offer.id) {
      endOffer("The earlier offer ended while the tablet was offline.");
    }
    showOffer(me.offer);
  } else if (state.offer) {
    endOffer("The offer ended while the tablet was offline.");
  }
  state.loaded = true;
}

const OFFER_ENDINGS = {
  declined: () => "Offer declined — it goes to the next post.",
  expired: () => "Offer expired — no answer in time; it went to the next post.",
  withdrawn: (offer) => {
    const reason = (offer.reason || "").trim();
    if (!reason) return "Offer withdrawn by the dispatcher.";
    return reason.startsWith("withdrawn") ? `Offer ${reason}.` : `Offer withdrawn: ${reason}.`;
  },
};

function onStreamMessage(message) {
  const data = message.data || {};
  switch (message.type) {
    case "post.updated":
      setPost(data);
      break;
    case "offer.created":
      showOffer(data);
      break;
    case "offer.updated":
      if (state.offer && state.offer.id === data.id) {
        if (data.state === "pending") {
          state.offer = data;
        } else if (data.state === "accepted") {
          endOffer(null);
          if (data.alert) setAlert(data.alert);
        } else {
          const ending = OFFER_ENDINGS[data.state];
          endOffer(ending ? ending(data) : `The offer is ${humanize(data.state)}.`);
        }
      } else if (data.state === "pending") {
        showOffer(data);
      } else {
        state.endedOffers.add(data.id);
        if (data.state === "accepted" && isMine(data.post_id) && data.alert) setAlert(data.alert);
      }
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

// --- the snapshot over REST, and polling while the stream is down -------------------------

let snapshotRunning = false;
let snapshotAgain = false;
const queuedMessages = [];

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
    if (stream && !stream.online) loadSnapshot();
  }, POLL_OFFLINE_MS);
}

function stopPolling() {
  if (pollTimer !== null) clearInterval(pollTimer);
  pollTimer = null;
}

// --- geolocation ---------------------------------------------------------------------------

function onDuty() {
  return state.post !== null && state.post.status !== "off_duty";
}

function syncGeolocation() {
  if (onDuty()) startGeolocation();
  else stopGeolocation();
  syncWakeLock();
}

// --- keeping the screen on while on duty ---------------------------------------------------

let wakeLock = null;
let wakeLockAsked = false;

async function syncWakeLock() {
  if (!("wakeLock" in navigator) || wakeLockAsked) return;
  const wanted = onDuty() && document.visibilityState === "visible";
  if (wanted && wakeLock === null) {
    wakeLockAsked = true;
    try {
      const lock = await navigator.wakeLock.request("screen");
      lock.addEventListener("release", () => {
        if (wakeLock === lock) wakeLock = null;
      });
      wakeLock = lock;
    } catch {
      wakeLock = null; // refused (battery saver, no permission): the screen may dim
    } finally {
      wakeLockAsked = false;
    }
  } else if (!wanted && wakeLock !== null) {
    const lock = wakeLock;
    wakeLock = null;
    lock.release().catch(() => {});
  }
}

function startGeolocation() {
  if (geo.timer !== null) return;
  geo.timer = setInterval(geolocationTick, 1000);
  watchPosition();
}

function watchPosition() {
  if (!window.isSecureContext) {
    geo.status = "insecure";
    return;
  }
  if (!("geolocation" in navigator)) {
    geo.status = "unsupported";
    return;
  }
  if (geo.watchId !== null) navigator.geolocation.clearWatch(geo.watchId);
  geo.status = geo.fix ? "ok" : "waiting";
  geo.watchId = navigator.geolocation.watchPosition(onFix, onGeolocationError, {
    enableHighAccuracy: true,
    maximumAge: 5000,
    timeout: 20000,
  });
}

function stopGeolocation() {
  if (geo.timer !== null) clearInterval(geo.timer);
  geo.timer = null;
  if (geo.watchId !== null && navigator.geolocation) navigator.geolocation.clearWatch(geo.watchId);
  geo.watchId = null;
  geo.status = "off";
}

function onFix(position) {
  geo.fix = {
    lat: position.coords.latitude,
    lon: position.coords.longitude,
    accuracy_m: Number.isFinite(position.coords.accuracy) ? position.coords.accuracy : null,
    at: position.timestamp || Date.now(),
  };
  geo.status = "ok";
  sendPosition();
  renderGeolocation();
}

function onGeolocationError(error) {
  if (error.code === error.PERMISSION_DENIED) {
    geo.status = "denied";
    if (geo.watchId !== null) navigator.geolocation.clearWatch(geo.watchId);
    geo.watchId = null;
  } else if (!geo.fix || Date.now() - geo.fix.at > FIX_MAX_AGE_MS) {
    geo.status = "unavailable";
  }
  renderGeolocation();
}

function geolocationTick() {
  if (geo.fix && Date.now() - geo.fix.at > REFRESH_FIX_AFTER_MS && geo.status !== "denied") {
    // A stationary device may never call the watch again: ask for a fresh fix now and then.
    if (Date.now() - geo.refreshingAt > 15000) {
      geo.refreshingAt = Date.now();
      navigator.geolocation.getCurrentPosition(onFix, onGeolocationError, {
        enableHighAccuracy: true,
        maximumAge: 10000,
        timeout: 15000,
      });
    }
  }
  sendPosition();
  renderGeolocation();
}

async function sendPosition() {
  const fix = geo.fix;
  if (!fix || geo.sending || !onDuty()) return;
  const now = Date.now();
  const sinceSent = now - geo.sentAt;
  const due = fix !== geo.sentFix ? sinceSent >= SEND_MIN_MS : sinceSent >= SEND_EVERY_MS;
  if (!due || now - fix.at > FIX_MAX_AGE_MS) return;
  geo.sending = true;
  geo.sentAt = now;
  try {
    const me = await api("/api/v1/posts/me/location", {
      method: "POST",
      body: { lat: fix.lat, lon: fix.lon, accuracy_m: fix.accuracy_m },
    });
    geo.sentFix = fix;
    geo.sentOk = { at: Date.now(), accuracy_m: fix.accuracy_m };
    setPost(me.post);
  } catch (error) {
    geo.sentOk = null;
    if (!(error instanceof ApiError && error.offline)) toast(describeError(error), { error: true });
  } finally {
    geo.sending = false;
    render();
  }
}

// --- the offer countdown ------------------------------------------------------------------

function startCountdown() {
  stopCountdown();
  countdownTimer = setInterval(renderCountdown, 250);
  renderCountdown();
}

function stopCountdown() {
  if (countdownTimer !== null) clearInterval(countdownTimer);
  countdownTimer = null;
}

function renderCountdown() {
  const offer = state.offer;
  if (!offer) return;
  const deadline = Date.parse(offer.deadline_at);
  const total = Math.max(1000, deadline - Date.parse(offer.offered_at));
  const left = deadline - serverNow();
  const box = $("#offer-countdown");
  $("#offer-time").textContent = formatCountdown(left);
  $("#offer-bar").style.width = `${Math.max(0, Math.min(100, (100 * left) / total))}%`;
  if (left <= 0) {
    box.dataset.urgency = "over";
    $("#offer-time-label").textContent = "time is up — waiting for dispatch";
    $("#accept").disabled = true;
    if (left < -OFFER_GRACE_MS) {
      endOffer("Offer expired — no answer in time.");
      render();
    }
  } else {
    box.dataset.urgency = left <= URGENT_MS ? "urgent" : "normal";
    $("#offer-time-label").textContent = "left to answer";
    $("#accept").disabled = state.working;
  }
}

// --- actions --------------------------------------------------------------------------------

async function act(work) {
  if (state.working) return;
  state.working = true;
  render();
  try {
    await work();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return; // off to the login page
    toast(describeError(error), { error: true });
  } finally {
    state.working = false;
    render();
  }
}

function setStatus(status) {
  return act(async () => {
    const me = await api("/api/v1/posts/me/status", { method: "POST", body: { status } });
    setPost(me.post);
    if (me.offer) showOffer(me.offer);
  });
}

function accept() {
  const offer = state.offer;
  if (!offer) return;
  return act(async () => {
    try {
      const answer = await api(`/api/v1/offers/${offer.id}/accept`, { method: "POST" });
      endOffer(null);
      setAlert(answer.alert);
      toast("Accepted — help is on the way. The caller's device was told.");
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        endOffer(`Too late: ${error.detail}`, { error: true });
        return;
      }
      throw error;
    }
  });
}

function decline(reason) {
  const offer = state.offer;
  if (!offer) return;
  return act(async () => {
    try {
      await api(`/api/v1/offers/${offer.id}/decline`, { method: "POST", body: { reason } });
      endOffer(null);
      toast("Declined — the alert goes to the next post.");
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        endOffer(`The offer had already ended: ${error.detail}`);
        return;
      }
      throw error;
    }
  });
}

function arrive() {
  const alert = state.alert;
  if (!alert) return;
  return act(async () => {
    setAlert(await api(`/api/v1/alerts/${alert.id}/arrive`, { method: "POST" }));
  });
}

function closeAlert(outcome, note) {
  const alert = state.alert;
  if (!alert) return;
  return act(async () => {
    const closed = await api(`/api/v1/alerts/${alert.id}/close`, {
      method: "POST",
      body: { outcome, note },
    });
    state.closedAlerts.add(closed.id);
    endAlert(null); // the stream may have said "closed" first: this message says more
    toast(`Alert closed: ${OUTCOME_LABELS[outcome] || outcome}. Thank you.`);
  });
}

async function signOut() {
  if (state.working) return;
  state.working = true;
  render();
  try {
    // Nobody will answer offers on this tablet any more: do not stay "available".
    if (state.post && state.post.status === "available") {
      await api("/api/v1/posts/me/status", { method: "POST", body: { status: "off_duty" } });
    }
    await logout();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) {
      toast(`Not logged out: ${describeError(error)}`, { error: true });
      state.working = false;
      render();
      return;
    }
  }
  if (stream) stream.stop();
  stopGeolocation();
  goToLogin("/tablet");
}

// --- forms ------------------------------------------------------------------------------------

function resetOfferForms() {
  const form = $("#decline-form");
  form.reset();
  form.hidden = true;
  $("#decline-other").hidden = true;
  $("#decline-error").hidden = true;
  $("#offer-actions").hidden = false;
}

function resetCloseForm() {
  const form = $("#close-form");
  form.reset();
  form.hidden = true;
  $("#close-error").hidden = true;
}

function formError(selector, text) {
  const box = $(selector);
  box.textContent = text;
  box.hidden = false;
}

function wireControls() {
  $("#go-available").addEventListener("click", () => setStatus("available"));
  $("#go-off-duty").addEventListener("click", () => setStatus("off_duty"));
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
  $("#close-form").addEventListener("change", () => {
    $("#close-error").hidden = true;
  });
  $("#decline-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const chosen = form.reason.value;
    if (!chosen) {
      formError("#decline-error", "Choose a reason.");
      return;
    }
    const text = form.text.value.trim();
    decline(chosen === "other" ? (text ? `other: ${text}` : "other") : chosen);
  });
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
  $("#close-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const outcome = form.outcome.value;
    if (!outcome) {
      formError("#close-error", "Choose the outcome.");
      return;
    }
    closeAlert(outcome, form.note.value.trim());
  });
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
}

// --- rendering -------------------------------------------------------------------------------

const STATUS_LABELS = { available: "Available", busy: "Busy", off_duty: "Off duty" };

function alertTitle(alert) {
  return CATEGORY_TITLES[alert.category] || humanize(alert.category);
}

function address(alert) {
  if (alert.address) return alert.address;
  return `No street address — device at ${alert.lat.toFixed(5)}, ${alert.lon.toFixed(5)}`;
}

function cancelText(alert) {
  const times = alert.cancel_count === 1 ? "once" : `${alert.cancel_count} times`;
  return `⚠ CANCEL was pressed ${times}. The person may be forced to cancel — go anyway.`;
}

function renderAlertFacts(prefix, alert) {
  $(`#${prefix}-title`).textContent = alertTitle(alert);
  $(`#${prefix}-address`).textContent = address(alert);
  $(`#${prefix}-kind`).textContent = humanize(alert.device_kind) || "unknown device";
  $(`#${prefix}-mahalla`).textContent = alert.mahalla || "unknown mahalla";
  $(`#${prefix}-risk`).replaceChildren(riskBadge(alert.risk));
  $(`#${prefix}-drill`).hidden = !alert.drill;
  const cancel = $(`#${prefix}-cancel`);
  cancel.hidden = !(alert.cancel_count > 0);
  cancel.textContent = alert.cancel_count > 0 ? cancelText(alert) : "";
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
  if (alert.drill) $("#offer-title").textContent = `DRILL: ${alertTitle(alert)}`;
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
  badge.textContent = alert.state === "on_scene" ? "On scene" : "Accepted — on the way";
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
  $("#idle-text").textContent =
    status === "off_duty"
      ? "Off duty. No alerts will be offered to this post."
      : status === "busy"
        ? "Busy."
        : "Available — waiting for alerts. Keep this screen open.";
  $("#go-available").hidden = status !== "off_duty";
  $("#go-off-duty").hidden = status === "off_duty";
  $("#go-available").disabled = state.working;
  $("#go-off-duty").disabled = state.working || status === "busy";
}

const GEO_TEXTS = {
  denied:
    "LOCATION BLOCKED — allow location for this site in the browser settings, then tap Try again. " +
    "Without your position no alert can be offered to this post.",
  unavailable: "No GPS position — dispatch cannot see where you are. Keep the tablet near a window.",
  unsupported: "This browser cannot report a position: no alert can be offered to this post.",
  insecure: "Location needs a secure (HTTPS) connection: ask the administrator.",
};

function renderGeolocation() {
  const box = $("#geo-message");
  const text = onDuty() ? GEO_TEXTS[geo.status] : undefined;
  box.hidden = !text;
  box.dataset.kind = geo.status;
  $("#geo-text").textContent = text || "";
  $("#geo-retry").hidden = geo.status !== "denied";
  const line = $("#position-line");
  if (!onDuty()) {
    line.textContent = "Position is not reported while off duty.";
  } else if (geo.sentOk) {
    const accuracy =
      geo.sentOk.accuracy_m !== null ? ` (±${Math.round(geo.sentOk.accuracy_m)} m)` : "";
    line.textContent = `Position sent ${formatClock(new Date(geo.sentOk.at).toISOString())}${accuracy}`;
  } else if (geo.status === "waiting") {
    line.textContent = "Waiting for a position…";
  } else {
    line.textContent = "Position not sent yet.";
  }
}

function renderHeader() {
  const post = state.post;
  $("#callsign").textContent = post ? post.callsign : "…";
  const badge = $("#status-badge");
  badge.dataset.status = post ? post.status : "unknown";
  badge.textContent = post ? STATUS_LABELS[post.status] || humanize(post.status) : "…";
}

function renderLink() {
  const link = stream && stream.online ? "online" : offlineSince ? "offline" : "connecting";
  document.body.dataset.link = link;
  $("#link-state").textContent = { online: "Live", offline: "Offline", connecting: "Connecting" }[
    link
  ];
  $("#offline-banner").hidden = link !== "offline";
  $("#offline-since").textContent = offlineSince ? `(since ${formatClock(offlineSince)})` : "";
}

function render() {
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

// --- start -----------------------------------------------------------------------------------

function startStream() {
  stream = new Stream();
  stream.addEventListener("ready", (event) => {
    offlineSince = null;
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
    if (!offlineSince) offlineSince = new Date().toISOString();
    startPolling();
    if (!state.loaded) loadSnapshot(); // the stream may be blocked while plain HTTP works
    render();
  });
  stream.addEventListener("unauthorized", () => goToLogin("/tablet"));
  stream.start();
}

async function main() {
  wireControls();
  window.addEventListener("alertnet:unauthorized", () => goToLogin("/tablet"));
  let user;
  try {
    user = await requireLogin();
  } catch (error) {
    fatal(`Cannot reach alertnet: ${describeError(error)} Reload the page to try again.`);
    return;
  }
  if (user.role !== "post" || user.post_id === null) {
    fatal(
      `${user.username} is not a mobile post account (role ${user.role}). ` +
        "Log out and log in with the post's account.",
    );
    $("#view-loading").hidden = true;
    return;
  }
  state.user = user;
  startStream();
  render();
  // For tests and for field debugging from the browser console.
  window.alertnetTablet = { state, geo, get stream() { return stream; } };
}

main();

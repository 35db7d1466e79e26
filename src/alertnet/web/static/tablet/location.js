// The post's position while on duty: the browser's geolocation watch, and reports to alertnet.
//
// A new fix is sent at most every SEND_MIN_MS; the last fix again every SEND_EVERY_MS so
// dispatch keeps seeing a fresh location while the car stands still (browsers report a
// stationary position once). A fix older than FIX_MAX_AGE_MS is not sent.

import { ApiError, api } from "../shared/api.js";
import { describeError, toast } from "./messages.js";
import { syncWakeLock } from "./screen.js";
import { geo, isMine, onDuty, state } from "./state.js";
import { render, renderGeolocation } from "./view.js";

const SEND_MIN_MS = 4000;
const SEND_EVERY_MS = 15000;
const REFRESH_FIX_AFTER_MS = 60000;
const FIX_MAX_AGE_MS = 120000;

// A new view of this post: on duty it reports its position and keeps the screen on.
export function applyPost(post) {
  if (!post || !isMine(post.id)) return;
  state.post = post;
  syncGeolocation();
}

function syncGeolocation() {
  if (onDuty()) startGeolocation();
  else stopGeolocation();
  syncWakeLock();
}

function startGeolocation() {
  if (geo.timer !== null) return;
  geo.timer = setInterval(geolocationTick, 1000);
  watchPosition();
}

export function watchPosition() {
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

export function stopGeolocation() {
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
    applyPost(me.post);
  } catch (error) {
    geo.sentOk = null;
    if (!(error instanceof ApiError && error.offline)) toast(describeError(error), { error: true });
  } finally {
    geo.sending = false;
    render();
  }
}

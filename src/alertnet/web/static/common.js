// alertnet web layer shared by /console, /tablet and /login (an ES module, no build step).
//
//   import { api, ApiError, login, logout, currentUser, requireLogin, Stream, h } from "/static/common.js";
//
// api(path, {method, body}) -> parsed JSON (null for 204); throws ApiError with .status,
//   .error and .detail from alertnet's {"error", "detail"} body (status 0 = no connection).
//   A 401 also fires "alertnet:unauthorized" on window (pages send the user to /login).
// Stream: the live feed (/api/v1/stream) over the session cookie. It keeps the last seq,
//   reconnects by itself with capped, jittered backoff and resumes with ?after=, so nothing
//   is missed or repeated. Events (EventTarget): "ready" {after, resync, first},
//   "message" {seq, type, data}, one event per message type ("offer.created", …),
//   "online", "offline" {code, reason}, "unauthorized" (close 4401: log in again).
//   .online, .lastSeq, .lastUrl and .recent (the last feed messages' seq and type) can be read.

const STREAM_PATH = "/api/v1/stream";
const CLOSE_BAD_AFTER = 4400;
const CLOSE_UNAUTHORIZED = 4401;
const RECENT_KEPT = 50;

export class ApiError extends Error {
  constructor(status, error, detail) {
    super(detail || error || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.error = error;
    this.detail = detail;
  }

  get offline() {
    return this.status === 0;
  }
}

// Server clock minus this clock, in ms, from the Date header of API answers (1 s resolution,
// so skews under 1.5 s are ignored). Countdowns to server deadlines use serverNow().
let clockOffsetMs = 0;

export function serverNow() {
  return Date.now() + clockOffsetMs;
}

function noteServerDate(response) {
  const header = response.headers.get("Date");
  if (!header) return;
  const serverMs = Date.parse(header);
  if (Number.isNaN(serverMs)) return;
  const offset = serverMs + 500 - Date.now();
  clockOffsetMs = Math.abs(offset) > 1500 ? offset : 0;
}

export async function api(path, { method = "GET", body, timeoutMs = 15000 } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  init.signal = controller.signal;
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    const why = error && error.name === "AbortError" ? "no answer in time" : "no connection";
    throw new ApiError(0, "offline", `${why} (${method} ${path})`);
  } finally {
    clearTimeout(timer);
  }
  noteServerDate(response);
  if (response.status === 204) return null;
  let payload = null;
  const text = await response.text();
  if (text) {
    try {
      payload = JSON.parse(text);
    } catch {
      payload = null;
    }
  }
  if (!response.ok) {
    const error = new ApiError(
      response.status,
      payload && payload.error ? payload.error : `http_${response.status}`,
      payload && payload.detail ? payload.detail : response.statusText,
    );
    if (response.status === 401) {
      window.dispatchEvent(new CustomEvent("alertnet:unauthorized", { detail: error }));
    }
    throw error;
  }
  return payload;
}

// --- session ---------------------------------------------------------------------------

export async function login(username, password) {
  return api("/api/v1/auth/login", { method: "POST", body: { username, password } });
}

export async function logout() {
  try {
    await api("/api/v1/auth/logout", { method: "POST" });
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
  }
}

// The logged-in user ({user_id, username, role, post_id, mahalla_id}) or null.
export async function currentUser() {
  try {
    return await api("/api/v1/auth/me");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return null;
    throw error;
  }
}

export function loginUrl(next = location.pathname) {
  return `/login?next=${encodeURIComponent(next)}`;
}

export function goToLogin(next = location.pathname) {
  location.replace(loginUrl(next));
}

// The current user, or a trip to /login (which comes back here once logged in).
export async function requireLogin() {
  const user = await currentUser();
  if (user === null) {
    goToLogin();
    return new Promise(() => {}); // the page is going away
  }
  return user;
}

// A path on this site, safe to redirect to after login (never another origin).
export function safeNext(value, fallback) {
  if (typeof value !== "string" || !value.startsWith("/")) return fallback;
  if (value.startsWith("//") || value.startsWith("/\\") || /[\u0000-\u001f]/.test(value)) {
    return fallback;
  }
  return value;
}

// --- the live stream -------------------------------------------------------------------

export class Stream extends EventTarget {
  constructor({
    path = STREAM_PATH,
    minDelayMs = 500,
    maxDelayMs = 10000,
    // The server pings every 15 s: this long without any message means the link is dead
    // even if the socket has not noticed (a mobile network that silently went away).
    silenceMs = 40000,
  } = {}) {
    super();
    this.path = path;
    this.minDelayMs = minDelayMs;
    this.maxDelayMs = maxDelayMs;
    this.silenceMs = silenceMs;
    this.lastSeq = null;
    this.online = false;
    this.connects = 0; // stream.ready messages received so far (connections, resyncs)
    this.lastUrl = null;
    this.lastMessageAt = 0;
    this.recent = []; // the last RECENT_KEPT feed messages as {seq, type}, for debugging
    this._socket = null;
    this._resuming = false;
    this._attempt = 0;
    this._retryTimer = null;
    this._watchdog = null;
    this._running = false;
    this._onNetworkUp = () => this.reconnectNow();
    this._onNetworkDown = () => this._drop("the device went offline");
    this._onVisible = () => {
      if (document.visibilityState === "visible" && !this.online) this.reconnectNow();
    };
  }

  start() {
    if (this._running) return this;
    this._running = true;
    window.addEventListener("online", this._onNetworkUp);
    window.addEventListener("offline", this._onNetworkDown);
    document.addEventListener("visibilitychange", this._onVisible);
    this._watchdog = setInterval(() => this._checkSilence(), 5000);
    this._connect();
    return this;
  }

  stop() {
    this._running = false;
    window.removeEventListener("online", this._onNetworkUp);
    window.removeEventListener("offline", this._onNetworkDown);
    document.removeEventListener("visibilitychange", this._onVisible);
    clearInterval(this._watchdog);
    clearTimeout(this._retryTimer);
    const socket = this._socket;
    this._socket = null;
    if (socket) socket.close(1000, "stopped");
    this._setOffline(1000, "stopped");
  }

  // Try at once (the network came back, the page became visible, a user asked).
  reconnectNow() {
    if (!this._running || (this._socket && this._socket.readyState <= WebSocket.OPEN)) return;
    clearTimeout(this._retryTimer);
    this._attempt = 0;
    this._connect();
  }

  // Close the current connection as if the network had dropped it; the stream reconnects.
  _drop(reason) {
    const socket = this._socket;
    if (!socket) return;
    this._socket = null;
    socket.close(1000, reason.slice(0, 100));
    this._closed(1006, reason);
  }

  _url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = this.lastSeq === null ? "" : `?after=${this.lastSeq}`;
    return `${scheme}//${location.host}${this.path}${query}`;
  }

  _connect() {
    if (!this._running) return;
    this._resuming = this.lastSeq !== null;
    this.lastUrl = this._url();
    let socket;
    try {
      socket = new WebSocket(this.lastUrl);
    } catch (error) {
      this._closed(1006, String(error));
      return;
    }
    this._socket = socket;
    this.lastMessageAt = Date.now();
    socket.onmessage = (event) => {
      if (this._socket === socket) this._receive(event.data);
    };
    socket.onclose = (event) => {
      if (this._socket !== socket) return; // already handled (dropped or stopped)
      this._socket = null;
      this._closed(event.code, event.reason);
    };
    // onerror is always followed by onclose, which does the work.
  }

  _receive(text) {
    this.lastMessageAt = Date.now();
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (message.type === "stream.ping") return;
    if (message.type === "stream.ready") {
      const first = this.connects === 0;
      // Reconnecting without ?after (the position was refused) also means: reload the state.
      const resync = Boolean(message.data.resync) || (!first && !this._resuming);
      this._resuming = true;
      this.connects += 1;
      this.lastSeq = message.data.after;
      this._attempt = 0;
      const wasOnline = this.online;
      this.online = true;
      if (!wasOnline) this.dispatchEvent(new CustomEvent("online"));
      this.dispatchEvent(
        new CustomEvent("ready", {
          detail: { after: message.data.after, resync, first },
        }),
      );
      return;
    }
    if (typeof message.seq !== "number") return;
    if (this.lastSeq !== null && message.seq <= this.lastSeq) return; // seen already
    this.lastSeq = message.seq;
    this.recent.push({ seq: message.seq, type: message.type });
    if (this.recent.length > RECENT_KEPT) this.recent.shift();
    this.dispatchEvent(new CustomEvent("message", { detail: message }));
    this.dispatchEvent(new CustomEvent(message.type, { detail: message }));
  }

  _closed(code, reason) {
    this._setOffline(code, reason);
    if (!this._running) return;
    if (code === CLOSE_UNAUTHORIZED) {
      this._running = false;
      clearInterval(this._watchdog);
      this.dispatchEvent(new CustomEvent("unauthorized", { detail: { code, reason } }));
      return;
    }
    if (code === CLOSE_BAD_AFTER) this.lastSeq = null; // start afresh (the page reloads its state)
    const ceiling = Math.min(this.maxDelayMs, this.minDelayMs * 2 ** this._attempt);
    this._attempt += 1;
    const delayMs = ceiling / 2 + Math.random() * (ceiling / 2);
    clearTimeout(this._retryTimer);
    this._retryTimer = setTimeout(() => this._connect(), delayMs);
  }

  _setOffline(code, reason) {
    const wasOnline = this.online;
    this.online = false;
    if (wasOnline || this.connects === 0) {
      this.dispatchEvent(new CustomEvent("offline", { detail: { code, reason } }));
    }
  }

  _checkSilence() {
    const socket = this._socket;
    if (socket && socket.readyState === WebSocket.OPEN && this.online) {
      if (Date.now() - this.lastMessageAt > this.silenceMs) this._drop("no message from alertnet");
    } else if (socket && socket.readyState === WebSocket.CONNECTING) {
      if (Date.now() - this.lastMessageAt > this.silenceMs) this._drop("connecting took too long");
    }
  }
}

// --- small DOM and formatting helpers --------------------------------------------------

// h("p", {class: "x", onclick: fn}, "text", child) — builds elements without innerHTML, so
// nothing the server sends is ever parsed as markup.
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function formatDistance(metres) {
  if (metres === null || metres === undefined) return "distance unknown";
  if (metres < 1000) return `${Math.round(metres)} m`;
  return `${(metres / 1000).toFixed(metres < 10000 ? 1 : 0)} km`;
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

export function humanize(code) {
  if (!code) return "";
  return String(code).replace(/_/g, " ");
}

export const RISK_LABELS = { red: "RED risk", yellow: "YELLOW risk", green: "GREEN risk" };

// A risk class with colour AND text, never colour alone.
export function riskBadge(risk) {
  const known = Object.hasOwn(RISK_LABELS, risk || "") ? risk : "unknown";
  return h(
    "span",
    { class: `risk risk-${known}`, "data-risk": known },
    known === "unknown" ? "risk unknown" : RISK_LABELS[known],
  );
}

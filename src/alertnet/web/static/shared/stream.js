// The live feed (/api/v1/stream) over the session cookie, for both pages.
//
// Stream keeps the last seq, reconnects by itself with capped, jittered backoff and resumes
// with ?after=, so nothing is missed or repeated. Events (it is an EventTarget): "ready"
// {after, resync, first}, "message" {seq, type, data}, one event per message type
// ("offer.created", …), "online", "offline" {code, reason}, "unauthorized" (close 4401: log
// in again). .online, .lastSeq, .lastUrl, .connects and .recent (the last feed messages' seq
// and type) can be read.

const STREAM_PATH = "/api/v1/stream";
const CLOSE_BAD_AFTER = 4400;
const CLOSE_UNAUTHORIZED = 4401;
const RECENT_KEPT = 50;

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

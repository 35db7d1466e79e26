// The dispatch console (/console): live queue, map, alert detail and actions, device health,
// statistics. Plain ES module, no build step; shared helpers come from /static/common.js.
//
// State comes from the REST API once (and again after a stream resync), then from the live
// stream (/api/v1/stream): every message carries the full resource, so applying them in seq
// order converges on what the server has. Observers get the same page without any action
// (the server refuses them anyway) and only their mahalla (the server scopes every read).
//
// For tests and for curious operators, window.alertnetConsole exposes the state and stream.

import {
  ApiError,
  Stream,
  api,
  formatClock,
  formatCountdown,
  formatDistance,
  goToLogin,
  h,
  humanize,
  logout,
  requireLogin,
  riskBadge,
  serverNow,
} from "/static/common.js";

const API = "/api/v1";
const OPEN_STATES = new Set(["new", "offered", "accepted", "on_scene", "escalated"]);
// DESIGN §4: a post is eligible with a position under 300 s old, within 10 km of the alert.
const LOCATION_MAX_AGE_MS = 300 * 1000;
const MAX_DISTANCE_M = 10000;
const ALARM_PERIOD_MS = 2500;
const STATS_REFRESH_MS = 60 * 1000;
const DEFAULT_CENTRE = [41.3111, 69.2797];
const SVG_NS = "http://www.w3.org/2000/svg";

const CATEGORIES = {
  panic: { label: "Panic", letter: "P" },
  fire: { label: "Fire", letter: "F" },
  medical: { label: "Medical", letter: "M" },
  intrusion: { label: "Intrusion", letter: "I" },
  tamper: { label: "Tamper", letter: "T" },
  trouble: { label: "Device trouble", letter: "D" },
};

// Icons drawn for alertnet: 24×24 strokes in the category's colour.
const ICON_PATHS = {
  panic: ["M12 2.8 22 20.5H2Z", "M12 9v5", "M12 17.2v.3"],
  fire: ["M12 3c1 4 6 6 6 11a6 6 0 0 1-12 0c0-3 2-5 3-7 .5 2 1.5 3 3 3-1-2-1-5 0-7Z"],
  medical: ["M9.5 4h5v5.5H20v5h-5.5V20h-5v-5.5H4v-5h5.5Z"],
  intrusion: ["M3 11.5 12 4l9 7.5", "M5.5 10v10h13V10", "M10 20v-5h4v5"],
  tamper: ["M12 3 20 6v6c0 5-3.5 8-8 9-4.5-1-8-4-8-9V6Z", "M12 8v5", "M12 16v.3"],
  trouble: ["M3 8h15v8H3Z", "M18 10.5h2.5v3H18", "M7 12h4"],
};

const STATE_LABELS = {
  new: "New",
  offered: "Offered",
  accepted: "Accepted",
  on_scene: "On scene",
  escalated: "ESCALATED",
  closed: "Closed",
  cancelled: "Cancelled",
};

const TROUBLE_LABELS = {
  offline: "offline",
  low_battery: "low battery",
  tamper: "tamper",
  counter_reset: "counter reset",
  mains_lost: "mains lost",
};

const STAGES = {
  to_offer_s: "press → offer",
  to_accept_s: "press → accepted",
  to_on_scene_s: "press → on scene",
  to_close_s: "press → closed",
};

const S = {
  me: null,
  canAct: false,
  alerts: new Map(), // id → alert view (open alerts only)
  offers: new Map(), // alert id → its pending offer
  posts: new Map(),
  mahallas: new Map(),
  selectedId: null,
  detail: null,
  detailToken: 0,
  acknowledged: new Set(), // escalated alerts whose alarm a dispatcher silenced
  buffer: null, // stream messages held back while the state is (re)loaded over REST
  loaded: false,
  queueFilter: "all",
  tab: "detail",
  devicesShown: false,
  offlineSince: null,
  statsTimer: null,
  stats: null, // the last statistics loaded: {handlingToday, handlingWeek, countsToday, countsWeek}
};

const $ = (selector, root = document) => root.querySelector(selector);

// --- formatting -------------------------------------------------------------------------

function since(iso) {
  const ms = serverNow() - Date.parse(iso);
  return Number.isNaN(ms) ? "—" : formatDuration(Math.max(0, ms / 1000));
}

// "4 s", "3 min 05 s", "2 h 05 min"; short: "4s", "3m05s", "2h05m" (for dense tables).
function formatDuration(seconds, { short = false } = {}) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  if (short) {
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
    return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`;
  }
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${String(Math.floor(s / 60) % 60).padStart(2, "0")} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor(s / 3600) % 24} h`;
}

function formatWhen(iso) {
  if (!iso) return "—";
  const when = new Date(iso);
  const today = new Date(serverNow()).toDateString() === when.toDateString();
  return today ? formatClock(iso) : `${when.toLocaleDateString()} ${formatClock(iso)}`;
}

function categoryOf(alert) {
  return CATEGORIES[alert.category] || { label: humanize(alert.category), letter: "?" };
}

function troubleText(list) {
  return list
    .filter(Boolean)
    .map((kind) => TROUBLE_LABELS[kind] || humanize(kind))
    .join(", ");
}

function alertTitle(alert) {
  const extra = alert.category === "trouble" && alert.trouble ? ` (${troubleText(alert.trouble.split(","))})` : "";
  return `${categoryOf(alert).label}${extra} #${alert.id}`;
}

function isStale(post) {
  if (!post.location_at) return true;
  return serverNow() - Date.parse(post.location_at) > LOCATION_MAX_AGE_MS;
}

function positionText(post) {
  if (post.lat === null || post.lat === undefined) return "no position";
  if (!post.location_at) return "position time unknown (stale)";
  const age = since(post.location_at);
  return isStale(post) ? `${age} old — stale` : `${age} old`;
}

// --- DOM helpers ------------------------------------------------------------------------

function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== null && value !== undefined) element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

function categoryIcon(category) {
  const paths = ICON_PATHS[category] || ICON_PATHS.trouble;
  return svg(
    "svg",
    { class: "cat-icon", viewBox: "0 0 24 24", width: 20, height: 20, "aria-hidden": "true", focusable: "false" },
    paths.map((d) => svg("path", { d })),
  );
}

function stateBadge(state) {
  return h("span", { class: `state-badge state-${state}` }, STATE_LABELS[state] || humanize(state));
}

function drillBadge() {
  return h("span", { class: "drill-badge", title: "Training event, not a real emergency" }, "DRILL");
}

function troubleBadges(kinds) {
  return kinds.map((kind) => h("span", { class: `trouble-badge trouble-${kind}` }, TROUBLE_LABELS[kind] || humanize(kind)));
}

let sayTimer = null;

// One status line for what the dispatcher did; errors stay until the next message.
function say(text, kind = "info") {
  const status = $("#action-status");
  status.dataset.kind = kind;
  status.textContent = text;
  clearTimeout(sayTimer);
  if (kind !== "error") sayTimer = setTimeout(() => (status.textContent = ""), 20000);
}

function describeError(error) {
  if (error instanceof ApiError) {
    if (error.offline) return `no connection to alertnet (${error.detail})`;
    return `${error.detail || error.error} (HTTP ${error.status})`;
  }
  return String(error);
}

// Rebuilding a region must not throw the keyboard user out of it: elements that can hold
// focus carry data-key, and the focus goes back to the element with the same key.
function rebuildKeepingFocus(container, build) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.key : null;
  build();
  if (key) {
    const again = container.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again) again.focus();
  }
}

// --- the alarm for escalated alerts -----------------------------------------------------

class AlarmSound {
  constructor() {
    this.context = null;
    this.timer = null;
    this.beeps = 0;
  }

  // Browsers start audio only after a user gesture: any click or key press unlocks it.
  unlock() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    if (!this.context) this.context = new Context();
    if (this.context.state === "suspended") this.context.resume().catch(() => {});
  }

  get blocked() {
    return !this.context || this.context.state !== "running";
  }

  set(ringing) {
    if (ringing && !this.timer) {
      this.beep();
      this.timer = setInterval(() => this.beep(), ALARM_PERIOD_MS);
    } else if (!ringing && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  beep() {
    if (!this.context) this.unlock();
    const context = this.context;
    if (context && context.state === "running") {
      const start = context.currentTime + 0.01;
      [880, 660, 880].forEach((frequency, index) => {
        const at = start + index * 0.22;
        const oscillator = context.createOscillator();
        const gain = context.createGain();
        oscillator.type = "square";
        oscillator.frequency.value = frequency;
        gain.gain.setValueAtTime(0.0001, at);
        gain.gain.exponentialRampToValueAtTime(0.18, at + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.2);
        oscillator.connect(gain).connect(context.destination);
        oscillator.start(at);
        oscillator.stop(at + 0.21);
      });
      this.beeps += 1;
      document.body.dataset.beeps = String(this.beeps);
    }
    $("#sound-enable").hidden = !this.blocked;
  }
}

const alarm = new AlarmSound();

function waitingEscalated() {
  return [...S.alerts.values()].filter((alert) => alert.state === "escalated" && !S.acknowledged.has(alert.id));
}

function updateAlarm() {
  if (!S.canAct) {
    document.body.dataset.alarm = "silent"; // observers are not on call: no alarm to silence
    return;
  }
  const waiting = waitingEscalated();
  const bar = $("#alarm-bar");
  bar.hidden = waiting.length === 0;
  if (waiting.length) {
    const text = `${waiting.length} escalated alert${waiting.length > 1 ? "s" : ""} waiting: no post took ${waiting.length > 1 ? "them" : "it"}`;
    const label = $(".alarm-text", bar);
    if (label.textContent !== text) label.textContent = text;
  }
  document.body.dataset.alarm = waiting.length ? "ringing" : "silent";
  alarm.set(waiting.length > 0);
  if (!waiting.length) $("#sound-enable").hidden = true;
}

function acknowledge(ids) {
  for (const id of ids) S.acknowledged.add(id);
  say(ids.length === 1 ? `Alarm for alert #${ids[0]} acknowledged.` : `${ids.length} alarms acknowledged.`);
  scheduleRender();
}

// --- state changes ----------------------------------------------------------------------

function upsertAlert(view) {
  const previous = S.alerts.get(view.id);
  if (OPEN_STATES.has(view.state)) {
    // An alert that escalates again (after an offer that came to nothing) rings again.
    if (view.state === "escalated" && (!previous || previous.state !== "escalated")) {
      S.acknowledged.delete(view.id);
    }
    S.alerts.set(view.id, view);
  } else {
    S.alerts.delete(view.id);
    S.acknowledged.delete(view.id);
  }
  // Only an offered alert has a pending offer.
  if (view.state !== "offered") S.offers.delete(view.id);
}

function upsertOffer(offer) {
  if (offer.state === "pending") {
    S.offers.set(offer.alert_id, offer);
  } else if (S.offers.get(offer.alert_id)?.id === offer.id) {
    S.offers.delete(offer.alert_id);
  }
  if (!S.alerts.has(offer.alert_id) && offer.alert && OPEN_STATES.has(offer.alert.state)) {
    S.alerts.set(offer.alert_id, offer.alert);
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

function applyMessage(message) {
  const data = message.data || {};
  switch (message.type) {
    case "alert.opened":
    case "alert.updated":
      upsertAlert(data);
      if (data.id === S.selectedId) scheduleDetailRefresh();
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

async function loadPendingOffers(alerts) {
  const offered = alerts.filter((alert) => alert.state === "offered");
  const offers = new Map();
  const details = await Promise.all(
    offered.map((alert) => api(`${API}/alerts/${alert.id}`).catch(() => null)),
  );
  for (const detail of details) {
    const pending = detail && detail.offers.find((offer) => offer.state === "pending");
    if (pending) offers.set(detail.id, pending);
  }
  return offers;
}

// The whole picture over REST; stream messages that arrive meanwhile are applied after it.
async function reload() {
  if (S.buffer === null) S.buffer = [];
  try {
    const [alerts, posts, mahallas] = await Promise.all([
      api(`${API}/alerts?state=open&limit=1000`),
      S.canAct ? api(`${API}/posts`) : Promise.resolve([]),
      api(`${API}/mahallas`).catch(() => []),
    ]);
    const offers = await loadPendingOffers(alerts);
    const previous = S.alerts;
    S.alerts = new Map(alerts.map((alert) => [alert.id, alert]));
    for (const id of [...S.acknowledged]) {
      const was = previous.get(id);
      const now = S.alerts.get(id);
      if (!now || now.state !== "escalated" || (was && was.state !== "escalated")) S.acknowledged.delete(id);
    }
    S.offers = offers;
    S.posts = new Map(posts.map((post) => [post.id, post]));
    S.mahallas = new Map(mahallas.map((mahalla) => [mahalla.id, mahalla]));
    S.loaded = true;
    document.body.dataset.loaded = "true";
    fillMahallaFilter();
  } catch (error) {
    say(`Could not load the current state: ${describeError(error)}`, "error");
  } finally {
    const held = S.buffer || [];
    S.buffer = null;
    for (const message of held) applyMessage(message);
    scheduleRender();
    if (S.selectedId !== null) scheduleDetailRefresh();
    if (S.tab === "devices" || S.devicesShown) scheduleDevicesRefresh();
  }
}

// --- rendering, coalesced ---------------------------------------------------------------

let renderPending = false;

function scheduleRender() {
  if (renderPending) return;
  renderPending = true;
  setTimeout(() => {
    renderPending = false;
    renderQueue();
    renderMap();
    renderPosts();
    updateAlarm();
  }, 0);
}

function queueOrder(a, b) {
  return (
    (b.state === "escalated") - (a.state === "escalated") ||
    b.priority - a.priority ||
    Date.parse(a.opened_at) - Date.parse(b.opened_at) ||
    a.id - b.id
  );
}

function shownInQueue(alert) {
  if (S.queueFilter === "police") return alert.category !== "trouble";
  if (S.queueFilter === "trouble") return alert.category === "trouble";
  return true;
}

const queueRows = new Map(); // alert id → <li>

function rowParts(alert) {
  const category = categoryOf(alert);
  const offer = S.offers.get(alert.id);
  const parts = [
    h("span", { class: "cat" }, categoryIcon(alert.category), h("span", { class: "cat-label" }, category.label)),
    h("span", { class: "prio", title: "priority" }, `P${alert.priority}`),
    stateBadge(alert.state),
  ];
  if (alert.drill) parts.push(drillBadge());
  parts.push(
    h(
      "span",
      { class: "where" },
      h("span", { class: "mahalla" }, alert.mahalla || "no mahalla"),
      " ",
      riskBadge(alert.risk),
    ),
    h(
      "span",
      { class: "age", title: `opened at ${formatWhen(alert.opened_at)}` },
      "opened ",
      h("span", { "data-since": alert.opened_at }, since(alert.opened_at)),
      " ago",
    ),
  );
  if (alert.category === "trouble" && alert.trouble) {
    parts.push(h("span", { class: "trouble-list" }, troubleText(alert.trouble.split(","))));
  }
  if (alert.press_count > 1) parts.push(h("span", { class: "presses" }, `pressed ×${alert.press_count}`));
  if (alert.cancel_count > 0) parts.push(h("span", { class: "cancels" }, `cancel pressed ×${alert.cancel_count}`));
  if (offer) {
    parts.push(
      h(
        "span",
        { class: "offer" },
        `offered to ${offer.post} · `,
        h("span", { class: "countdown", "data-deadline": offer.deadline_at }, countdownText(offer.deadline_at)),
      ),
    );
  } else if (alert.post && (alert.state === "accepted" || alert.state === "on_scene")) {
    parts.push(h("span", { class: "offer held" }, `${alert.post} ${alert.state === "accepted" ? "on the way" : "on scene"}`));
  }
  return parts;
}

function countdownText(deadlineIso) {
  const left = Date.parse(deadlineIso) - serverNow();
  return left > 0 ? `${formatCountdown(left)} left to answer` : "answer overdue";
}

function createRow(alert) {
  const main = h("button", {
    type: "button",
    class: "row-main",
    "data-key": `row-${alert.id}`,
    onclick: () => select(alert.id, { pan: true }),
  });
  const li = h("li", { class: "alert-row", "data-alert-id": alert.id }, main);
  if (S.canAct) {
    li.append(
      h(
        "button",
        {
          type: "button",
          class: "action ack",
          "data-key": `ack-${alert.id}`,
          "aria-label": `Acknowledge the alarm of alert #${alert.id}`,
          onclick: () => acknowledge([alert.id]),
        },
        "Acknowledge",
      ),
    );
  }
  return li;
}

function updateRow(li, alert) {
  const unacknowledged = alert.state === "escalated" && !S.acknowledged.has(alert.id);
  li.className = [
    "alert-row",
    `cat-${alert.category}`,
    `state-${alert.state}`,
    alert.drill ? "drill" : "",
    unacknowledged ? "unacknowledged" : "",
    alert.id === S.selectedId ? "selected" : "",
  ]
    .filter(Boolean)
    .join(" ");
  li.dataset.state = alert.state;
  const main = $(".row-main", li);
  if (alert.id === S.selectedId) main.setAttribute("aria-current", "true");
  else main.removeAttribute("aria-current");
  const signature = JSON.stringify([alert, S.offers.get(alert.id)?.id ?? null, S.offers.get(alert.id)?.deadline_at ?? null]);
  if (li.dataset.signature !== signature) {
    li.dataset.signature = signature;
    main.replaceChildren(...rowParts(alert));
  }
  const ack = $(".ack", li);
  if (ack) ack.hidden = !unacknowledged;
}

function renderQueue() {
  const list = $("#queue-list");
  const alerts = [...S.alerts.values()].filter(shownInQueue).sort(queueOrder);
  const wanted = new Set(alerts.map((alert) => alert.id));
  for (const [id, li] of queueRows) {
    if (!wanted.has(id)) {
      li.remove();
      queueRows.delete(id);
    }
  }
  const rows = alerts.map((alert) => {
    let li = queueRows.get(alert.id);
    if (!li) {
      li = createRow(alert);
      queueRows.set(alert.id, li);
    }
    updateRow(li, alert);
    return li;
  });
  const inOrder = rows.length === list.children.length && rows.every((li, index) => list.children[index] === li);
  if (!inOrder) {
    const active = document.activeElement;
    list.append(...rows);
    if (active && list.contains(active) && document.activeElement !== active) active.focus();
  }
  const escalated = alerts.filter((alert) => alert.state === "escalated").length;
  $("#queue-count").textContent = `(${alerts.length}${escalated ? `, ${escalated} escalated` : ""})`;
  $("#queue-empty").hidden = alerts.length > 0 || !S.loaded;
}

function tick() {
  for (const element of document.querySelectorAll("[data-since]")) {
    element.textContent = since(element.dataset.since);
  }
  for (const element of document.querySelectorAll("[data-deadline]")) {
    element.textContent = countdownText(element.dataset.deadline);
  }
}

// --- the map ----------------------------------------------------------------------------

const M = {
  map: null,
  alerts: null,
  posts: null,
  devices: null,
  mahallas: null,
  alertMarkers: new Map(),
  postMarkers: new Map(),
  fitted: false,
  tilesLoaded: 0,
};

function initMap(tileUrl) {
  if (typeof window.L === "undefined") {
    $("#map").append(h("p", { class: "empty" }, "The map library could not be loaded; the queue and panels still work."));
    return;
  }
  const L = window.L;
  M.map = L.map("map", { zoomControl: true, keyboard: true }).setView(DEFAULT_CENTRE, 12);
  if (tileUrl) {
    const tiles = L.tileLayer(tileUrl, { maxZoom: 19, attribution: "© OpenStreetMap contributors" });
    tiles.on("tileerror", () => {
      if (M.tilesLoaded === 0) mapNote("Map tiles could not be loaded: alerts, posts and devices are drawn on a plain background.");
    });
    tiles.on("tileload", () => {
      M.tilesLoaded += 1;
      mapNote(null);
    });
    tiles.addTo(M.map);
  } else {
    mapNote("No tile server is configured: a plain background is shown.");
  }
  M.mahallas = L.layerGroup().addTo(M.map);
  M.devices = L.layerGroup();
  M.posts = L.layerGroup().addTo(M.map);
  M.alerts = L.layerGroup().addTo(M.map);
}

function mapNote(text) {
  const note = $("#map-note");
  note.hidden = !text;
  $("#map").dataset.tiles = text ? "unavailable" : "loaded";
  if (text && note.textContent !== text) note.textContent = text;
}

function labelMarker(marker, label) {
  const element = marker.getElement();
  if (element) element.setAttribute("aria-label", label);
}

function renderMap() {
  if (!M.map) return;
  const L = window.L;
  // Mahalla centres give the map its bearings when there are no tiles.
  if (M.mahallas.getLayers().length !== [...S.mahallas.values()].filter((m) => m.lat !== null).length) {
    M.mahallas.clearLayers();
    for (const mahalla of S.mahallas.values()) {
      if (mahalla.lat === null || mahalla.lon === null) continue;
      const label = h("span", { class: `mahalla-label mahalla-risk-${mahalla.risk}` }, `${mahalla.name} · ${mahalla.risk}`);
      L.marker([mahalla.lat, mahalla.lon], {
        icon: L.divIcon({ className: "mahalla-marker", html: label, iconSize: null }),
        interactive: false,
        keyboard: false,
      }).addTo(M.mahallas);
    }
  }

  const seen = new Set();
  for (const alert of S.alerts.values()) {
    seen.add(alert.id);
    const selected = alert.id === S.selectedId;
    const className = [
      "alert-marker",
      `cat-${alert.category}`,
      `state-${alert.state}`,
      alert.drill ? "drill" : "",
      selected ? "selected" : "",
    ]
      .filter(Boolean)
      .join(" ");
    const label = `${alertTitle(alert)}, ${STATE_LABELS[alert.state] || alert.state}, priority ${alert.priority}, ${alert.mahalla || "no mahalla"}${alert.drill ? ", DRILL" : ""}`;
    let entry = M.alertMarkers.get(alert.id);
    if (!entry) {
      const marker = L.marker([alert.lat, alert.lon], { keyboard: true, title: label, riseOnHover: true });
      marker.on("click", () => select(alert.id));
      // Markers are focusable (keyboard: true) but Leaflet only reports their key presses.
      marker.on("keydown", (event) => {
        const key = event.originalEvent.key;
        if (key === "Enter" || key === " ") {
          event.originalEvent.preventDefault();
          select(alert.id);
        }
      });
      entry = { marker, className: null };
      M.alertMarkers.set(alert.id, entry);
      marker.addTo(M.alerts);
    }
    entry.marker.setLatLng([alert.lat, alert.lon]);
    if (entry.className !== className) {
      entry.className = className;
      const pin = h("span", { class: "pin", "data-alert-id": alert.id }, categoryOf(alert).letter);
      entry.marker.setIcon(L.divIcon({ className, html: pin, iconSize: [30, 30], iconAnchor: [15, 15] }));
    }
    entry.marker.setZIndexOffset(alert.state === "escalated" ? 1000 : selected ? 900 : alert.priority);
    labelMarker(entry.marker, label);
    const element = entry.marker.getElement();
    if (element) element.title = label;
  }
  for (const [id, entry] of M.alertMarkers) {
    if (!seen.has(id)) {
      entry.marker.remove();
      M.alertMarkers.delete(id);
    }
  }
  renderPostMarkers();
  if (!M.fitted && S.loaded) {
    M.fitted = true;
    fitMap(true);
  }
}

function renderPostMarkers() {
  if (!M.map) return;
  const L = window.L;
  const seen = new Set();
  for (const post of S.posts.values()) {
    if (post.lat === null || post.lon === null || post.lat === undefined) continue;
    seen.add(post.id);
    const stale = isStale(post);
    const offerFor = [...S.offers.values()].find((offer) => offer.post_id === post.id);
    const className = ["post-marker", `status-${post.status}`, stale ? "stale" : ""].filter(Boolean).join(" ");
    const word = { available: "available", busy: "busy", off_duty: "off duty" }[post.status] || humanize(post.status);
    const text = `${word}${stale ? " · stale" : ""}${offerFor ? " · offer" : ""}`;
    const label = `Post ${post.callsign}, ${word}, position ${positionText(post)}${offerFor ? `, offered alert #${offerFor.alert_id}` : ""}`;
    let entry = M.postMarkers.get(post.id);
    if (!entry) {
      const marker = L.marker([post.lat, post.lon], { keyboard: false, title: label });
      entry = { marker, signature: null };
      M.postMarkers.set(post.id, entry);
      marker.addTo(M.posts);
    }
    entry.marker.setLatLng([post.lat, post.lon]);
    const signature = `${className}|${text}|${post.callsign}`;
    if (entry.signature !== signature) {
      entry.signature = signature;
      const pin = h("span", { class: "post-pin", "data-post-id": post.id }, h("b", {}, post.callsign), h("small", {}, text));
      entry.marker.setIcon(L.divIcon({ className, html: pin, iconSize: null, iconAnchor: [0, 0] }));
    }
    const element = entry.marker.getElement();
    if (element) element.title = label;
  }
  for (const [id, entry] of M.postMarkers) {
    if (!seen.has(id)) {
      entry.marker.remove();
      M.postMarkers.delete(id);
    }
  }
}

function fitMap(everything) {
  if (!M.map) return;
  const L = window.L;
  const points = [...S.alerts.values()].map((alert) => [alert.lat, alert.lon]);
  if (everything || points.length === 0) {
    for (const post of S.posts.values()) if (post.lat !== null && post.lat !== undefined) points.push([post.lat, post.lon]);
    for (const mahalla of S.mahallas.values()) if (mahalla.lat !== null) points.push([mahalla.lat, mahalla.lon]);
  }
  if (points.length === 0) return;
  if (points.length === 1) M.map.setView(points[0], 15);
  else M.map.fitBounds(L.latLngBounds(points), { padding: [40, 40], maxZoom: 15 });
}

async function renderDeviceLayer() {
  if (!M.map) return;
  const L = window.L;
  if (!S.devicesShown) {
    M.devices.remove();
    return;
  }
  let devices;
  try {
    devices = await api(`${API}/devices?limit=5000`);
  } catch (error) {
    say(`Could not load the devices: ${describeError(error)}`, "error");
    return;
  }
  M.devices.clearLayers();
  for (const device of devices) {
    const troubled = device.troubles.length > 0;
    const label = `Device ${device.eui} (${humanize(device.kind)}), ${device.status}${troubled ? `, trouble: ${troubleText(device.troubles)}` : ""}`;
    L.circleMarker([device.lat, device.lon], {
      radius: troubled ? 7 : 5,
      className: `device-marker status-${device.status}${troubled ? " troubled" : ""}`,
      weight: troubled ? 3 : 1,
    })
      .bindTooltip(label)
      .addTo(M.devices);
  }
  M.devices.addTo(M.map);
  document.body.dataset.devicesOnMap = String(devices.length);
}

// --- the detail panel -------------------------------------------------------------------

let detailTimer = null;

function scheduleDetailRefresh() {
  clearTimeout(detailTimer);
  detailTimer = setTimeout(() => loadDetail(), 150);
}

async function select(id, { pan = false } = {}) {
  S.selectedId = id;
  showTab("detail");
  scheduleRender();
  if (pan && M.map) {
    const alert = S.alerts.get(id);
    if (alert && !M.map.getBounds().contains([alert.lat, alert.lon])) M.map.panTo([alert.lat, alert.lon]);
  }
  if (S.detail && S.detail.id !== id) {
    closeDrawer();
    $("#detail").replaceChildren(h("p", { class: "empty" }, `Loading alert #${id}…`));
  }
  await loadDetail();
}

async function loadDetail() {
  const id = S.selectedId;
  if (id === null) return;
  const token = ++S.detailToken;
  try {
    const detail = await api(`${API}/alerts/${id}`);
    if (token !== S.detailToken) return;
    S.detail = detail;
    renderDetail();
  } catch (error) {
    if (token !== S.detailToken) return;
    $("#detail").replaceChildren(h("p", { class: "error" }, `Alert #${id} could not be loaded: ${describeError(error)}`));
  }
}

function row(label, ...value) {
  return [h("dt", {}, label), h("dd", {}, ...value)];
}

function renderDetail() {
  const detail = S.detail;
  const container = $("#detail");
  $("#detail-empty").hidden = true;
  const open = OPEN_STATES.has(detail.state);
  const pending = detail.offers.find((offer) => offer.state === "pending");
  rebuildKeepingFocus(container, () => {
    const drawer = $("#detail-drawer", container);
    const keepDrawer = drawer && drawer.dataset.alertId === String(detail.id) && open ? drawer : null;

    const heading = h(
      "h2",
      { class: "detail-title", id: "detail-title", tabindex: "-1" },
      categoryIcon(detail.category),
      ` ${alertTitle(detail)} `,
      stateBadge(detail.state),
      detail.drill ? [" ", drillBadge()] : null,
    );
    const banners = [];
    if (detail.drill) banners.push(h("p", { class: "banner drill-banner" }, "DRILL — a training event, routed like a real one and left out of statistics."));
    if (detail.state === "escalated") banners.push(h("p", { class: "banner escalated-banner" }, "ESCALATED — no post took this alert. It goes to the first post that becomes eligible, unless a dispatcher assigns one."));
    if (detail.cancel_count > 0) {
      banners.push(
        h("p", { class: "banner cancel-banner" }, `Cancel pressed ${detail.cancel_count}× on the device. A cancel never stops a dispatch (the person may be under duress).`),
      );
    }

    const facts = h(
      "dl",
      { class: "facts" },
      row("Priority", String(detail.priority)),
      row("Opened", `${formatWhen(detail.opened_at)} (`, h("span", { "data-since": detail.opened_at }, since(detail.opened_at)), " ago)"),
      row("Mahalla", detail.mahalla || "none", " ", riskBadge(detail.risk)),
      row("Device", h("code", {}, detail.device_eui), ` ${humanize(detail.device_kind)}`),
      row("Address", detail.address || "—"),
      row("Location", `${detail.lat.toFixed(5)}, ${detail.lon.toFixed(5)}`),
      row("Presses", `${detail.press_count}${detail.press_count >= 3 ? " (3+ presses raise the priority)" : ""}`),
      detail.category === "trouble" ? row("Trouble", troubleText((detail.trouble || "").split(",")) || "—") : null,
      pending
        ? row("Offered to", `${pending.post} (${formatDistance(pending.distance_m)}) · `, h("span", { "data-deadline": pending.deadline_at }, countdownText(pending.deadline_at)))
        : null,
      detail.post ? row("Post", detail.post) : null,
      row("Refusals", String(detail.refusal_count)),
      row("First offer", formatWhen(detail.first_offered_at)),
      row("Accepted", formatWhen(detail.accepted_at)),
      row("On scene", formatWhen(detail.on_scene_at)),
      detail.escalated_at ? row("Escalated", formatWhen(detail.escalated_at)) : null,
      detail.closed_at ? row(detail.state === "cancelled" ? "Cancelled" : "Closed", formatWhen(detail.closed_at)) : null,
      detail.outcome ? row("Outcome", humanize(detail.outcome)) : null,
      detail.note ? row("Note", detail.note) : null,
    );

    const parts = [heading, ...banners, facts];
    if (S.canAct && open) parts.push(actionBar(detail, pending));
    if (keepDrawer) parts.push(keepDrawer);
    parts.push(offersSection(detail), eventsSection(detail), auditSection(detail));
    container.replaceChildren(...parts);
  });
}

function actionBar(detail, pending) {
  const buttons = [];
  if (detail.state === "escalated" && !S.acknowledged.has(detail.id)) {
    buttons.push(
      h("button", { type: "button", class: "action ack", "data-key": "detail-ack", onclick: () => acknowledge([detail.id]) }, "Acknowledge alarm"),
    );
  }
  if (detail.category !== "trouble") {
    buttons.push(
      h(
        "button",
        { type: "button", class: "action assign", "data-key": "assign", "aria-expanded": String(Boolean($("#detail-drawer.candidates"))), onclick: () => openCandidates(detail.id) },
        "Assign to a post…",
      ),
    );
  }
  if (pending) {
    buttons.push(
      h(
        "button",
        { type: "button", class: "action withdraw", "data-key": "withdraw", onclick: () => withdraw(pending) },
        `Withdraw the offer to ${pending.post}`,
      ),
    );
  }
  buttons.push(
    h("button", { type: "button", class: "action cancel danger", "data-key": "cancel", onclick: () => openCancel(detail.id) }, "Cancel alert…"),
  );
  return h("div", { class: "actions", role: "group", "aria-label": "Actions on this alert" }, buttons);
}

function table(caption, headers, rows, { empty = "none" } = {}) {
  if (rows.length === 0) return h("p", { class: "empty" }, `${caption}: ${empty}.`);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "data-table compact" },
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headers.map((header) => h("th", { scope: "col" }, header)))),
      h("tbody", {}, rows),
    ),
  );
}

function offersSection(detail) {
  const rows = detail.offers.map((offer) =>
    h(
      "tr",
      { class: `offer-row offer-${offer.state}` },
      h("td", {}, offer.post || `post ${offer.post_id}`),
      h("td", {}, humanize(offer.state)),
      h("td", {}, formatWhen(offer.offered_at)),
      h("td", {}, offer.state === "pending" ? h("span", { "data-deadline": offer.deadline_at }, countdownText(offer.deadline_at)) : formatWhen(offer.decided_at)),
      h("td", {}, formatDistance(offer.distance_m)),
      h("td", {}, offer.reason || ""),
    ),
  );
  return h("section", { class: "detail-section" }, table("Offer history", ["Post", "State", "Offered", "Deadline / decided", "Distance", "Reason"], rows));
}

function eventsSection(detail) {
  const rows = [];
  for (const event of detail.events) {
    const cancel = event.code === "cancel";
    rows.push(
      h(
        "tr",
        { class: cancel ? "event-row event-cancel" : "event-row" },
        h("td", {}, String(event.counter)),
        h("td", {}, cancel ? h("strong", {}, "CANCEL pressed") : humanize(event.code), event.drill ? [" ", drillBadge()] : null),
        h("td", {}, formatWhen(event.occurred_at)),
        h("td", {}, formatWhen(event.received_at)),
        h(
          "td",
          {},
          `${event.reception_count}× `,
          event.receptions.length
            ? h(
                "details",
                {},
                h("summary", {}, `${event.gateways.length ? event.gateways.join(", ") : event.receptions.map((r) => r.transport).join(", ")}`),
                h(
                  "ul",
                  { class: "receptions" },
                  event.receptions.map((reception) =>
                    h(
                      "li",
                      {},
                      `${reception.transport}${reception.gateway_id ? ` via ${reception.gateway_id}` : ""}`,
                      reception.rssi !== null ? ` · RSSI ${reception.rssi} dBm` : "",
                      reception.snr !== null ? ` · SNR ${reception.snr} dB` : "",
                      ` · ${formatClock(reception.received_at)}`,
                    ),
                  ),
                ),
              )
            : "",
        ),
        h("td", {}, event.best_rssi !== null ? `${event.best_rssi} dBm / ${event.best_snr ?? "—"} dB` : "—"),
      ),
    );
  }
  return h(
    "section",
    { class: "detail-section" },
    table("Events and receptions", ["Counter", "Event", "Happened", "Received", "Receptions / gateways", "Best RSSI / SNR"], rows),
  );
}

function auditSection(detail) {
  const rows = detail.audit.map((entry) =>
    h(
      "tr",
      { class: `audit-row audit-to-${entry.to}` },
      h("td", {}, formatWhen(entry.at)),
      h("td", { class: "audit-actor" }, entry.actor),
      h("td", {}, `${entry.from ? STATE_LABELS[entry.from] || entry.from : "—"} → ${STATE_LABELS[entry.to] || entry.to}`),
      h("td", {}, entry.reason || ""),
    ),
  );
  return h("section", { class: "detail-section" }, table("Audit trail", ["When", "Who", "Change", "Why"], rows));
}

// --- actions ----------------------------------------------------------------------------

function closeDrawer() {
  const drawer = $("#detail-drawer");
  if (drawer) drawer.remove();
}

function drawer(kind, alertId, ...children) {
  closeDrawer();
  const element = h(
    "div",
    {
      id: "detail-drawer",
      class: `drawer ${kind}`,
      "data-alert-id": alertId,
      onkeydown: (event) => {
        if (event.key === "Escape") {
          closeDrawer();
          $('[data-key="assign"], [data-key="cancel"]')?.focus();
        }
      },
    },
    ...children,
  );
  const actions = $("#detail .actions");
  if (actions) actions.after(element);
  else $("#detail").append(element);
  return element;
}

async function openCandidates(alertId) {
  const panel = drawer("candidates", alertId, h("h3", {}, "Assign to a post"), h("p", { class: "empty" }, "Loading the nearest posts…"));
  let candidates;
  try {
    candidates = await api(`${API}/alerts/${alertId}/candidates`);
  } catch (error) {
    panel.replaceChildren(h("p", { class: "error" }, `Could not list posts: ${describeError(error)}`));
    return;
  }
  if (!panel.isConnected) return;
  const items = candidates.map((post) => {
    const offer = [...S.offers.values()].find((candidate) => candidate.post_id === post.id);
    const beyond = post.distance_m !== null && post.distance_m > MAX_DISTANCE_M;
    const eligible = post.eligible && !beyond;
    const notes = [eligible ? "eligible" : "not eligible for automatic offers"];
    if (post.status !== "available") notes.push(humanize(post.status));
    notes.push(post.location_fresh ? "position fresh" : "position stale");
    if (beyond) notes.push("beyond 10 km");
    if (offer && offer.alert_id !== alertId) notes.push(`has an offer for alert #${offer.alert_id} (it will be withdrawn)`);
    if (offer && offer.alert_id === alertId) notes.push("already offered this alert");
    return h(
      "li",
      { class: `candidate ${eligible ? "eligible" : "ineligible"}`, "data-post-id": post.id },
      h("span", { class: "candidate-name" }, post.callsign),
      h("span", { class: "candidate-distance" }, formatDistance(post.distance_m)),
      h("span", { class: "candidate-status" }, humanize(post.status)),
      h("span", { class: "candidate-notes" }, notes.join(" · ")),
      h(
        "button",
        {
          type: "button",
          class: "action assign-to",
          "data-key": `assign-${post.id}`,
          "aria-label": `Assign alert #${alertId} to ${post.callsign}, ${formatDistance(post.distance_m)}`,
          onclick: (event) => assign(alertId, post, event.currentTarget),
        },
        "Assign",
      ),
    );
  });
  panel.replaceChildren(
    h("h3", { id: "candidates-heading" }, `Assign alert #${alertId} to a post`),
    items.length
      ? h("ol", { class: "candidates", "aria-labelledby": "candidates-heading" }, items)
      : h("p", { class: "empty" }, "No post is on duty."),
    h("button", { type: "button", class: "close-drawer", "data-key": "close-drawer", onclick: () => closeDrawer() }, "Close"),
  );
  const first = $("button.assign-to", panel);
  if (first) first.focus();
}

async function assign(alertId, post, button) {
  button.disabled = true;
  say(`Assigning alert #${alertId} to ${post.callsign}…`);
  try {
    await api(`${API}/alerts/${alertId}/assign`, { method: "POST", body: { post_id: post.id } });
    say(`Alert #${alertId} offered to ${post.callsign}; waiting for the crew to accept.`, "success");
    closeDrawer();
    await loadDetail();
    $('[data-key="assign"]')?.focus();
  } catch (error) {
    button.disabled = false;
    say(`Assigning to ${post.callsign} failed: ${describeError(error)}`, "error");
  }
}

async function withdraw(offer) {
  say(`Withdrawing the offer to ${offer.post}…`);
  try {
    await api(`${API}/offers/${offer.id}/withdraw`, { method: "POST" });
    say(`Offer to ${offer.post} withdrawn; alert #${offer.alert_id} goes to the next post.`, "success");
    await loadDetail();
  } catch (error) {
    say(`Withdrawing failed: ${describeError(error)}`, "error");
  }
}

function openCancel(alertId) {
  const reason = h("textarea", { id: "cancel-reason", name: "reason", rows: 2, required: true, maxlength: 500, "data-key": "cancel-reason" });
  const form = h(
    "form",
    {
      class: "cancel-form",
      onsubmit: (event) => {
        event.preventDefault();
        cancelAlert(alertId, reason.value.trim(), form);
      },
    },
    h("label", { for: "cancel-reason" }, `Reason for cancelling alert #${alertId} (recorded in the audit with your name)`),
    reason,
    h(
      "div",
      { class: "form-buttons" },
      h("button", { type: "submit", class: "action danger confirm-cancel", "data-key": "confirm-cancel" }, `Cancel alert #${alertId}`),
      h("button", { type: "button", class: "close-drawer", "data-key": "close-drawer", onclick: () => closeDrawer() }, "Keep the alert"),
    ),
  );
  drawer("cancelling", alertId, form);
  reason.focus();
}

async function cancelAlert(alertId, reason, form) {
  if (!reason) {
    say("Give a reason to cancel the alert.", "error");
    $("#cancel-reason")?.focus();
    return;
  }
  for (const button of form.querySelectorAll("button")) button.disabled = true;
  try {
    await api(`${API}/alerts/${alertId}/cancel`, { method: "POST", body: { reason } });
    say(`Alert #${alertId} cancelled.`, "success");
    closeDrawer();
    await loadDetail();
    $("#detail-title")?.focus();
  } catch (error) {
    for (const button of form.querySelectorAll("button")) button.disabled = false;
    say(`Cancelling failed: ${describeError(error)}`, "error");
  }
}

// --- device health ----------------------------------------------------------------------

let devicesTimer = null;

function scheduleDevicesRefresh() {
  clearTimeout(devicesTimer);
  devicesTimer = setTimeout(() => {
    if (S.tab === "devices") loadDevices();
    if (S.devicesShown) renderDeviceLayer();
  }, 1000);
}

function fillMahallaFilter() {
  const select = $("#devices-mahalla");
  const chosen = select.value;
  const options = [];
  if (S.canAct) options.push(h("option", { value: "" }, "all mahallas"));
  for (const mahalla of S.mahallas.values()) {
    options.push(h("option", { value: mahalla.id }, `${mahalla.name} (${mahalla.risk})`));
  }
  select.replaceChildren(...options);
  if ([...select.options].some((option) => option.value === chosen)) select.value = chosen;
}

async function loadDevices() {
  const mahalla = $("#devices-mahalla").value;
  const filter = $("#devices-filter").value;
  const query = new URLSearchParams({ limit: "2000" });
  if (mahalla) query.set("mahalla_id", mahalla);
  if (filter === "trouble") query.set("trouble", "true");
  if (filter === "offline") query.set("status", "offline");
  const body = $("#devices-table tbody");
  let devices;
  try {
    devices = await api(`${API}/devices?${query}`);
  } catch (error) {
    $("#devices-summary").textContent = `Could not load the devices: ${describeError(error)}`;
    return;
  }
  const troubled = devices.filter((device) => device.troubles.length).length;
  $("#devices-summary").textContent = `${devices.length} device${devices.length === 1 ? "" : "s"} shown, ${troubled} with a trouble.`;
  rebuildKeepingFocus(body, () => {
    body.replaceChildren(
      ...devices.map((device) =>
        h(
          "tr",
          { class: `device-row status-${device.status}${device.troubles.length ? " troubled" : ""}`, "data-eui": device.eui },
          h(
            "td",
            {},
            h("code", {}, device.eui),
            h("br"),
            h("small", {}, [humanize(device.kind), device.name || device.address].filter(Boolean).join(" · ")),
            h("br"),
            h("small", {}, device.mahalla || "no mahalla", " ", device.risk ? riskBadge(device.risk) : null),
          ),
          h(
            "td",
            {},
            h("span", { class: `status-badge device-status-${device.status}` }, device.status),
            h("br"),
            h("span", { class: device.battery !== null && device.battery < 20 ? "battery-low" : "" }, batteryText(device.battery)),
          ),
          h("td", {}, device.last_seen_at ? h("span", { "data-since": device.last_seen_at, title: formatWhen(device.last_seen_at) }, since(device.last_seen_at)) : "never"),
          h("td", {}, device.troubles.length ? troubleBadges(device.troubles) : "none"),
          h(
            "td",
            {},
            h(
              "button",
              { type: "button", class: "locate", "data-key": `locate-${device.eui}`, "aria-label": `Show device ${device.eui} on the map`, onclick: () => locate(device) },
              "Locate",
            ),
          ),
        ),
      ),
    );
  });
}

function batteryText(battery) {
  if (battery === null || battery === undefined) return "unknown";
  if (battery === 255) return "mains";
  return `${battery} %${battery < 20 ? " (low)" : ""}`;
}

function locate(device) {
  if (!M.map) return;
  if (!S.devicesShown) {
    $("#show-devices").checked = true;
    S.devicesShown = true;
    renderDeviceLayer();
  }
  M.map.setView([device.lat, device.lon], 17);
}

// --- posts ------------------------------------------------------------------------------

function renderPosts() {
  if (!S.canAct) return;
  const body = $("#posts-table tbody");
  const posts = [...S.posts.values()].sort((a, b) => a.callsign.localeCompare(b.callsign));
  const available = posts.filter((post) => post.status === "available" && !isStale(post)).length;
  $("#posts-note").textContent = `${posts.length} posts, ${available} available with a fresh position.`;
  rebuildKeepingFocus(body, () => {
    body.replaceChildren(
      ...posts.map((post) => {
        const offer = [...S.offers.values()].find((candidate) => candidate.post_id === post.id);
        return h(
          "tr",
          { class: `post-row status-${post.status}${isStale(post) ? " stale" : ""}` },
          h("td", {}, post.callsign),
          h("td", {}, h("span", { class: `status-badge post-status-${post.status}` }, humanize(post.status))),
          h("td", {}, positionText(post)),
          h("td", {}, offer ? `alert #${offer.alert_id}` : "—"),
          h(
            "td",
            {},
            post.lat !== null && post.lat !== undefined
              ? h("button", { type: "button", class: "locate", "data-key": `post-${post.id}`, "aria-label": `Show post ${post.callsign} on the map`, onclick: () => M.map && M.map.setView([post.lat, post.lon], 16) }, "Locate")
              : null,
          ),
        );
      }),
    );
  });
}

// --- statistics -------------------------------------------------------------------------

function daysSinceMidnight() {
  const now = new Date(serverNow());
  const midnight = new Date(now);
  midnight.setHours(0, 0, 0, 0);
  return Math.max((now - midnight) / 86400000, 1 / 1440);
}

async function loadStats() {
  const today = daysSinceMidnight().toFixed(6);
  try {
    const [handlingToday, handlingWeek, countsToday, countsWeek] = await Promise.all([
      api(`${API}/stats/handling?days=${today}&group_by=mahalla`),
      api(`${API}/stats/handling?days=7&group_by=mahalla`),
      api(`${API}/stats/counts?days=${today}`),
      api(`${API}/stats/counts?days=7`),
    ]);
    S.stats = { handlingToday, handlingWeek, countsToday, countsWeek };
    renderStats();
  } catch (error) {
    $("#stats-chart").replaceChildren(h("p", { class: "error" }, `Statistics could not be loaded: ${describeError(error)}`));
  }
}

function statsGroups() {
  const groups = new Map();
  const add = (rows, period) => {
    for (const row of rows) {
      const key = row.id === null ? "none" : String(row.id);
      if (!groups.has(key)) groups.set(key, { name: row.name || "no mahalla", today: null, week: null });
      groups.get(key)[period] = row;
    }
  };
  add(S.stats.handlingToday, "today");
  add(S.stats.handlingWeek, "week");
  return [...groups.values()].sort((a, b) => a.name.localeCompare(b.name));
}

function renderStats() {
  if (!S.stats) return;
  const stage = $("#stats-stage").value;
  const groups = statsGroups();
  renderStatsChart(groups, stage);
  const body = $("#stats-table tbody");
  const cell = (row, name) => {
    const figures = row && row[name];
    if (!figures || !figures.count) return h("td", {}, "—");
    const short = (value) => formatDuration(value, { short: true });
    return h("td", { class: "figures" }, `${short(figures.p50)} / ${short(figures.p80)} / ${short(figures.p95)}`);
  };
  const rows = [];
  for (const group of groups) {
    for (const [period, label] of [["today", "today"], ["week", "7 days"]]) {
      const row = group[period];
      rows.push(
        h(
          "tr",
          {},
          h("th", { scope: "row" }, group.name),
          h("td", {}, label),
          h("td", {}, row ? String(row.alerts) : "0"),
          Object.keys(STAGES).map((name) => cell(row, name)),
        ),
      );
    }
  }
  body.replaceChildren(...rows);
  renderCounts();
}

function renderStatsChart(groups, stage) {
  const container = $("#stats-chart");
  if (groups.length === 0) {
    container.replaceChildren(h("p", { class: "empty" }, "No alerts in the last 7 days."));
    return;
  }
  const width = 420;
  const labelWidth = 112;
  const valueWidth = 128;
  const barWidth = width - labelWidth - valueWidth - 8;
  const barHeight = 12;
  const groupHeight = 2 * (barHeight + 4) + 10;
  const height = groups.length * groupHeight + 4;
  let max = 1;
  for (const group of groups) {
    for (const row of [group.today, group.week]) {
      const figures = row && row[stage];
      if (figures && figures.count) max = Math.max(max, figures.p95 ?? figures.p50 ?? 0);
    }
  }
  const scale = (seconds) => (Math.max(0, seconds) / max) * barWidth;
  const summary = [];
  const elements = [];
  groups.forEach((group, index) => {
    const top = index * groupHeight + 2;
    elements.push(svg("text", { x: 0, y: top + barHeight + 2, class: "chart-label" }, group.name.length > 16 ? `${group.name.slice(0, 15)}…` : group.name));
    [["today", "today"], ["week", "7 d"]].forEach(([period, label], row) => {
      const y = top + row * (barHeight + 4);
      const figures = group[period] && group[period][stage];
      elements.push(svg("text", { x: labelWidth - 4, y: y + barHeight - 2, class: "chart-period", "text-anchor": "end" }, label));
      if (!figures || !figures.count) {
        elements.push(svg("text", { x: labelWidth + 2, y: y + barHeight - 2, class: "chart-value muted" }, "no data"));
        summary.push(`${group.name} ${label}: no data`);
        return;
      }
      const p50 = scale(figures.p50);
      const p95 = scale(figures.p95 ?? figures.p50);
      elements.push(
        svg("rect", { x: labelWidth, y, width: Math.max(p95, 1), height: barHeight, class: `bar-p95 period-${period}` }),
        svg("rect", { x: labelWidth, y, width: Math.max(p50, 1), height: barHeight, class: `bar-p50 period-${period}` }),
        svg("line", { x1: labelWidth + scale(figures.p80 ?? figures.p50), x2: labelWidth + scale(figures.p80 ?? figures.p50), y1: y, y2: y + barHeight, class: "bar-p80" }),
        svg(
          "text",
          { x: labelWidth + barWidth + 6, y: y + barHeight - 2, class: "chart-value" },
          `${formatDuration(figures.p50)} · p95 ${formatDuration(figures.p95)}`,
        ),
      );
      summary.push(`${group.name} ${label}: median ${formatDuration(figures.p50)}, p95 ${formatDuration(figures.p95)} (${figures.count} alerts)`);
    });
  });
  const chart = svg(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": `Handling time ${STAGES[stage]} per mahalla. ${summary.join("; ")}.`, class: "stats-chart" },
    elements,
  );
  container.replaceChildren(chart);
}

function countBar(fraction) {
  const bar = h("span", { class: "count-bar" });
  bar.style.width = `${Math.round(fraction * 100)}%`; // CSSOM, which a style-src CSP allows
  return bar;
}

function countsTable(caption, entries, total) {
  return h(
    "table",
    { class: "data-table compact counts-table" },
    h("caption", {}, caption),
    h(
      "tbody",
      {},
      entries.map(([name, count]) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, name),
          h("td", { class: "count-cell" }, String(count)),
          h("td", { class: "count-bar-cell", "aria-hidden": "true" }, countBar(total ? count / total : 0)),
        ),
      ),
    ),
  );
}

function renderCounts() {
  const { countsToday, countsWeek } = S.stats;
  const column = (label, counts) =>
    h(
      "div",
      { class: "counts-column" },
      h("h4", {}, `${label}: ${counts.total} alert${counts.total === 1 ? "" : "s"}${counts.drills ? ` (+${counts.drills} drill${counts.drills === 1 ? "" : "s"})` : ""}`),
      countsTable(
        `By category, ${label}`,
        Object.entries(counts.by_category).map(([name, count]) => [CATEGORIES[name]?.label || humanize(name), count]),
        counts.total,
      ),
      countsTable(
        `By outcome, ${label}`,
        Object.entries(counts.by_outcome).map(([name, count]) => [humanize(name), count]),
        counts.total,
      ),
    );
  $("#stats-counts").replaceChildren(column("Today", countsToday), column("Last 7 days", countsWeek));
}

// --- tabs -------------------------------------------------------------------------------

const TABS = ["detail", "devices", "stats", "posts"];

function showTab(name, { focus = false } = {}) {
  S.tab = name;
  for (const tab of TABS) {
    const button = $(`#tab-${tab}`);
    const selected = tab === name;
    button.setAttribute("aria-selected", String(selected));
    button.tabIndex = selected ? 0 : -1;
    $(`#panel-${tab}`).hidden = !selected;
  }
  if (focus) $(`#tab-${name}`).focus();
  clearInterval(S.statsTimer);
  if (name === "devices") loadDevices();
  if (name === "stats") {
    loadStats();
    S.statsTimer = setInterval(loadStats, STATS_REFRESH_MS);
  }
  if (name === "posts") renderPosts();
}

function visibleTabs() {
  return TABS.filter((tab) => !$(`#tab-${tab}`).hidden);
}

function wireTabs() {
  for (const tab of TABS) {
    const button = $(`#tab-${tab}`);
    button.addEventListener("click", () => showTab(tab));
    button.addEventListener("keydown", (event) => {
      const tabs = visibleTabs();
      const index = tabs.indexOf(tab);
      let next = null;
      if (event.key === "ArrowRight") next = tabs[(index + 1) % tabs.length];
      if (event.key === "ArrowLeft") next = tabs[(index - 1 + tabs.length) % tabs.length];
      if (event.key === "Home") next = tabs[0];
      if (event.key === "End") next = tabs[tabs.length - 1];
      if (next) {
        event.preventDefault();
        showTab(next, { focus: true });
      }
    });
  }
}

// --- the stream and its state -----------------------------------------------------------

function streamState(state, text, banner = null) {
  const element = $("#stream-state");
  element.dataset.state = state;
  document.body.dataset.stream = state;
  $(".stream-text", element).textContent = text;
  const bannerElement = $("#connection-banner");
  bannerElement.hidden = !banner;
  if (banner) bannerElement.textContent = banner;
}

function startStream() {
  const stream = new Stream();
  let reconnects = 0;
  stream.addEventListener("ready", async (event) => {
    const { first, resync } = event.detail;
    const wasOffline = S.offlineSince;
    S.offlineSince = null;
    if (!first) reconnects += 1;
    document.body.dataset.reconnects = String(reconnects);
    if (first || resync) {
      streamState("loading", first ? "Loading…" : "Reloading after a gap in the feed…");
      await reload();
    }
    if (wasOffline && !first) {
      const gap = formatDuration((Date.now() - wasOffline) / 1000);
      streamState("live", `Live · caught up after ${gap} offline`);
      say(`The live connection is back; everything missed in ${gap} was applied.`, "success");
    } else {
      streamState("live", "Live");
    }
  });
  stream.addEventListener("message", (event) => handleMessage(event.detail));
  stream.addEventListener("offline", (event) => {
    if (S.offlineSince === null) S.offlineSince = Date.now();
    const lost = formatClock(new Date(S.offlineSince).toISOString());
    const never = stream.connects === 0;
    streamState(
      never ? "connecting" : "reconnecting",
      never ? "Connecting to the live feed…" : `Reconnecting (connection lost at ${lost})…`,
      never
        ? null
        : `Live updates interrupted since ${lost}. The queue shows the last known state and catches up when the connection returns.`,
    );
    if (!never) say("The live connection dropped; reconnecting.", "error");
  });
  stream.addEventListener("unauthorized", () => {
    streamState("ended", "Session ended — log in again", "Your session ended. Log in again to continue.");
    goToLogin("/console");
  });
  stream.start();
  return stream;
}

// --- start ------------------------------------------------------------------------------

function wireControls() {
  const unlock = () => {
    alarm.unlock();
    if (document.body.dataset.alarm === "ringing") $("#sound-enable").hidden = !alarm.blocked;
  };
  document.addEventListener("pointerdown", unlock, { capture: true });
  document.addEventListener("keydown", unlock, { capture: true });
  $("#sound-enable").addEventListener("click", () => {
    alarm.unlock();
    setTimeout(() => ($("#sound-enable").hidden = !alarm.blocked), 100);
  });
  $("#ack-all").addEventListener("click", () => acknowledge(waitingEscalated().map((alert) => alert.id)));
  $("#logout").addEventListener("click", async () => {
    try {
      await logout();
    } finally {
      goToLogin("/console");
    }
  });
  $("#queue-filter").addEventListener("change", (event) => {
    S.queueFilter = event.target.value;
    scheduleRender();
  });
  $("#show-devices").addEventListener("change", (event) => {
    S.devicesShown = event.target.checked;
    renderDeviceLayer();
  });
  $("#show-posts").addEventListener("change", (event) => {
    if (!M.map) return;
    if (event.target.checked) M.posts.addTo(M.map);
    else M.posts.remove();
  });
  $("#map-fit").addEventListener("click", () => fitMap(false));
  $("#devices-mahalla").addEventListener("change", loadDevices);
  $("#devices-filter").addEventListener("change", loadDevices);
  $("#devices-refresh").addEventListener("click", loadDevices);
  $("#stats-stage").addEventListener("change", renderStats);
  $("#stats-refresh").addEventListener("click", loadStats);
  wireTabs();
  window.addEventListener("alertnet:unauthorized", () => goToLogin("/console"));
}

async function loadTileUrl() {
  try {
    const config = await api("/web/config.json");
    return config.tile_url || null;
  } catch {
    return null;
  }
}

async function main() {
  wireControls();
  const me = await requireLogin();
  S.me = me;
  S.canAct = me.role === "dispatcher" || me.role === "admin";
  document.body.dataset.role = me.role;
  document.body.classList.toggle("read-only", !S.canAct);
  $("#whoami-name").textContent = me.username;
  $("#whoami-role").textContent = S.canAct ? me.role : `${me.role} · read-only`;
  if (me.role === "post") {
    $(".console-main").replaceChildren(
      h("p", { class: "banner" }, "This account belongs to a mobile post. ", h("a", { href: "/tablet" }, "Open the tablet app"), "."),
    );
    return;
  }
  if (!S.canAct) {
    // Observers read alerts of their own mahalla only; posts are a dispatcher's business.
    $("#tab-posts").hidden = true;
    $("#alarm-bar").remove();
    $("#show-posts").closest("label").hidden = true;
  }
  initMap(await loadTileUrl());
  const stream = startStream();
  // If the stream cannot connect at all, still show what REST can tell.
  setTimeout(() => {
    if (!S.loaded) reload();
  }, 4000);
  setInterval(tick, 1000);
  setInterval(() => renderPostMarkers(), 15000);
  window.alertnetConsole = { state: S, stream, alarm, map: M, reload };
}

main().catch((error) => {
  say(`The console failed to start: ${describeError(error)}`, "error");
  throw error;
});

// The map (Leaflet, bundled): alerts, posts, mahalla centres and, on demand, devices. Without
// tiles (no internet) the markers are still drawn on a plain background and a note says so.

import { api } from "../shared/api.js";
import { $, h } from "../shared/dom.js";
import { alertTitle, categoryLetter, describeError, isStale, positionText, troubleText } from "./format.js";
import { renderLinks } from "./links.js";
import { S, offerHeldBy } from "./state.js";
import { label, t } from "./strings.js";
import { say } from "./widgets.js";

const DEFAULT_CENTRE = [41.3111, 69.2797];
// Stacking (Leaflet adds each marker's screen y, at most a few thousand): alerts on top, then
// posts, mahalla names at the bottom, so no label ever covers a pin.
const POST_Z = -100000;
const MAHALLA_Z = -200000;

export const M = {
  map: null,
  alerts: null,
  posts: null,
  devices: null,
  mahallas: null,
  alertMarkers: new Map(),
  postMarkers: new Map(),
  fitted: false,
  tilesLoaded: 0,
  onSelect: () => {},
};

// onSelect(alertId) runs when a dispatcher picks an alert's marker (click, Enter, Space).
export function initMap(tileUrl, { onSelect }) {
  if (typeof window.L === "undefined") {
    $("#map").append(h("p", { class: "empty" }, t("map.no-library")));
    return;
  }
  const L = window.L;
  M.onSelect = onSelect;
  M.map = L.map("map", { zoomControl: true, keyboard: true }).setView(DEFAULT_CENTRE, 12);
  if (tileUrl) {
    const tiles = L.tileLayer(tileUrl, { maxZoom: 19, attribution: t("map.attribution") });
    tiles.on("tileerror", () => {
      if (M.tilesLoaded === 0) mapNote(t("map.no-tiles"));
    });
    tiles.on("tileload", () => {
      M.tilesLoaded += 1;
      mapNote(null);
    });
    tiles.addTo(M.map);
  } else {
    mapNote(t("map.no-tile-server"));
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

function labelMarker(marker, text) {
  const element = marker.getElement();
  if (element) element.setAttribute("aria-label", text);
}

// Mahalla centres give the map its bearings when there are no tiles.
function renderMahallas() {
  const L = window.L;
  const placed = [...S.mahallas.values()].filter((mahalla) => mahalla.lat !== null);
  if (M.mahallas.getLayers().length === placed.length) return;
  M.mahallas.clearLayers();
  for (const mahalla of S.mahallas.values()) {
    if (mahalla.lat === null || mahalla.lon === null) continue;
    const text = t("map.mahalla", { name: mahalla.name, risk: label("risk-class", mahalla.risk) });
    const html = h("span", { class: `mahalla-label mahalla-risk-${mahalla.risk}` }, text);
    L.marker([mahalla.lat, mahalla.lon], {
      icon: L.divIcon({ className: "mahalla-marker", html, iconSize: null }),
      interactive: false,
      keyboard: false,
      zIndexOffset: MAHALLA_Z, // labels never cover a post or an alert
    }).addTo(M.mahallas);
  }
}

function alertLabel(alert) {
  const values = {
    title: alertTitle(alert),
    state: label("state", alert.state),
    priority: alert.priority,
    mahalla: alert.mahalla || t("alert.no-mahalla"),
  };
  return t(alert.drill ? "map.alert-drill" : "map.alert", values);
}

function createAlertMarker(alert, text) {
  const marker = window.L.marker([alert.lat, alert.lon], { keyboard: true, title: text, riseOnHover: true });
  marker.on("click", () => M.onSelect(alert.id));
  // Markers are focusable (keyboard: true) but Leaflet only reports their key presses.
  marker.on("keydown", (event) => {
    const key = event.originalEvent.key;
    if (key === "Enter" || key === " ") {
      event.originalEvent.preventDefault();
      M.onSelect(alert.id);
    }
  });
  return { marker, className: null };
}

export function renderMap() {
  if (!M.map) return;
  const L = window.L;
  renderMahallas();
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
    const text = alertLabel(alert);
    let entry = M.alertMarkers.get(alert.id);
    if (!entry) {
      entry = createAlertMarker(alert, text);
      M.alertMarkers.set(alert.id, entry);
      entry.marker.addTo(M.alerts);
    }
    entry.marker.setLatLng([alert.lat, alert.lon]);
    if (entry.className !== className) {
      entry.className = className;
      const pin = h("span", { class: "pin", "data-alert-id": alert.id }, categoryLetter(alert.category));
      entry.marker.setIcon(L.divIcon({ className, html: pin, iconSize: [30, 30], iconAnchor: [15, 15] }));
    }
    entry.marker.setZIndexOffset(alert.state === "escalated" ? 1000 : selected ? 900 : alert.priority);
    labelMarker(entry.marker, text);
    const element = entry.marker.getElement();
    if (element) element.title = text;
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

export function renderPostMarkers() {
  if (!M.map) return;
  const L = window.L;
  const seen = new Set();
  for (const post of S.posts.values()) {
    if (post.lat === null || post.lon === null || post.lat === undefined) continue;
    seen.add(post.id);
    const stale = isStale(post);
    const offer = offerHeldBy(post.id);
    const className = ["post-marker", `status-${post.status}`, stale ? "stale" : ""].filter(Boolean).join(" ");
    const status = label("post-status", post.status);
    const text = [status, stale && t("map.post-stale"), offer && t("map.post-offer")].filter(Boolean).join(" · ");
    const values = { callsign: post.callsign, status, position: positionText(post), alert: offer?.alert_id };
    const title = t(offer ? "map.post-offered" : "map.post", values);
    let entry = M.postMarkers.get(post.id);
    if (!entry) {
      // Under every alert pin: a post's label never covers an alert.
      const marker = L.marker([post.lat, post.lon], { keyboard: false, title, zIndexOffset: POST_Z });
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
    if (element) element.title = title;
  }
  for (const [id, entry] of M.postMarkers) {
    if (!seen.has(id)) {
      entry.marker.remove();
      M.postMarkers.delete(id);
    }
  }
  renderLinks(M);
}

// Zoom to the open alerts; everything (posts, mahallas too) on the first load or without alerts.
export function fitMap(everything) {
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

export function panToAlert(id) {
  const alert = S.alerts.get(id);
  if (M.map && alert && !M.map.getBounds().contains([alert.lat, alert.lon])) M.map.panTo([alert.lat, alert.lon]);
}

export function showOnMap(lat, lon, zoom) {
  if (M.map) M.map.setView([lat, lon], zoom);
}

export function showPosts(shown) {
  if (!M.map) return;
  if (shown) M.posts.addTo(M.map);
  else M.posts.remove();
}

function deviceLabel(device) {
  const values = {
    eui: device.eui,
    kind: label("device-kind", device.kind),
    status: label("device-status", device.status),
    troubles: troubleText(device.troubles),
  };
  return t(device.troubles.length > 0 ? "map.device-trouble" : "map.device", values);
}

// The devices layer follows S.devicesShown; drawn afresh from the API each time.
export async function renderDeviceLayer() {
  if (!M.map) return;
  const L = window.L;
  if (!S.devicesShown) {
    M.devices.remove();
    return;
  }
  let devices;
  try {
    devices = await api("/api/v1/devices?limit=5000");
  } catch (error) {
    say(t("devices.load-failed", { error: describeError(error) }), "error");
    return;
  }
  M.devices.clearLayers();
  for (const device of devices) {
    const troubled = device.troubles.length > 0;
    L.circleMarker([device.lat, device.lon], {
      radius: troubled ? 7 : 5,
      className: `device-marker status-${device.status}${troubled ? " troubled" : ""}`,
      weight: troubled ? 3 : 1,
    })
      // A node, not a string: Leaflet puts a string in as HTML.
      .bindTooltip(h("span", {}, deviceLabel(device)))
      .addTo(M.devices);
  }
  M.devices.addTo(M.map);
  document.body.dataset.devicesOnMap = String(devices.length);
}

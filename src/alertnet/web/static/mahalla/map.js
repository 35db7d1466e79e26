// The map of the mahalla's buttons and alarms (Leaflet, bundled). What it places is what
// GET /api/v1/devices answered for the caller: to an observer a household's or a business's
// alarm is an anonymous dot at about 100 m (3 decimals) with no health (DESIGN §10). Without
// tiles (no internet) the dots are still drawn on a plain background and a note says so.

import { $, h } from "../shared/dom.js";
import { label, t } from "./strings.js";

const DEFAULT_CENTRE = [41.3111, 69.2797];
const PRIVATE_SITES = new Set(["household", "business"]);

export const M = { map: null, dots: null, tilesLoaded: 0 };

function mapNote(text) {
  const note = $("#map-note");
  note.hidden = !text;
  $("#map").dataset.tiles = text ? "unavailable" : "loaded";
  if (text && note.textContent !== text) note.textContent = text;
}

export function initMap(tileUrl) {
  if (typeof window.L === "undefined") {
    mapNote(t("map.no-library"));
    return;
  }
  const L = window.L;
  M.map = L.map("map", { zoomControl: true, keyboard: true }).setView(DEFAULT_CENTRE, 14);
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
  M.dots = L.layerGroup().addTo(M.map);
}

function dotClass(device) {
  if (PRIVATE_SITES.has(device.site)) return "dot-private";
  return device.status === "offline" ? "dot-offline" : "dot-public";
}

function dotText(device) {
  const kind = label("kind", device.kind);
  if (PRIVATE_SITES.has(device.site)) return t("map.private", { kind, site: label("site", device.site) });
  const status = device.status ? label("status", device.status) : "";
  return t("map.public", { name: device.name || device.eui, kind, status });
}

// devices: GET /api/v1/devices?mahalla_id=…; mahalla: its centroid when there are no devices.
export function renderMap(devices, mahalla) {
  if (!M.map) return;
  const L = window.L;
  M.dots.clearLayers();
  const points = [];
  for (const device of devices) {
    if (device.lat === null || device.lon === null) continue;
    const text = dotText(device);
    const dot = L.circleMarker([device.lat, device.lon], {
      radius: PRIVATE_SITES.has(device.site) ? 6 : 8,
      className: `device-dot ${dotClass(device)}`,
      weight: 2,
    });
    // A node, not a string: Leaflet puts a string in as HTML, and a device's name is data.
    dot.bindTooltip(h("span", {}, text));
    dot.addTo(M.dots);
    const element = dot.getElement();
    if (element) {
      element.setAttribute("aria-label", text);
      element.dataset.site = device.site;
    }
    points.push([device.lat, device.lon]);
  }
  if (points.length > 0) {
    M.map.fitBounds(L.latLngBounds(points), { padding: [24, 24], maxZoom: 16 });
  } else if (mahalla && mahalla.lat !== null && mahalla.lon !== null) {
    M.map.setView([mahalla.lat, mahalla.lon], 15);
  }
}

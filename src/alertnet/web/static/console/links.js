// Lines on the map from each alert to its post: solid to the post that holds it (accepted, on
// scene), dashed to the post it is offered to. A dispatcher sees at a glance who is going
// where. Drawn under the markers, so a line never hides a pin.

import { S } from "./state.js";
import { t } from "./strings.js";

const HELD_STATES = new Set(["accepted", "on_scene"]);
const lines = new Map(); // alert id → {line, signature}

function linkOf(alert) {
  const offer = S.offers.get(alert.id);
  if (alert.state === "offered" && offer) return { postId: offer.post_id, kind: "offered" };
  if (HELD_STATES.has(alert.state) && alert.post_id !== null && alert.post_id !== undefined) {
    return { postId: alert.post_id, kind: "held" };
  }
  return null;
}

export function renderLinks(M) {
  const L = window.L;
  if (!M.map || !L) return;
  if (!M.links) {
    // A pane of its own under the marker pane (Leaflet's overlayPane is 400, markers 600).
    M.map.createPane("alert-links").style.zIndex = "450";
    M.links = L.layerGroup().addTo(M.map);
  }
  const seen = new Set();
  for (const alert of S.alerts.values()) {
    const link = linkOf(alert);
    const post = link && S.posts.get(link.postId);
    if (!post || post.lat === null || post.lat === undefined) continue;
    seen.add(alert.id);
    const points = [
      [alert.lat, alert.lon],
      [post.lat, post.lon],
    ];
    const signature = `${link.kind}|${points.flat().join(",")}`;
    const title = t(link.kind === "held" ? "map.link-held" : "map.link-offered", { id: alert.id, callsign: post.callsign });
    let entry = lines.get(alert.id);
    if (!entry) {
      const line = L.polyline(points, { pane: "alert-links", interactive: false });
      entry = { line, signature: null };
      lines.set(alert.id, entry);
      line.addTo(M.links);
    }
    if (entry.signature !== signature) {
      entry.signature = signature;
      entry.line.setLatLngs(points);
      entry.line.setStyle({
        color: link.kind === "held" ? "#0037a6" : "#a30000",
        weight: 3,
        dashArray: link.kind === "held" ? null : "6 6",
      });
    }
    const element = entry.line.getElement();
    if (element) {
      element.setAttribute("class", `alert-link link-${link.kind}`);
      element.dataset.alertId = String(alert.id);
      element.dataset.postId = String(post.id);
      element.setAttribute("aria-label", title);
    }
  }
  for (const [id, entry] of lines) {
    if (!seen.has(id)) {
      entry.line.remove();
      lines.delete(id);
    }
  }
}

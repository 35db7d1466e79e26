// The dispatch console (/console): live queue, map, alert detail and actions, device health,
// statistics. Native ES modules, no build step:
//
//   state.js   what the console knows        feed.js     REST load + live stream → state
//   render.js  one coalesced redraw          queue.js    the alert queue
//   map.js     the Leaflet map               detail.js   the selected alert (history.js below)
//   actions.js what a dispatcher does        alarm.js    the alarm for escalated alerts
//   devices.js / posts.js / stats.js / tabs.js  the side panels; archive.js the History tab
//   drills.js  the Drills tab: start a training drill, read its report
//   strings.js every text shown (per language) format.js / widgets.js  shared pieces
//
// Observers get the same page without any action (the server refuses them anyway) and only
// their mahalla (the server scopes every read). For tests and curious operators,
// window.alertnetConsole exposes the state, the stream, the alarm, the map and reload().

import { api } from "../shared/api.js";
import { $, h } from "../shared/dom.js";
import { mountLanguageSwitch } from "../shared/language.js";
import { goToLogin, logout, requireLogin } from "../shared/session.js";
import { acknowledge, alarm, updateAlarm } from "./alarm.js";
import { wireArchive } from "./archive.js";
import { select } from "./detail.js";
import { loadDevices } from "./devices.js";
import { wireDrills } from "./drills.js";
import { reload, startStream } from "./feed.js";
import { describeError } from "./format.js";
import { M, fitMap, initMap, renderDeviceLayer, renderMap, renderPostMarkers, showPosts } from "./map.js";
import { renderPosts } from "./posts.js";
import { renderQueue, tick } from "./queue.js";
import { scheduleRender, whenRendering } from "./render.js";
import { S, waitingEscalated } from "./state.js";
import { loadStats, renderStats } from "./stats.js";
import { applyStrings, label, t, tParts } from "./strings.js";
import { wireTabs } from "./tabs.js";
import { say } from "./widgets.js";

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
  $("#show-posts").addEventListener("change", (event) => showPosts(event.target.checked));
  $("#map-fit").addEventListener("click", () => fitMap(false));
  $("#devices-mahalla").addEventListener("change", loadDevices);
  $("#devices-filter").addEventListener("change", loadDevices);
  $("#devices-refresh").addEventListener("click", loadDevices);
  $("#stats-stage").addEventListener("change", renderStats);
  $("#stats-refresh").addEventListener("click", loadStats);
  wireTabs();
  wireArchive();
  wireDrills();
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
  applyStrings();
  wireControls();
  whenRendering(renderQueue, renderMap, renderPosts, updateAlarm);
  const me = await requireLogin();
  mountLanguageSwitch({ signedIn: () => true, onError: (text) => say(text, "error") });
  S.me = me;
  S.canAct = me.role === "dispatcher" || me.role === "admin";
  document.body.dataset.role = me.role;
  document.body.classList.toggle("read-only", !S.canAct);
  $("#whoami-name").textContent = me.username;
  const role = label("role", me.role);
  $("#whoami-role").textContent = S.canAct ? role : t("start.read-only", { role });
  if (me.role === "post") {
    const link = h("a", { href: "/tablet" }, t("start.open-tablet"));
    $(".console-main").replaceChildren(h("p", { class: "banner" }, tParts("start.post-account", { link })));
    return;
  }
  if (!S.canAct) {
    // Observers read alerts of their own mahalla only; posts are a dispatcher's business.
    $("#tab-posts").hidden = true;
    $("#alarm-bar").remove();
    $("#show-posts").closest("label").hidden = true;
  }
  initMap(await loadTileUrl(), { onSelect: (id) => select(id) });
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
  say(t("start.failed", { error: describeError(error) }), "error");
  throw error;
});

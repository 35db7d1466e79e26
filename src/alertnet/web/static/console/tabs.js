// The side panel's tabs (Alert, Device health, Statistics, Posts, History, Drills), with arrow-key
// movement as the WAI-ARIA tabs pattern asks. A tab loads its content when it is shown.

import { $ } from "../shared/dom.js";
import { showArchive } from "./archive.js";
import { loadDevices } from "./devices.js";
import { hideDrills, showDrills } from "./drills.js";
import { renderPosts } from "./posts.js";
import { S } from "./state.js";
import { loadStats } from "./stats.js";

const TABS = ["detail", "devices", "stats", "posts", "archive", "drills"];
const STATS_REFRESH_MS = 60 * 1000;

export function showTab(name, { focus = false } = {}) {
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
  if (name === "archive") showArchive();
  if (name === "drills") showDrills();
  else hideDrills();
}

function visibleTabs() {
  return TABS.filter((tab) => !$(`#tab-${tab}`).hidden);
}

export function wireTabs() {
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

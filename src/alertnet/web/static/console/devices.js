// Device health: the devices of a mahalla (or all the caller may see) with a trouble, offline,
// or all of them; their status, battery, last contact and troubles, and where they are.

import { api } from "../shared/api.js";
import { $, h } from "../shared/dom.js";
import { riskBadge } from "../shared/format.js";
import { describeError, formatWhen, since } from "./format.js";
import { M, renderDeviceLayer, showOnMap } from "./map.js";
import { showOfflineByStreet } from "./premises.js";
import { S } from "./state.js";
import { label, t } from "./strings.js";
import { rebuildKeepingFocus, troubleBadges } from "./widgets.js";

let devicesTimer = null;

// Devices changed (a feed message): reload the table and the map layer if they are shown.
export function scheduleDevicesRefresh() {
  clearTimeout(devicesTimer);
  devicesTimer = setTimeout(() => {
    if (S.tab === "devices") loadDevices();
    if (S.devicesShown) renderDeviceLayer();
  }, 1000);
}

export function fillMahallaFilter() {
  const select = $("#devices-mahalla");
  const chosen = select.value;
  const options = [];
  if (S.canAct) options.push(h("option", { value: "" }, t("devices.all-mahallas")));
  for (const mahalla of S.mahallas.values()) {
    const text = t("devices.mahalla-option", { name: mahalla.name, risk: label("risk-class", mahalla.risk) });
    options.push(h("option", { value: mahalla.id }, text));
  }
  select.replaceChildren(...options);
  if ([...select.options].some((option) => option.value === chosen)) select.value = chosen;
}

function batteryText(battery) {
  if (battery === null || battery === undefined) return t("battery.unknown");
  if (battery === 255) return t("battery.mains");
  return t(battery < 20 ? "battery.percent-low" : "battery.percent", { battery });
}

function locate(device) {
  if (!M.map) return;
  if (!S.devicesShown) {
    $("#show-devices").checked = true;
    S.devicesShown = true;
    renderDeviceLayer();
  }
  showOnMap(device.lat, device.lon, 17);
}

function deviceRow(device) {
  const kindAndPlace = [label("device-kind", device.kind), device.name || device.address].filter(Boolean).join(" · ");
  return h(
    "tr",
    { class: `device-row status-${device.status}${device.troubles.length ? " troubled" : ""}`, "data-eui": device.eui },
    h(
      "td",
      {},
      h("code", {}, device.eui),
      h("br"),
      h("small", {}, kindAndPlace),
      h("br"),
      h("small", {}, device.mahalla || t("alert.no-mahalla"), " ", device.risk ? riskBadge(device.risk) : null),
    ),
    h(
      "td",
      {},
      device.status
        ? h("span", { class: `status-badge device-status-${device.status}` }, label("device-status", device.status))
        : h("span", { class: "muted" }, t("devices.status-private")), // a home's, for an observer (§10)
      h("br"),
      h("span", { class: device.battery !== null && device.battery < 20 ? "battery-low" : "" }, batteryText(device.battery)),
    ),
    h(
      "td",
      {},
      device.last_seen_at
        ? h("span", { "data-since": device.last_seen_at, title: formatWhen(device.last_seen_at) }, since(device.last_seen_at))
        : t("devices.never"),
    ),
    h("td", {}, device.troubles.length ? troubleBadges(device.troubles) : t("devices.no-trouble")),
    h(
      "td",
      {},
      h(
        "button",
        {
          type: "button",
          class: "locate",
          "data-key": `locate-${device.eui}`,
          "aria-label": t("devices.locate-label", { eui: device.eui }),
          onclick: () => locate(device),
        },
        t("devices.locate"),
      ),
    ),
  );
}

export async function loadDevices() {
  const mahalla = $("#devices-mahalla").value;
  const filter = $("#devices-filter").value;
  const query = new URLSearchParams({ limit: "2000" });
  if (mahalla) query.set("mahalla_id", mahalla);
  if (filter === "trouble") query.set("trouble", "true");
  if (filter === "offline") query.set("status", "offline");
  const body = $("#devices-table tbody");
  let devices;
  try {
    devices = await api(`/api/v1/devices?${query}`);
  } catch (error) {
    $("#devices-summary").textContent = t("devices.load-failed", { error: describeError(error) });
    return;
  }
  const troubled = devices.filter((device) => device.troubles.length).length;
  $("#devices-summary").textContent = t("devices.summary", { count: devices.length, troubled });
  showOfflineByStreet(devices);
  rebuildKeepingFocus(body, () => body.replaceChildren(...devices.map(deviceRow)));
}

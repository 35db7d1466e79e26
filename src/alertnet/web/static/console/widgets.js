// Small pieces the console's panels share: category icons, state/drill/trouble badges, the
// status line for what the dispatcher did, tables, and rebuilding a region without losing focus.

import { $, h, svg } from "../shared/dom.js";
import { label, t } from "./strings.js";

// Icons drawn for alertnet: 24×24 strokes in the category's colour.
const ICON_PATHS = {
  panic: ["M12 2.8 22 20.5H2Z", "M12 9v5", "M12 17.2v.3"],
  fire: ["M12 3c1 4 6 6 6 11a6 6 0 0 1-12 0c0-3 2-5 3-7 .5 2 1.5 3 3 3-1-2-1-5 0-7Z"],
  medical: ["M9.5 4h5v5.5H20v5h-5.5V20h-5v-5.5H4v-5h5.5Z"],
  intrusion: ["M3 11.5 12 4l9 7.5", "M5.5 10v10h13V10", "M10 20v-5h4v5"],
  tamper: ["M12 3 20 6v6c0 5-3.5 8-8 9-4.5-1-8-4-8-9V6Z", "M12 8v5", "M12 16v.3"],
  trouble: ["M3 8h15v8H3Z", "M18 10.5h2.5v3H18", "M7 12h4"],
};

export function categoryIcon(category) {
  const paths = ICON_PATHS[category] || ICON_PATHS.trouble;
  return svg(
    "svg",
    { class: "cat-icon", viewBox: "0 0 24 24", width: 20, height: 20, "aria-hidden": "true", focusable: "false" },
    paths.map((d) => svg("path", { d })),
  );
}

export function stateBadge(state) {
  return h("span", { class: `state-badge state-${state}` }, label("state", state));
}

export function drillBadge() {
  return h("span", { class: "drill-badge", title: t("drill.badge-title") }, t("drill.badge"));
}

export function troubleBadges(kinds) {
  return kinds.map((kind) => h("span", { class: `trouble-badge trouble-${kind}` }, label("trouble", kind)));
}

let sayTimer = null;

// One status line for what the dispatcher did; errors stay until the next message.
export function say(text, kind = "info") {
  const status = $("#action-status");
  status.dataset.kind = kind;
  status.textContent = text;
  clearTimeout(sayTimer);
  if (kind !== "error") sayTimer = setTimeout(() => (status.textContent = ""), 20000);
}

// Rebuilding a region must not throw the keyboard user out of it: elements that can hold
// focus carry data-key, and the focus goes back to the element with the same key.
export function rebuildKeepingFocus(container, build) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.key : null;
  build();
  if (key) {
    const again = container.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again) again.focus();
  }
}

// A captioned table, or one line saying the caption has nothing to show.
export function dataTable(caption, headers, rows) {
  if (rows.length === 0) return h("p", { class: "empty" }, t("detail.table-empty", { caption }));
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

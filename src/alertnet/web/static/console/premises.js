// An alert's premises and call list on the console (DESIGN §10), and the silent-alarm banner
// (§3): "SILENT — do not call the site", with the call links locked until a dispatcher
// overrides it (POST /alerts/{id}/call-override, audited). What the server sends is already
// cut to the reader's scope: an observer gets the street alone, so there is nothing to hide
// here, only what is present to show.

import { api } from "../shared/api.js";
import { h } from "../shared/dom.js";
import { describeError, formatWhen } from "./format.js";
import { S } from "./state.js";
import { t } from "./strings.js";

// The reason typed for an override, kept across re-renders of the same alert.
const draft = { alertId: null, open: false, reason: "", error: "" };

// tel: wants digits and a leading +; people write spaces, dashes and brackets.
export function telHref(phone) {
  const digits = String(phone).replace(/[^\d+]/g, "");
  return `tel:${digits}`;
}

export function callsLocked(detail) {
  return Boolean(detail.silent) && !detail.call_override_at;
}

function callLink(contact, locked) {
  const text = `${contact.phone}`;
  if (locked) {
    return h(
      "a",
      { class: "call-link is-locked", role: "link", "aria-disabled": "true", title: t("premises.calls-locked") },
      text,
    );
  }
  return h("a", { class: "call-link", href: telHref(contact.phone) }, text);
}

function contactList(contacts, locked) {
  if (!contacts || contacts.length === 0) return h("p", { class: "muted" }, t("premises.no-contacts"));
  return h(
    "ol",
    { class: "call-list", id: "call-list" },
    contacts.map((contact) =>
      h(
        "li",
        { class: "call-list-item" },
        h("span", { class: "call-name" }, contact.name),
        contact.relation ? h("span", { class: "call-relation" }, ` (${contact.relation})`) : null,
        " ",
        callLink(contact, locked),
      ),
    ),
  );
}

function fact(key, value) {
  if (!value) return [];
  return [h("dt", {}, t(key)), h("dd", {}, value)];
}

// The premises section ([] when the scope gave nothing to show).
export function premisesSections(detail) {
  const premises = detail.premises || {};
  const rows = [
    ...fact("premises.ref", premises.ref),
    ...fact("premises.owner", premises.owner),
    ...fact("premises.address", premises.address),
    ...fact("premises.street", premises.street),
    ...fact("premises.notes", premises.notes),
  ];
  const hasContacts = Array.isArray(premises.contacts);
  if (rows.length === 0 && !hasContacts) return [];
  const section = h(
    "section",
    { class: "premises", id: "premises", "aria-labelledby": "premises-title" },
    h("h3", { id: "premises-title" }, t("premises.title")),
    rows.length ? h("dl", { class: "facts premises-facts" }, rows) : null,
    hasContacts ? [h("h4", {}, t("premises.call-list")), contactList(premises.contacts, callsLocked(detail))] : null,
  );
  return [section];
}

async function override(detail, reload) {
  const reason = draft.reason.trim();
  if (!reason) {
    draft.error = t("premises.override-reason-needed");
    await reload();
    return;
  }
  try {
    await api(`/api/v1/alerts/${detail.id}/call-override`, { method: "POST", body: { reason } });
    Object.assign(draft, { open: false, reason: "", error: "" });
  } catch (error) {
    draft.error = t("premises.override-failed", { error: describeError(error) });
  }
  await reload();
}

function overrideForm(detail, reload) {
  const input = h("input", {
    id: "override-reason",
    dataset: { key: "override-reason" },
    type: "text",
    maxlength: "500",
    value: draft.reason,
    oninput: (event) => {
      draft.reason = event.target.value;
    },
  });
  return h(
    "form",
    {
      class: "override-form",
      id: "override-form",
      onsubmit: (event) => {
        event.preventDefault();
        override(detail, reload);
      },
    },
    h("label", { for: "override-reason" }, t("premises.override-reason")),
    input,
    draft.error ? h("p", { class: "form-error", role: "alert" }, draft.error) : null,
    h("button", { class: "btn btn-stop", id: "override-confirm", type: "submit" }, t("premises.override-confirm")),
    h(
      "button",
      {
        class: "btn btn-plain",
        type: "button",
        onclick: () => {
          Object.assign(draft, { open: false, reason: "", error: "" });
          reload();
        },
      },
      t("premises.override-back"),
    ),
  );
}

// The red banner of a silent alert (none otherwise), with the override for dispatchers.
export function silentBanners(detail, reload) {
  if (!detail.silent) return [];
  if (draft.alertId !== detail.id) Object.assign(draft, { alertId: detail.id, open: false, reason: "", error: "" });
  const parts = [h("strong", {}, t("premises.silent-banner"))];
  if (detail.call_override_at) {
    parts.push(
      h(
        "span",
        { class: "override-note", id: "override-note" },
        " ",
        t("premises.overridden", { who: detail.call_override_by || "—", when: formatWhen(detail.call_override_at) }),
      ),
    );
  } else if (S.canAct) {
    if (draft.open) {
      parts.push(overrideForm(detail, reload));
    } else {
      parts.push(
        " ",
        h(
          "button",
          {
            class: "btn btn-plain",
            id: "override-open",
            type: "button",
            onclick: () => {
              draft.open = true;
              reload();
            },
          },
          t("premises.override"),
        ),
      );
    }
  }
  return [h("div", { class: "banner silent-banner", id: "silent-banner", role: "alert" }, parts)];
}

// Under the device list: for a reader who sees homes and shops without their health (an
// observer), how many of them are offline on each street (GET /devices/offline-by-street).
export async function showOfflineByStreet(devices) {
  const summary = document.getElementById("devices-summary");
  let box = document.getElementById("devices-streets");
  const hidden = devices.some((device) => device.status === null);
  if (!hidden) {
    if (box) box.remove();
    return;
  }
  if (!box) {
    box = h("div", { id: "devices-streets", class: "summary" });
    summary.after(box);
  }
  let rows;
  try {
    rows = await api("/api/v1/devices/offline-by-street");
  } catch (error) {
    box.replaceChildren(t("premises.streets-failed", { error: describeError(error) }));
    return;
  }
  if (rows.length === 0) {
    box.replaceChildren(t("premises.streets-none"));
    return;
  }
  box.replaceChildren(
    h("strong", {}, t("premises.streets-title")),
    h(
      "ul",
      { class: "offline-streets" },
      rows.map((row) =>
        h("li", {}, t("premises.streets-row", { street: row.street || t("premises.street-unknown"), count: row.offline })),
      ),
    ),
  );
}

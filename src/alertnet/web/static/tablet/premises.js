// The premises on the tablet (DESIGN §10): for the post that is offered or holds an alert, its
// notes (entrance, floor, keys) and call list, each number a tap-to-call link; and for a
// silent alarm (§3) the red "SILENT — do not call the site; approach without siren" (the
// server then sends no call list at all). The block is built under the address line of the
// offer screen and of the held alert, from what the server sent for this post.

import { $, h } from "../shared/dom.js";
import { t } from "./strings.js";

function telHref(phone) {
  return `tel:${String(phone).replace(/[^\d+]/g, "")}`;
}

function block(prefix) {
  const id = `${prefix}-premises`;
  let element = document.getElementById(id);
  if (!element) {
    element = h("div", { id, class: "premises" });
    $(`#${prefix}-address`).after(element);
  }
  return element;
}

function callList(contacts) {
  return h(
    "ol",
    { class: "call-list" },
    contacts.map((contact) =>
      h(
        "li",
        {},
        h(
          "a",
          { class: "btn btn-info btn-block call-link", href: telHref(contact.phone) },
          h("span", { class: "call-name" }, contact.name),
          contact.relation ? h("span", { class: "call-relation" }, ` (${contact.relation})`) : null,
          h("span", { class: "call-phone" }, contact.phone),
        ),
      ),
    ),
  );
}

export function renderPremises(prefix, alert) {
  const premises = (alert && alert.premises) || {};
  const parts = [];
  if (alert && alert.silent) {
    parts.push(h("p", { class: "silent-banner", id: `${prefix}-silent`, role: "alert" }, t("premises.silent-banner")));
  }
  if (premises.notes) {
    parts.push(
      h("p", { class: "premises-notes", id: `${prefix}-notes` }, h("strong", {}, `${t("premises.notes")}: `), premises.notes),
    );
  }
  if (Array.isArray(premises.contacts) && premises.contacts.length > 0) {
    parts.push(h("h2", { class: "premises-heading" }, t("premises.call-list")), callList(premises.contacts));
  }
  const element = block(prefix);
  element.hidden = parts.length === 0;
  element.replaceChildren(...parts);
}

// The notes on an alert (DESIGN §10): every dispatcher's, oldest first, with who wrote each and
// when, and a box to add one. Notes are shared: another dispatcher's note arrives on the stream
// (alert.workflow) and the detail is redrawn — so the box is one element kept across redraws,
// and a half-written note, its caret and its focus survive whatever arrives meanwhile.

import { api } from "../shared/api.js";
import { $, h } from "../shared/dom.js";
import { describeError, formatWhen } from "./format.js";
import { S } from "./state.js";
import { t } from "./strings.js";
import { say } from "./widgets.js";

const NOTE_MAX_CHARS = 2000;
let box = null; // {alertId, form, text}: the add-note form of the alert on screen

function noteItem(note) {
  return h(
    "li",
    { class: "note", "data-note-id": note.id },
    h("p", { class: "note-text" }, note.text),
    h("p", { class: "note-meta" }, t("notes.meta", { who: note.author, when: formatWhen(note.at) })),
  );
}

async function addNote(alertId, text, form, refresh) {
  const trimmed = text.value.trim();
  if (!trimmed) {
    say(t("notes.empty-text"), "error");
    text.focus();
    return;
  }
  const button = $("button", form);
  button.disabled = true;
  try {
    await api(`/api/v1/alerts/${alertId}/notes`, { method: "POST", body: { text: trimmed } });
    text.value = "";
    say(t("notes.added", { id: alertId }), "success");
    await refresh();
  } catch (error) {
    say(t("notes.failed", { error: describeError(error) }), "error");
  } finally {
    button.disabled = false;
  }
}

function noteForm(alertId, refresh) {
  if (box && box.alertId === alertId) return box.form;
  const id = `note-text-${alertId}`;
  const text = h("textarea", {
    id,
    name: "text",
    rows: 2,
    maxlength: NOTE_MAX_CHARS,
    class: "note-input",
    "data-key": "note-text",
    onkeydown: (event) => {
      // Ctrl+Enter (or ⌘+Enter) adds the note; Enter alone is a new line.
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        form.requestSubmit();
      }
    },
  });
  const form = h(
    "form",
    {
      class: "note-form",
      onsubmit: (event) => {
        event.preventDefault();
        addNote(alertId, text, form, refresh);
      },
    },
    h("label", { for: id }, t("notes.label")),
    text,
    h("button", { type: "submit", class: "action add-note", "data-key": "add-note" }, t("notes.add")),
  );
  box = { alertId, form, text };
  return form;
}

export function notesSection(detail, refresh) {
  const notes = detail.notes || [];
  return h(
    "section",
    { class: "detail-section notes", "aria-labelledby": "notes-heading" },
    h("h3", { id: "notes-heading" }, t("notes.heading")),
    notes.length ? h("ol", { class: "notes-list" }, notes.map(noteItem)) : h("p", { class: "empty" }, t("notes.empty")),
    S.canAct ? noteForm(detail.id, refresh) : null,
  );
}

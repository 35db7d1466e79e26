// Short messages to the crew: a toast for what just happened, the fatal line when the page
// cannot work at all, and how an error reads.

import { ApiError } from "../shared/api.js";
import { $ } from "../shared/dom.js";
import { t } from "./strings.js";

let toastTimer = null;

export function toast(text, { error = false, ms = 5000 } = {}) {
  const box = $("#toast");
  box.textContent = text;
  box.classList.toggle("toast-error", error);
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    box.hidden = true;
  }, ms);
}

export function hideToast() {
  clearTimeout(toastTimer);
  $("#toast").hidden = true;
}

export function describeError(error) {
  if (error instanceof ApiError) {
    if (error.offline) return t("action.no-connection");
    return error.message;
  }
  return String(error);
}

export function fatal(text) {
  const box = $("#fatal");
  box.textContent = text;
  box.hidden = false;
}

// The decline and close forms: back to their first state, or showing what is missing.
export function resetOfferForms() {
  const form = $("#decline-form");
  form.reset();
  form.hidden = true;
  $("#decline-other").hidden = true;
  $("#decline-error").hidden = true;
  $("#offer-actions").hidden = false;
}

export function resetCloseForm() {
  const form = $("#close-form");
  form.reset();
  form.hidden = true;
  $("#close-error").hidden = true;
}

export function formError(selector, text) {
  const box = $(selector);
  box.textContent = text;
  box.hidden = false;
}

// Text for people, by key. Each page's strings module installs the page's catalog (key →
// text) once; every module asks for what a person reads through t(), never holding the
// sentence itself, so a catalog per language can replace the English one.
//
//   t("alarm.waiting", {count: 2})       "{name}" placeholders; a value may be an object of
//                                        plural forms ({one, other, …}) picked by
//                                        params.count with the language's plural rules.
//   tParts("queue.opened-ago", {age: el}) the same sentence as text and elements, for h():
//                                        "opened {age} ago" → ["opened ", el, " ago"].
//   label("post-status", "off_duty")     the text of a server code, or the code made
//                                        readable when the catalog does not know it yet.
//   applyStrings()                       fills data-i18n="key" (text) and
//                                        data-i18n-<attribute>="key" (aria-label, title,
//                                        placeholder) in the page, and <html lang>.
//
// A missing key shows as the key itself (and a console warning), never as an empty place.

const TRANSLATED_ATTRIBUTES = ["aria-label", "title", "placeholder"];
const PLACEHOLDER = /\{(\w+)\}/g;

let catalog = {};
let language = "en";
let pluralRules = new Intl.PluralRules(language);
const reported = new Set();

// Called once by the page's strings module, before anything asks for a text.
export function useCatalog(strings, catalogLanguage) {
  catalog = strings;
  language = catalogLanguage;
  pluralRules = new Intl.PluralRules(language);
}

export function hasText(key) {
  return Object.hasOwn(catalog, key);
}

// The catalog's text for key in the plural form params.count asks for, or null.
function template(key, params) {
  let text = hasText(key) ? catalog[key] : undefined;
  if (text !== undefined && text !== null && typeof text === "object") {
    text = text[pluralRules.select(Number(params.count))] ?? text.other;
  }
  if (typeof text === "string") return text;
  if (!reported.has(key)) {
    reported.add(key);
    console.warn(`alertnet: no text for "${key}" in the ${language} catalog`);
  }
  return null;
}

export function t(key, params = {}) {
  const text = template(key, params);
  if (text === null) return key;
  return text.replace(PLACEHOLDER, (placeholder, name) =>
    Object.hasOwn(params, name) ? String(params[name]) : placeholder,
  );
}

export function tParts(key, params = {}) {
  const text = template(key, params);
  if (text === null) return [key];
  const parts = [];
  let end = 0;
  for (const match of text.matchAll(PLACEHOLDER)) {
    parts.push(text.slice(end, match.index));
    const value = Object.hasOwn(params, match[1]) ? params[match[1]] : match[0];
    parts.push(value instanceof Node ? value : String(value));
    end = match.index + match[0].length;
  }
  parts.push(text.slice(end));
  return parts.filter((part) => part !== "");
}

// A server code made readable: "low_battery" → "low battery".
function humanize(code) {
  if (!code) return "";
  return String(code).replace(/_/g, " ");
}

export function label(group, code) {
  const key = `${group}.${code}`;
  return hasText(key) ? t(key) : humanize(code);
}

export function applyStrings(root = document) {
  if (root === document) document.documentElement.lang = language;
  for (const element of root.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n);
  }
  for (const attribute of TRANSLATED_ATTRIBUTES) {
    for (const element of root.querySelectorAll(`[data-i18n-${attribute}]`)) {
      element.setAttribute(attribute, t(element.getAttribute(`data-i18n-${attribute}`)));
    }
  }
}

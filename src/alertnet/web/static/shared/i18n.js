// Text for people, by key, in the language the page speaks (DESIGN §11). The catalogs are
// /static/i18n/<language>.json, one file per language with a section per page ("shared",
// "login", "console", "tablet"); English is the source of the keys. Each page's strings
// module awaits startLanguage(page) once, before anything asks for a text; every module asks
// for what a person reads through t(), never holding the sentence itself.
//
//   startLanguage("console")             reads /web/config.json (language, languages,
//                                        timezone), then the catalog of that language.
//   t("alarm.waiting", {count: 2})       "{name}" placeholders; a value may be an object of
//                                        plural forms ({one, few, many, other}) picked by
//                                        params.count with the language's plural rules;
//                                        the count is written the language's way.
//   tParts("queue.opened-ago", {age: el}) the same sentence as text and elements, for h():
//                                        "opened {age} ago" → ["opened ", el, " ago"].
//   label("post-status", "off_duty")     the text of a server code, or the code made
//                                        readable when the catalog does not know it yet.
//   applyStrings()                       fills data-i18n="key" (text) and
//                                        data-i18n-<attribute>="key" (aria-label, title,
//                                        placeholder) in the page, and <html lang>.
//
// Which language: the server's answer in config.json (the signed-in user's stored choice,
// else Accept-Language, else ALERTNET_DEFAULT_LANGUAGE). Before login (the login page) a
// choice made with the page's switcher, kept in localStorage, goes first. A missing key shows
// as the key itself (and a console warning), never as an empty place.

const TRANSLATED_ATTRIBUTES = ["aria-label", "title", "placeholder"];
const PLACEHOLDER = /\{(\w+)\}/g;
const STORED_LANGUAGE = "alertnet.language";
export const DEFAULT_LANGUAGE = "uz";
export const DEFAULT_TIMEZONE = "Asia/Tashkent";

let catalog = {};
let language = "en";
let pluralRules = new Intl.PluralRules(language);
let numberFormat = new Intl.NumberFormat(language);
let config = { language: DEFAULT_LANGUAGE, languages: ["uz", "ru", "en"], timezone: DEFAULT_TIMEZONE };
const reported = new Set();

export function useCatalog(strings, catalogLanguage) {
  catalog = strings;
  language = catalogLanguage;
  pluralRules = new Intl.PluralRules(language);
  numberFormat = new Intl.NumberFormat(language, { useGrouping: true });
}

// What the server says about the page (null when it cannot be asked: the built-in defaults).
async function fetchConfig() {
  try {
    const response = await fetch("/web/config.json", {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
    });
    return response.ok ? await response.json() : null;
  } catch {
    return null;
  }
}

export function storedLanguage() {
  try {
    return localStorage.getItem(STORED_LANGUAGE);
  } catch {
    return null;
  }
}

export function rememberLanguage(code) {
  try {
    localStorage.setItem(STORED_LANGUAGE, code);
  } catch {
    // A browser that keeps nothing still switches the page it shows.
  }
}

async function fetchCatalog(code) {
  const response = await fetch(`/static/i18n/${encodeURIComponent(code)}.json`, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`no ${code} catalog (HTTP ${response.status})`);
  return response.json();
}

// Reads the config and installs the page's catalog; beforeLogin: a switcher choice wins.
export async function startLanguage(page, { beforeLogin = false } = {}) {
  const answer = await fetchConfig();
  if (answer) config = { ...config, ...answer };
  if (!Array.isArray(config.languages) || config.languages.length === 0) config.languages = ["uz", "ru", "en"];
  if (!config.timezone) config.timezone = DEFAULT_TIMEZONE;
  const stored = storedLanguage();
  let wanted = answer ? config.language : stored || DEFAULT_LANGUAGE;
  if (beforeLogin && stored) wanted = stored;
  if (!config.languages.includes(wanted)) wanted = config.languages.includes(DEFAULT_LANGUAGE) ? DEFAULT_LANGUAGE : config.languages[0];
  let catalogs;
  try {
    catalogs = await fetchCatalog(wanted);
  } catch (error) {
    console.warn(`alertnet: ${error.message}; showing English`);
    wanted = "en";
    catalogs = await fetchCatalog(wanted);
  }
  config.language = wanted;
  useCatalog({ ...catalogs.shared, ...catalogs[page] }, wanted);
}

export function currentLanguage() {
  return language;
}

export function offeredLanguages() {
  return [...config.languages];
}

export function timeZone() {
  return config.timezone;
}

export function webConfig() {
  return { ...config };
}

export function formatNumber(value) {
  return numberFormat.format(value);
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

// A value as a person reads it. A count is written the language's way ("1 234" in Russian);
// other numbers (alert ids, coordinates, signal levels) are codes and stay as they are.
function written(name, value) {
  return name === "count" && typeof value === "number" && Number.isFinite(value) ? formatNumber(value) : String(value);
}

export function t(key, params = {}) {
  const text = template(key, params);
  if (text === null) return key;
  return text.replace(PLACEHOLDER, (placeholder, name) =>
    Object.hasOwn(params, name) ? written(name, params[name]) : placeholder,
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
    parts.push(value instanceof Node ? value : written(match[1], value));
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

// Every text the login page shows, by key (English); the languages work replaces this
// catalog with one per language.

import { useCatalog } from "../shared/i18n.js";
import { SHARED_STRINGS } from "../shared/strings.js";

export const LANGUAGE = "en";

export const STRINGS = {
  ...SHARED_STRINGS,
  "page.title": "alertnet — log in",
  "page.intro": "City emergency network — log in to continue.",
  "page.username": "Username",
  "page.password": "Password",
  "page.submit": "Log in",
  "login.missing": "Enter your username and password.",
  "login.wrong": "Wrong username or password.",
  "login.too-many": "Too many attempts. {detail}",
  "login.offline": "No connection to alertnet. Check the network and try again.",
};

useCatalog(STRINGS, LANGUAGE);

export { applyStrings, t } from "../shared/i18n.js";

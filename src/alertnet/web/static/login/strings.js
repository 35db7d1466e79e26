// Every text the login page shows comes from the "shared" and "login" sections of
// /static/i18n/<language>.json (English is the source of the keys; uz and ru translate it).
// The page's HTML names its texts with data-i18n attributes and the modules ask t(key,
// params). This module finishes loading only once the catalog of the page's language is in.

import { startLanguage } from "../shared/i18n.js";

await startLanguage("login", { beforeLogin: true });

export { applyStrings, t } from "../shared/i18n.js";

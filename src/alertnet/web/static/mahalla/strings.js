// Every text the mahalla page shows comes from the "shared" and "mahalla" sections of
// /static/i18n/<language>.json (English is the source of the keys; uz and ru translate it).
// The page's HTML names its texts with data-i18n attributes and the modules ask t(key,
// params). This module finishes loading only once the catalog of the page's language is in.

import { startLanguage } from "../shared/i18n.js";

await startLanguage("mahalla");

export { applyStrings, formatNumber, hasText, label, t, tParts } from "../shared/i18n.js";

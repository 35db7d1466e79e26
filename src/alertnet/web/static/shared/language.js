// The language switcher every page shows: a <select> of the offered languages, each named in
// its own language. Before login the choice only switches this browser (kept in
// localStorage); signed in, it is stored on the user (PATCH /api/v1/users/me) so every page
// and device the user opens speaks it. Either way the page reloads in the new language.
// A choice made on the login page just before logging in is carried to the user
// (carryChoiceToUser) — the person at the keyboard said which language they read.

import { api } from "./api.js";
import { h } from "./dom.js";
import { currentLanguage, offeredLanguages, rememberLanguage, t } from "./i18n.js";

// Each language names itself: a person who cannot read the current one still finds theirs.
const PICKED_HERE = "alertnet.language-picked";
const ENDONYMS = { uz: "Oʻzbekcha", "uz-Cyrl": "Ўзбекча", ru: "Русский", en: "English" };

// Fills the placeholder element (id="language-switch") of the page.
// signedIn: () => whether a user is logged in now (the choice is then stored on the user).
// onError(text): how the page says the choice could not be stored.
export function mountLanguageSwitch({ signedIn = () => false, onError = (text) => console.warn(text) } = {}) {
  const place = document.getElementById("language-switch");
  if (!place) return;
  const select = h(
    "select",
    { id: "language-select", class: "language-select", "aria-label": t("language.label"), title: t("language.label") },
    offeredLanguages().map((code) =>
      h("option", { value: code, lang: code, ...(code === currentLanguage() ? { selected: "" } : {}) }, ENDONYMS[code] ?? code),
    ),
  );
  select.value = currentLanguage();
  select.addEventListener("change", async () => {
    const chosen = select.value;
    select.disabled = true;
    try {
      if (signedIn()) await api("/api/v1/users/me", { method: "PATCH", body: { language: chosen } });
      rememberLanguage(chosen);
      try {
        sessionStorage.setItem(PICKED_HERE, chosen);
      } catch {
        // Without sessionStorage the choice stays with this browser only.
      }
      location.reload();
    } catch (error) {
      select.value = currentLanguage();
      select.disabled = false;
      onError(t("language.save-failed", { error: error.message ?? String(error) }));
    }
  });
  place.replaceChildren(select);
}

// After a login: the language picked on the login page in this tab becomes the user's own.
export async function carryChoiceToUser(user) {
  let picked = null;
  try {
    picked = sessionStorage.getItem(PICKED_HERE);
    sessionStorage.removeItem(PICKED_HERE);
  } catch {
    return;
  }
  if (!picked || !user || user.language === picked) return;
  try {
    await api("/api/v1/users/me", { method: "PATCH", body: { language: picked } });
  } catch (error) {
    console.warn(`alertnet: the language could not be stored on the user: ${error.message}`);
  }
}

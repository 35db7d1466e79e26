// The /login page: username and password → the session cookie, then back to where the user
// was going (?next=, a path on this site only), or to the page of the user's role.

import { ApiError } from "../shared/api.js";
import { carryChoiceToUser, mountLanguageSwitch } from "../shared/language.js";
import { login, safeNext } from "../shared/session.js";
import { applyStrings, t } from "./strings.js";

const form = document.getElementById("login-form");
const errorBox = document.getElementById("login-error");
const submit = document.getElementById("login-submit");

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = false;
}

function destination(user) {
  const fallback = { post: "/tablet", observer: "/mahalla" }[user.role] || "/console";
  return safeNext(new URLSearchParams(location.search).get("next"), fallback);
}

function refusal(error) {
  if (error instanceof ApiError && error.status === 401) return t("login.wrong");
  if (error instanceof ApiError && error.status === 429) {
    return error.retryAfterS ? t("login.too-many", { count: error.retryAfterS }) : t("login.too-many-later");
  }
  if (error instanceof ApiError && error.offline) return t("login.offline");
  return error instanceof ApiError ? error.message : String(error);
}

applyStrings();
mountLanguageSwitch({ onError: showError });

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!username || !password) {
    showError(t("login.missing"));
    return;
  }
  submit.disabled = true;
  errorBox.hidden = true;
  try {
    const user = await login(username, password);
    await carryChoiceToUser(user);
    location.replace(destination(user));
  } catch (error) {
    form.password.value = "";
    showError(refusal(error));
    form.password.focus();
  } finally {
    submit.disabled = false;
  }
});

document.getElementById("username").focus();

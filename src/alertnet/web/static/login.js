// The /login page: username and password → the session cookie, then back to where the user
// was going (?next=, a path on this site only), or to the page of the user's role.

import { ApiError, login, safeNext } from "/static/common.js";

const form = document.getElementById("login-form");
const errorBox = document.getElementById("login-error");
const submit = document.getElementById("login-submit");

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = false;
}

function destination(user) {
  const fallback = user.role === "post" ? "/tablet" : "/console";
  return safeNext(new URLSearchParams(location.search).get("next"), fallback);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!username || !password) {
    showError("Enter your username and password.");
    return;
  }
  submit.disabled = true;
  errorBox.hidden = true;
  try {
    const user = await login(username, password);
    location.replace(destination(user));
  } catch (error) {
    form.password.value = "";
    if (error instanceof ApiError && error.status === 401) {
      showError("Wrong username or password.");
    } else if (error instanceof ApiError && error.status === 429) {
      showError(`Too many attempts. ${error.detail}`);
    } else if (error instanceof ApiError && error.offline) {
      showError("No connection to alertnet. Check the network and try again.");
    } else {
      showError(error instanceof ApiError ? error.detail : String(error));
    }
    form.password.focus();
  } finally {
    submit.disabled = false;
  }
});

document.getElementById("username").focus();

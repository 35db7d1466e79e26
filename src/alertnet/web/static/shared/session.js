// The login session (a cookie the API set): who is logged in, logging in and out, and the
// trip to /login and back (?next=, a path on this site only).

import { ApiError, api } from "./api.js";

export async function login(username, password) {
  return api("/api/v1/auth/login", { method: "POST", body: { username, password } });
}

export async function logout() {
  try {
    await api("/api/v1/auth/logout", { method: "POST" });
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
  }
}

// The logged-in user ({user_id, username, role, post_id, mahalla_id}) or null.
export async function currentUser() {
  try {
    return await api("/api/v1/auth/me");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return null;
    throw error;
  }
}

export function loginUrl(next = location.pathname) {
  return `/login?next=${encodeURIComponent(next)}`;
}

export function goToLogin(next = location.pathname) {
  location.replace(loginUrl(next));
}

// The current user, or a trip to /login (which comes back here once logged in).
export async function requireLogin() {
  const user = await currentUser();
  if (user === null) {
    goToLogin();
    return new Promise(() => {}); // the page is going away
  }
  return user;
}

// A path on this site, safe to redirect to after login (never another origin).
export function safeNext(value, fallback) {
  if (typeof value !== "string" || !value.startsWith("/")) return fallback;
  if (value.startsWith("//") || value.startsWith("/\\") || /[\u0000-\u001f]/.test(value)) {
    return fallback;
  }
  return value;
}

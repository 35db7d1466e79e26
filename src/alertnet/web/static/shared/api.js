// alertnet's HTTP API for the pages: api(path, {method, body}) → parsed JSON (null for 204).
//
// Failures throw ApiError with .status, .code and .detail from alertnet's {"error", "detail",
// "code"} body (status 0: no connection or no answer in time); its .message is what a person
// reads: the catalog's "api-error.<code>" text in the page's language where there is one,
// else the English detail. A 401 also fires
// "alertnet:unauthorized" on window, so a page can send the user to /login.
// serverNow() is this clock corrected by the Date header of the answers: countdowns to the
// server's deadlines use it.

import { hasText, t } from "./i18n.js";

function readable(code, detail, status) {
  const key = `api-error.${code}`;
  if (code && hasText(key)) return t(key);
  return detail || code || `HTTP ${status}`;
}

export class ApiError extends Error {
  constructor(status, code, detail, { retryAfterS = null } = {}) {
    super(readable(code, detail, status));
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.error = code;
    this.detail = detail;
    this.retryAfterS = retryAfterS;
  }

  get offline() {
    return this.status === 0;
  }
}

// Server clock minus this clock, in ms (the Date header has 1 s resolution, so skews under
// 1.5 s are ignored).
let clockOffsetMs = 0;

export function serverNow() {
  return Date.now() + clockOffsetMs;
}

function noteServerDate(response) {
  const header = response.headers.get("Date");
  if (!header) return;
  const serverMs = Date.parse(header);
  if (Number.isNaN(serverMs)) return;
  const offset = serverMs + 500 - Date.now();
  clockOffsetMs = Math.abs(offset) > 1500 ? offset : 0;
}

export async function api(path, { method = "GET", body, timeoutMs = 15000 } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  init.signal = controller.signal;
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    const why = error && error.name === "AbortError" ? "api.no-answer" : "api.no-connection";
    throw new ApiError(0, "offline", t(why, { request: `${method} ${path}` }));
  } finally {
    clearTimeout(timer);
  }
  noteServerDate(response);
  if (response.status === 204) return null;
  let payload = null;
  const text = await response.text();
  if (text) {
    try {
      payload = JSON.parse(text);
    } catch {
      payload = null;
    }
  }
  if (!response.ok) {
    const retryAfter = Number.parseInt(response.headers.get("Retry-After") ?? "", 10);
    const error = new ApiError(
      response.status,
      payload && (payload.code || payload.error) ? payload.code || payload.error : `http_${response.status}`,
      payload && payload.detail ? payload.detail : response.statusText,
      { retryAfterS: Number.isFinite(retryAfter) ? retryAfter : null },
    );
    if (response.status === 401) {
      window.dispatchEvent(new CustomEvent("alertnet:unauthorized", { detail: error }));
    }
    throw error;
  }
  return payload;
}

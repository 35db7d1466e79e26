// What the crew does: go available or off duty, accept or decline an offer, arrive, close the
// alert with an outcome, log out. One action at a time; each answer updates the screen.

import { ApiError, api } from "../shared/api.js";
import { goToLogin, logout } from "../shared/session.js";
import { applyPost, stopGeolocation } from "./location.js";
import { describeError, toast } from "./messages.js";
import { endAlert, endOffer, setAlert, showOffer } from "./offer.js";
import { link, state } from "./state.js";
import { label, t } from "./strings.js";
import { render } from "./view.js";

async function act(work) {
  if (state.working) return;
  state.working = true;
  render();
  try {
    await work();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return; // off to the login page
    toast(describeError(error), { error: true });
  } finally {
    state.working = false;
    render();
  }
}

export function setStatus(status) {
  return act(async () => {
    const me = await api("/api/v1/posts/me/status", { method: "POST", body: { status } });
    applyPost(me.post);
    if (me.offer) showOffer(me.offer);
  });
}

export function accept() {
  const offer = state.offer;
  if (!offer) return;
  return act(async () => {
    try {
      const answer = await api(`/api/v1/offers/${offer.id}/accept`, { method: "POST" });
      endOffer(null);
      setAlert(answer.alert);
      // A silent alarm's device is told "received" only (DESIGN §3): say so, not "told".
      toast(t(answer.alert && answer.alert.silent ? "action.accepted-silent" : "action.accepted"));
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        endOffer(t("action.too-late", { detail: error.message }), { error: true });
        return;
      }
      throw error;
    }
  });
}

export function decline(reason) {
  const offer = state.offer;
  if (!offer) return;
  return act(async () => {
    try {
      await api(`/api/v1/offers/${offer.id}/decline`, { method: "POST", body: { reason } });
      endOffer(null);
      toast(t("action.declined"));
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        endOffer(t("action.already-ended", { detail: error.message }));
        return;
      }
      throw error;
    }
  });
}

export function arrive() {
  const alert = state.alert;
  if (!alert) return;
  return act(async () => {
    setAlert(await api(`/api/v1/alerts/${alert.id}/arrive`, { method: "POST" }));
  });
}

export function closeAlert(outcome, note) {
  const alert = state.alert;
  if (!alert) return;
  return act(async () => {
    const closed = await api(`/api/v1/alerts/${alert.id}/close`, {
      method: "POST",
      body: { outcome, note },
    });
    state.closedAlerts.add(closed.id);
    endAlert(null); // the stream may have said "closed" first: this message says more
    toast(t("action.closed", { outcome: label("outcome", outcome) }));
  });
}

export async function signOut() {
  if (state.working) return;
  state.working = true;
  render();
  try {
    // Nobody will answer offers on this tablet any more: do not stay "available".
    if (state.post && state.post.status === "available") {
      await api("/api/v1/posts/me/status", { method: "POST", body: { status: "off_duty" } });
    }
    await logout();
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) {
      toast(t("action.not-logged-out", { error: describeError(error) }), { error: true });
      state.working = false;
      render();
      return;
    }
  }
  if (link.stream) link.stream.stop();
  stopGeolocation();
  goToLogin("/tablet");
}

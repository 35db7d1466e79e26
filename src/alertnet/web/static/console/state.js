// What the console knows and shows: open alerts, pending offers, posts, mahallas, the
// selected alert and the panels' settings. Feed messages and REST answers carry whole
// resources, so each change here replaces a view by id.

// DESIGN §4: a post is eligible with a position under 300 s old, within 10 km of the alert.
export const LOCATION_MAX_AGE_MS = 300 * 1000;
export const MAX_DISTANCE_M = 10000;
export const OPEN_STATES = new Set(["new", "offered", "accepted", "on_scene", "escalated"]);

export const S = {
  me: null,
  canAct: false,
  alerts: new Map(), // id → alert view (open alerts only)
  offers: new Map(), // alert id → its pending offer
  posts: new Map(),
  mahallas: new Map(),
  selectedId: null,
  detail: null,
  detailToken: 0,
  acknowledged: new Set(), // escalated alerts whose alarm a dispatcher silenced
  buffer: null, // stream messages held back while the state is (re)loaded over REST
  loaded: false,
  queueFilter: "all",
  tab: "detail",
  devicesShown: false,
  offlineSince: null,
  statsTimer: null,
  stats: null, // the last statistics loaded: {handlingToday, handlingWeek, countsToday, countsWeek}
};

export function upsertAlert(view) {
  const previous = S.alerts.get(view.id);
  if (OPEN_STATES.has(view.state)) {
    // An alert that escalates again (after an offer that came to nothing) rings again.
    if (view.state === "escalated" && (!previous || previous.state !== "escalated")) {
      S.acknowledged.delete(view.id);
    }
    S.alerts.set(view.id, view);
  } else {
    S.alerts.delete(view.id);
    S.acknowledged.delete(view.id);
  }
  // Only an offered alert has a pending offer.
  if (view.state !== "offered") S.offers.delete(view.id);
}

export function upsertOffer(offer) {
  if (offer.state === "pending") {
    S.offers.set(offer.alert_id, offer);
  } else if (S.offers.get(offer.alert_id)?.id === offer.id) {
    S.offers.delete(offer.alert_id);
  }
  if (!S.alerts.has(offer.alert_id) && offer.alert && OPEN_STATES.has(offer.alert.state)) {
    S.alerts.set(offer.alert_id, offer.alert);
  }
}

// The whole picture from REST; acknowledgements survive only for alerts still escalated.
export function replaceAll({ alerts, offers, posts, mahallas }) {
  const previous = S.alerts;
  S.alerts = new Map(alerts.map((alert) => [alert.id, alert]));
  for (const id of [...S.acknowledged]) {
    const was = previous.get(id);
    const now = S.alerts.get(id);
    if (!now || now.state !== "escalated" || (was && was.state !== "escalated")) {
      S.acknowledged.delete(id);
    }
  }
  S.offers = offers;
  S.posts = new Map(posts.map((post) => [post.id, post]));
  S.mahallas = new Map(mahallas.map((mahalla) => [mahalla.id, mahalla]));
  S.loaded = true;
}

// The pending offer a post holds, if any.
export function offerHeldBy(postId) {
  return [...S.offers.values()].find((offer) => offer.post_id === postId);
}

// Escalated alerts whose alarm nobody silenced yet.
export function waitingEscalated() {
  return [...S.alerts.values()].filter(
    (alert) => alert.state === "escalated" && !S.acknowledged.has(alert.id),
  );
}

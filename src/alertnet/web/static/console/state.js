// What the console knows and shows: open alerts, pending offers, posts, mahallas, the
// selected alert and the panels' settings. Feed messages and REST answers carry whole
// resources, so each change here replaces a view by id.

// DESIGN §4: a post is eligible with a position under 300 s old, within 10 km of the alert.
export const LOCATION_MAX_AGE_MS = 300 * 1000;
export const MAX_DISTANCE_M = 10000;
export const OPEN_STATES = new Set(["verify", "new", "offered", "accepted", "on_scene", "escalated"]);

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
  if (OPEN_STATES.has(view.state)) {
    S.alerts.set(view.id, view);
  } else {
    S.alerts.delete(view.id);
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

// The whole picture from REST.
export function replaceAll({ alerts, offers, posts, mahallas }) {
  S.alerts = new Map(alerts.map((alert) => [alert.id, alert]));
  S.offers = offers;
  S.posts = new Map(posts.map((post) => [post.id, post]));
  S.mahallas = new Map(mahallas.map((mahalla) => [mahalla.id, mahalla]));
  S.loaded = true;
}

// The pending offer a post holds, if any.
export function offerHeldBy(postId) {
  return [...S.offers.values()].find((offer) => offer.post_id === postId);
}

// Whether a dispatcher acknowledged the alert (on the server, for every console) since it
// last escalated: an alert that escalates again rings again.
export function isAcknowledged(alert) {
  if (!alert.acknowledged_at) return false;
  if (alert.state === "verify") {
    // A camera alert (DESIGN §9.3): silenced once it rang, until another event merges in.
    const rang = Math.max(Date.parse(alert.verify_due_at || 0), Date.parse(alert.last_event_at || 0));
    return Date.parse(alert.acknowledged_at) >= rang;
  }
  return !alert.escalated_at || Date.parse(alert.acknowledged_at) >= Date.parse(alert.escalated_at);
}

// A camera alert nobody confirmed or dismissed within ALERTNET_VERIFY_TIMEOUT_S (DESIGN §9.3).
export function verifyOverdue(alert, now = Date.now()) {
  return alert.state === "verify" && Boolean(alert.verify_due_at) && now >= Date.parse(alert.verify_due_at);
}

// An alert that rings until acknowledged: escalated (no post took it), or a device trouble
// for an alarm panel code alertnet does not know (DESIGN §6.3, §9.1: never guessed into an
// alarm, so a dispatcher must look at it).
function rings(alert) {
  if (alert.state === "escalated" || verifyOverdue(alert)) return true;
  return alert.category === "trouble" && (alert.trouble || "").split(",").includes("unknown_code");
}

// Alerts whose alarm nobody silenced yet.
export function waitingEscalated() {
  return [...S.alerts.values()].filter((alert) => rings(alert) && !isAcknowledged(alert));
}

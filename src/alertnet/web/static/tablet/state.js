// What the tablet knows: this post, the offer on screen, the alert it holds, the device's
// position fix and what was last sent, and the link to dispatch. Offers and alerts that have
// ended are remembered by id so a late copy can never bring one back.

export const ACTIVE_ALERT_STATES = new Set(["accepted", "on_scene"]);
export const TERMINAL_ALERT_STATES = new Set(["closed", "cancelled"]);

export const state = {
  user: null,
  post: null,
  offer: null, // the pending offer on screen
  alert: null, // the alert this post holds (accepted / on scene)
  loaded: false,
  working: false, // an action request is in flight
  endedOffers: new Set(),
  closedAlerts: new Set(),
  rings: 0,
};

export const geo = {
  watchId: null,
  status: "off", // off | waiting | ok | denied | unavailable | unsupported | insecure
  fix: null, // {lat, lon, accuracy_m, at}
  sentFix: null,
  sentAt: 0,
  sentOk: null,
  sending: false,
  refreshingAt: 0,
  timer: null,
};

export const link = {
  stream: null,
  offlineSince: null, // ISO time the stream went down, null while it is up
};

export function isMine(postId) {
  return state.user !== null && postId === state.user.post_id;
}

export function onDuty() {
  return state.post !== null && state.post.status !== "off_duty";
}

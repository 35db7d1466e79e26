// Every text the mobile post's tablet app shows, by key (English). The page's HTML names its
// texts with data-i18n attributes and the modules ask t(key, params); the languages work
// replaces this catalog with one per language. Plural forms are {one, other}.

import { useCatalog } from "../shared/i18n.js";
import { SHARED_STRINGS } from "../shared/strings.js";

export const LANGUAGE = "en";

export const STRINGS = {
  ...SHARED_STRINGS,

  // tablet.html
  "page.title": "alertnet — mobile post",
  "page.offline-title": "Offline",
  "page.offline-text": "— no live connection to dispatch. Reconnecting by itself…",
  "page.logout": "Log out",
  "page.geo-retry": "Try again",
  "page.loading": "Loading…",
  "page.go-available": "Go available",
  "page.go-off-duty": "Go off duty",
  "page.drill": "DRILL — training",
  "page.device": "Device",
  "page.mahalla": "Mahalla",
  "page.navigate": "Navigate",
  "page.map": "Map (OpenStreetMap)",
  "page.arrived": "Arrived on scene",
  "page.close-open": "Close alert…",
  "page.outcome": "Outcome",
  "page.outcome.confirmed": "Confirmed — real emergency",
  "page.outcome.false_alarm": "False alarm",
  "page.outcome.no_one_found": "No one found",
  "page.outcome.handed_over": "Handed over (ambulance, fire, other unit)",
  "page.outcome.other": "Other (explain in the note)",
  "page.note": "Note",
  "page.close-confirm": "Confirm close",
  "page.back": "Back",
  "page.offer-kicker": "New alert for you",
  "page.offer-drill": "DRILL — training, not real",
  "page.distance": "Distance",
  "page.decline-question": "Why decline?",
  "page.decline.busy": "Busy with another incident",
  "page.decline.cannot-get-there": "Cannot get there (too far, road blocked)",
  "page.decline.vehicle": "Vehicle or equipment problem",
  "page.decline.other": "Other",
  "page.decline-reason": "Reason",
  "page.decline-confirm": "Confirm decline",
  "page.accept": "Accept",
  "page.decline-open": "Decline…",

  // server codes
  "category-title.panic": "Panic button",
  "category-title.intrusion": "Intrusion alarm",
  "category-title.fire": "Fire alarm",
  "category-title.medical": "Medical emergency",
  "category-title.tamper": "Device tampered",
  "outcome.confirmed": "confirmed emergency",
  "outcome.false_alarm": "false alarm",
  "outcome.no_one_found": "no one found",
  "outcome.handed_over": "handed over",
  "outcome.other": "other",
  "post-status.available": "Available",
  "post-status.busy": "Busy",
  "post-status.off_duty": "Off duty",
  "offer-state.pending": "pending",
  "offer-state.accepted": "accepted",
  "offer-state.declined": "declined",
  "offer-state.expired": "expired",
  "offer-state.withdrawn": "withdrawn",
  "device-kind.panic_button": "panic button",
  "device-kind.intrusion_alarm": "intrusion alarm",
  "device-kind.fire_alarm": "fire alarm",
  "device-kind.medical_button": "medical button",
  "role.admin": "admin",
  "role.dispatcher": "dispatcher",
  "role.observer": "observer",
  "role.post": "post",

  // the alert and the offer on screen
  "alert.no-address": "No street address — device at {lat}, {lon}",
  "alert.unknown-device": "unknown device",
  "alert.unknown-mahalla": "unknown mahalla",
  "alert.cancel-pressed": {
    one: "⚠ CANCEL was pressed once. The person may be forced to cancel — go anyway.",
    other: "⚠ CANCEL was pressed {count} times. The person may be forced to cancel — go anyway.",
  },
  "alert.drill-title": "DRILL: {title}",
  "alert.accepted": "Accepted — on the way",
  "alert.on-scene": "On scene",
  "alert.closed": "The alert was closed.",
  "alert.cancelled": "The dispatcher cancelled this alert.",
  "alert.reassigned": "The dispatcher gave this alert to another post.",
  "alert.ended-offline": "The alert ended while the tablet was offline.",
  "offer.earlier-ended-offline": "The earlier offer ended while the tablet was offline.",
  "offer.ended-offline": "The offer ended while the tablet was offline.",
  "offer.declined": "Offer declined — it goes to the next post.",
  "offer.expired": "Offer expired — no answer in time; it went to the next post.",
  "offer.withdrawn": "Offer withdrawn by the dispatcher.",
  "offer.withdrawn-reason": "Offer {reason}.",
  "offer.withdrawn-because": "Offer withdrawn: {reason}.",
  "offer.ended-other": "The offer is {state}.",
  "offer.time-up": "time is up — waiting for dispatch",
  "offer.left": "left to answer",
  "offer.gave-up": "Offer expired — no answer in time.",

  // actions
  "action.no-connection": "No connection to alertnet — nothing was sent. Try again.",
  "action.accepted": "Accepted — help is on the way. The caller's device was told.",
  "action.too-late": "Too late: {detail}",
  "action.declined": "Declined — the alert goes to the next post.",
  "action.already-ended": "The offer had already ended: {detail}",
  "action.closed": "Alert closed: {outcome}. Thank you.",
  "action.not-logged-out": "Not logged out: {error}",
  "form.choose-reason": "Choose a reason.",
  "form.choose-outcome": "Choose the outcome.",

  // duty and position
  "idle.off-duty": "Off duty. No alerts will be offered to this post.",
  "idle.busy": "Busy.",
  "idle.available": "Available — waiting for alerts. Keep this screen open.",
  "geo.denied":
    "LOCATION BLOCKED — allow location for this site in the browser settings, then tap Try again. Without your position no alert can be offered to this post.",
  "geo.unavailable":
    "No GPS position — dispatch cannot see where you are. Keep the tablet near a window.",
  "geo.unsupported": "This browser cannot report a position: no alert can be offered to this post.",
  "geo.insecure": "Location needs a secure (HTTPS) connection: ask the administrator.",
  "position.off-duty": "Position is not reported while off duty.",
  "position.sent": "Position sent {time}",
  "position.sent-accuracy": "Position sent {time} (±{accuracy} m)",
  "position.waiting": "Waiting for a position…",
  "position.not-sent": "Position not sent yet.",

  // the link to dispatch
  "link.online": "Live",
  "link.offline": "Offline",
  "link.connecting": "Connecting",
  "link.since": "(since {time})",

  // start
  "start.unreachable": "Cannot reach alertnet: {error} Reload the page to try again.",
  "start.not-a-post":
    "{username} is not a mobile post account (role {role}). Log out and log in with the post's account.",
};

useCatalog(STRINGS, LANGUAGE);

export { applyStrings, label, t } from "../shared/i18n.js";

// Why each post is or is not eligible for an alert (DESIGN §4), in the assign drawer. The
// verdicts come from the server's own dispatch rule (GET /api/v1/alerts/{id}/eligibility), so
// the drawer never guesses: it only words the reason (off duty, busy, position stale, too
// far, paused after a decline or an expired offer until a time, holding a drill, …).

import { h } from "../shared/dom.js";
import { formatClock } from "../shared/format.js";
import { hasText, t } from "./strings.js";

export async function loadEligibility(api, alertId) {
  const posts = await api(`/api/v1/alerts/${alertId}/eligibility`);
  return {
    onDuty: posts.filter((post) => post.status !== "off_duty"),
    offDuty: posts.filter((post) => post.status === "off_duty"),
  };
}

// The server's reason in the page's language; "eligible" says nothing beyond the verdict.
export function reasonText(post) {
  const key = `eligibility.${post.reason}`;
  if (!hasText(key)) return post.reason;
  return t(key, { id: post.other_alert_id ?? "?", time: formatClock(post.until) });
}

// The drawer's note for a post on duty (its status has a column of its own).
export function candidateNotes(post) {
  const notes = post.eligible ? [] : [t("assign.not-eligible")];
  notes.push(post.reason === "eligible" ? t("assign.eligible") : reasonText(post));
  return { eligible: post.eligible, notes: notes.join(" · ") };
}

// Posts off duty cannot be assigned; the drawer still names them, folded away.
export function offDutyList(posts) {
  if (!posts.length) return null;
  return h(
    "details",
    { class: "off-duty-posts" },
    h("summary", {}, t("eligibility.off-duty-heading", { count: posts.length })),
    h(
      "ul",
      {},
      posts.map((post) =>
        h("li", { class: "candidate-off", "data-post-id": post.id, "data-reason": post.reason }, `${post.callsign} — ${reasonText(post)}`),
      ),
    ),
  );
}

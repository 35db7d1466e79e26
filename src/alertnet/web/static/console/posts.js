// The posts panel (dispatchers only): each post's status, how old its position is, the offer
// it holds, and a button to find it on the map.

import { $, h } from "../shared/dom.js";
import { isStale, positionText } from "./format.js";
import { showOnMap } from "./map.js";
import { S, offerHeldBy } from "./state.js";
import { label, t } from "./strings.js";
import { rebuildKeepingFocus } from "./widgets.js";

function postRow(post) {
  const offer = offerHeldBy(post.id);
  const placed = post.lat !== null && post.lat !== undefined;
  return h(
    "tr",
    { class: `post-row status-${post.status}${isStale(post) ? " stale" : ""}` },
    h("td", {}, post.callsign),
    h("td", {}, h("span", { class: `status-badge post-status-${post.status}` }, label("post-status", post.status))),
    h("td", {}, positionText(post)),
    h("td", {}, offer ? t("posts.offer", { id: offer.alert_id }) : "—"),
    h(
      "td",
      {},
      placed
        ? h(
            "button",
            {
              type: "button",
              class: "locate",
              "data-key": `post-${post.id}`,
              "aria-label": t("posts.locate-label", { callsign: post.callsign }),
              onclick: () => showOnMap(post.lat, post.lon, 16),
            },
            t("posts.locate"),
          )
        : null,
    ),
  );
}

export function renderPosts() {
  if (!S.canAct) return;
  const body = $("#posts-table tbody");
  const posts = [...S.posts.values()].sort((a, b) => a.callsign.localeCompare(b.callsign));
  const available = posts.filter((post) => post.status === "available" && !isStale(post)).length;
  $("#posts-note").textContent = t("posts.summary", { count: posts.length, available });
  rebuildKeepingFocus(body, () => body.replaceChildren(...posts.map(postRow)));
}

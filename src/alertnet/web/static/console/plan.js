// The action plan of an alert (DESIGN §10): its category's checklist, each step with who ticked
// it and when. A shipped step names a catalog key (plan-step.<key>, read in the page's
// language); an admin's own step is text, shown as written. Ticking is shared and recorded on
// the server, and cannot be undone (a mistake is put right with a note). A step that calls the
// site is struck through on a silent alert: nobody may do it.

import { api } from "../shared/api.js";
import { h } from "../shared/dom.js";
import { describeError, formatWhen } from "./format.js";
import { S } from "./state.js";
import { t } from "./strings.js";
import { say } from "./widgets.js";

function stepText(step) {
  return step.key ? t(`plan-step.${step.key}`) : step.text;
}

async function tick(alertId, step, box, refresh) {
  box.disabled = true;
  try {
    await api(`/api/v1/alerts/${alertId}/steps/${step.n}`, { method: "POST" });
    say(t("plan.ticked", { id: alertId, n: step.n }), "success");
    await refresh();
  } catch (error) {
    box.checked = false;
    box.disabled = false;
    say(t("plan.failed", { n: step.n, error: describeError(error) }), "error");
  }
}

function stepItem(detail, step, refresh) {
  const id = `plan-step-${detail.id}-${step.n}`;
  const done = Boolean(step.ticked_by);
  const box = h("input", {
    type: "checkbox",
    id,
    // A done step shows a green tick instead: a disabled box is drawn grey, like "not allowed".
    class: done ? "plan-box visually-hidden" : "plan-box",
    "data-key": `plan-step-${step.n}`,
    checked: done,
    disabled: done || step.skipped || !S.canAct,
    onchange: (event) => {
      if (event.currentTarget.checked) tick(detail.id, step, event.currentTarget, refresh);
    },
  });
  const state = done ? "done" : step.skipped ? "skipped" : "todo";
  return h(
    "li",
    { class: `plan-step plan-${state}`, "data-n": step.n },
    box,
    done ? h("span", { class: "plan-mark", "aria-hidden": "true" }, "✓") : null,
    h("label", { for: id, class: "plan-text" }, stepText(step)),
    done ? h("span", { class: "plan-meta" }, t("plan.done-by", { who: step.ticked_by, when: formatWhen(step.ticked_at) })) : null,
    step.skipped ? h("span", { class: "plan-meta" }, t("plan.not-silent")) : null,
  );
}

export function planSection(detail, refresh) {
  const plan = detail.plan;
  const earlier = (plan.earlier_ticks || []).map((done) =>
    h("li", { class: "plan-earlier" }, t("plan.earlier", { step: stepText(done), who: done.by, when: formatWhen(done.at) })),
  );
  return h(
    "section",
    { class: "detail-section plan", "aria-labelledby": "plan-heading" },
    h("h3", { id: "plan-heading" }, t("plan.heading")),
    plan.steps.length
      ? h("ol", { class: "plan-steps" }, plan.steps.map((step) => stepItem(detail, step, refresh)))
      : h("p", { class: "empty" }, t("plan.empty")),
    earlier.length ? h("ul", { class: "plan-earlier-list" }, earlier) : null,
  );
}

// The dispatchers' shared work on the alert in the detail (DESIGN §10): acknowledgement, action
// plan and notes, in that order under the action bar. The server sends them to the console
// only (dispatchers, admins): for anyone else the alert has no plan and nothing is shown.

import { acknowledgementSection } from "./acknowledge.js";
import { notesSection } from "./notes.js";
import { planSection } from "./plan.js";

export function workflowSections(detail, refresh) {
  if (!detail.plan) return [];
  return [acknowledgementSection(detail, refresh), planSection(detail, refresh), notesSection(detail, refresh)];
}

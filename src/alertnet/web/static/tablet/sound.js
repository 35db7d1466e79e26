// Sound on the tablet. A browser keeps a page silent until it is tapped, and a crew must not
// miss an offer because of that: while an offer rings and sound is still locked, a full-width
// "tap to turn sound on" prompt tops the offer; the bar always shows whether sound is on.
// The offer's tone itself (alarm.js) repeats until the offer is answered or ends; once the
// prompt is tapped it rings at once rather than at the next repeat.

import { $, h } from "../shared/dom.js";
import { alarm } from "./alarm.js";
import { t } from "./strings.js";

let wasOn = false;

function ringing() {
  return document.body.dataset.alarm === "on";
}

export function syncSound() {
  const on = alarm.tones.running;
  document.body.dataset.sound = on ? "on" : "off";
  const indicator = $("#sound-state");
  if (indicator) {
    indicator.dataset.sound = on ? "on" : "off";
    const text = t(on ? "sound.on" : "sound.off");
    if (indicator.textContent !== text) indicator.textContent = text;
  }
  const prompt = $("#sound-prompt");
  if (prompt) prompt.hidden = on || !ringing();
  if (on && !wasOn && ringing()) alarm.ring(); // the offer was waiting in silence
  wasOn = on;
}

// Adds the indicator to the bar and the prompt to the offer; follows the alarm and the audio.
export function mountSoundControls() {
  const indicator = h("span", { id: "sound-state", class: "sound-state", role: "status", "data-sound": "off" }, t("sound.off"));
  $("#link-state").after(indicator);
  const prompt = h(
    "button",
    { id: "sound-prompt", class: "sound-prompt", type: "button", hidden: true },
    h("span", { class: "sound-prompt-title" }, t("sound.prompt")),
    h("span", { class: "sound-prompt-detail" }, t("sound.prompt-detail")),
  );
  prompt.addEventListener("click", () => {
    alarm.unlock();
    syncSound();
  });
  $("#offer").prepend(prompt);
  alarm.tones.onChange(syncSound);
  new MutationObserver(syncSound).observe(document.body, { attributes: true, attributeFilter: ["data-alarm"] });
  syncSound();
}

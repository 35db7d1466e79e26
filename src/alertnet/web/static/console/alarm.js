// The alarm for escalated alerts: a repeating tone and the alarm bar until a dispatcher (any
// dispatcher: it is shared) acknowledges each one. Observers are not on call: nothing rings.

import { $ } from "../shared/dom.js";
import { TonePlayer } from "../shared/sound.js";
import { acknowledgeAlerts } from "./acknowledge.js";
import { S, waitingEscalated } from "./state.js";
import { t } from "./strings.js";

const ALARM_PERIOD_MS = 2500;
const TONES = [880, 660, 880];
const TONE_SHAPE = { delayS: 0.01, stepS: 0.22, peakGain: 0.18, fadeS: 0.2, lengthS: 0.21, name: "alarm" };
// Drills never ring the escalation alarm (DESIGN §4): a soft two-note sine chime, a quarter of
// its loudness, less often.
const DRILL_PERIOD_MS = 6000;
const DRILL_TONES = [523, 659];
const DRILL_SHAPE = { delayS: 0.01, stepS: 0.3, peakGain: 0.045, fadeS: 0.28, lengthS: 0.29, type: "sine", name: "drill" };

class AlarmSound {
  constructor() {
    this.tones = new TonePlayer();
    this.timer = null;
    this.mode = null; // "alarm" (real alerts escalated), "drill" (only drills) or null
    this.beeps = 0;
    this.drillBeeps = 0;
  }

  // Browsers start audio only after a user gesture: any click or key press unlocks it.
  unlock() {
    this.tones.unlock();
  }

  get blocked() {
    return !this.tones.running;
  }

  set(mode) {
    if (mode === this.mode) return;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.mode = mode;
    if (mode) {
      this.beep();
      this.timer = setInterval(() => this.beep(), mode === "drill" ? DRILL_PERIOD_MS : ALARM_PERIOD_MS);
    }
  }

  beep() {
    if (!this.tones.context) this.unlock();
    if (this.mode === "drill") {
      if (this.tones.play(DRILL_TONES, DRILL_SHAPE)) {
        this.drillBeeps += 1;
        document.body.dataset.drillBeeps = String(this.drillBeeps);
      }
    } else if (this.tones.play(TONES, TONE_SHAPE)) {
      this.beeps += 1;
      document.body.dataset.beeps = String(this.beeps);
    }
    $("#sound-enable").hidden = !this.blocked;
  }
}

export const alarm = new AlarmSound();

export function updateAlarm() {
  if (!S.canAct) {
    document.body.dataset.alarm = "silent"; // observers are not on call: no alarm to silence
    return;
  }
  const waiting = waitingEscalated();
  const real = waiting.filter((alert) => !alert.drill).length;
  const drills = waiting.length - real;
  const bar = $("#alarm-bar");
  bar.hidden = waiting.length === 0;
  bar.classList.toggle("drill-only", real === 0 && drills > 0);
  if (waiting.length) {
    // Unknown alarm-panel codes ring too (DESIGN §9.1), without being escalated alerts.
    const codes = waiting.filter((alert) => alert.category === "trouble").length;
    // Camera alerts nobody confirmed or dismissed in time (DESIGN §9.3) ring like escalations.
    const cameras = waiting.filter((alert) => alert.state === "verify").length;
    const parts = [];
    if (real - codes - cameras) parts.push(t("alarm.waiting", { count: real - codes - cameras }));
    if (cameras) parts.push(t("alarm.verify-waiting", { count: cameras }));
    if (codes) parts.push(t("alarm.unknown-code", { count: codes }));
    const text = parts.length ? parts.join(" · ") : t("alarm.drill-waiting", { count: drills });
    const line = $(".alarm-text", bar);
    if (line.textContent !== text) line.textContent = text;
  }
  document.body.dataset.alarm = real ? "ringing" : drills ? "drill" : "silent";
  alarm.set(real ? "alarm" : drills ? "drill" : null);
  if (!waiting.length) $("#sound-enable").hidden = true;
}

// Acknowledged on the server, for every dispatcher at once (acknowledge.js).
export function acknowledge(ids) {
  return acknowledgeAlerts(ids);
}

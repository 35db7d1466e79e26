// The alarm for escalated alerts: a repeating tone and the alarm bar until a dispatcher
// acknowledges each one. Observers are not on call, so nothing rings for them.

import { $ } from "../shared/dom.js";
import { TonePlayer } from "../shared/sound.js";
import { scheduleRender } from "./render.js";
import { S, waitingEscalated } from "./state.js";
import { t } from "./strings.js";
import { say } from "./widgets.js";

const ALARM_PERIOD_MS = 2500;
const TONES = [880, 660, 880];
const TONE_SHAPE = { delayS: 0.01, stepS: 0.22, peakGain: 0.18, fadeS: 0.2, lengthS: 0.21 };

class AlarmSound {
  constructor() {
    this.tones = new TonePlayer();
    this.timer = null;
    this.beeps = 0;
  }

  // Browsers start audio only after a user gesture: any click or key press unlocks it.
  unlock() {
    this.tones.unlock();
  }

  get blocked() {
    return !this.tones.running;
  }

  set(ringing) {
    if (ringing && !this.timer) {
      this.beep();
      this.timer = setInterval(() => this.beep(), ALARM_PERIOD_MS);
    } else if (!ringing && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  beep() {
    if (!this.tones.context) this.unlock();
    if (this.tones.play(TONES, TONE_SHAPE)) {
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
  const bar = $("#alarm-bar");
  bar.hidden = waiting.length === 0;
  if (waiting.length) {
    const text = t("alarm.waiting", { count: waiting.length });
    const line = $(".alarm-text", bar);
    if (line.textContent !== text) line.textContent = text;
  }
  document.body.dataset.alarm = waiting.length ? "ringing" : "silent";
  alarm.set(waiting.length > 0);
  if (!waiting.length) $("#sound-enable").hidden = true;
}

export function acknowledge(ids) {
  for (const id of ids) S.acknowledged.add(id);
  say(
    ids.length === 1
      ? t("alarm.acknowledged", { id: ids[0] })
      : t("alarm.acknowledged-many", { count: ids.length }),
  );
  scheduleRender();
}

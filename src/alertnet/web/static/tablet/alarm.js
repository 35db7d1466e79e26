// The offer's alarm: a loud repeating tone and vibration until the offer is answered or ends.

import { TonePlayer } from "../shared/sound.js";
import { state } from "./state.js";

const RING_PERIOD_MS = 2500;
const TONES = [880, 660, 880];
const TONE_SHAPE = { delayS: 0.02, stepS: 0.32, peakGain: 0.4, fadeS: 0.26, lengthS: 0.3 };
const VIBRATION_MS = [400, 150, 400, 150, 400];

class Alarm {
  constructor() {
    this.tones = new TonePlayer();
    this.timer = null;
  }

  // Browsers let a page make sound only after a tap: every tap makes sure audio is on.
  unlock() {
    this.tones.unlock();
  }

  start() {
    if (this.timer !== null) return;
    document.body.dataset.alarm = "on";
    this.ring();
    this.timer = setInterval(() => this.ring(), RING_PERIOD_MS);
  }

  stop() {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    document.body.dataset.alarm = "off";
    if (navigator.vibrate) navigator.vibrate(0);
  }

  ring() {
    state.rings += 1;
    this.tones.play(TONES, TONE_SHAPE);
    if (navigator.vibrate) navigator.vibrate(VIBRATION_MS);
  }
}

export const alarm = new Alarm();

// Alarm tones for both pages. Browsers start audio only after a user gesture, so the pages
// call unlock() on every tap and key press; until then tones are skipped (running is false).
// onChange(listener) hears whether sound is on each time that changes (the tablet's indicator);
// last and plays tell tests and field debugging what was really played.

export class TonePlayer {
  constructor() {
    this.context = null;
    this.listeners = new Set();
    this.last = null; // {name, frequencies, peakGain, type} of the last tone played
    this.plays = 0;
  }

  onChange(listener) {
    this.listeners.add(listener);
  }

  changed() {
    for (const listener of this.listeners) listener(this.running);
  }

  unlock() {
    const AudioContextClass = window.AudioContext || window.webkitAudioContext;
    if (!this.context && AudioContextClass) {
      try {
        this.context = new AudioContextClass();
        this.context.addEventListener("statechange", () => this.changed());
      } catch {
        this.context = null;
      }
    }
    if (this.context && this.context.state === "suspended") {
      this.context.resume().then(() => this.changed()).catch(() => {});
    }
    this.changed();
  }

  get running() {
    return Boolean(this.context) && this.context.state === "running";
  }

  // Tones (square waves unless the shape names another type), one per frequency, each stepS
  // after the previous one; returns whether they could be played.
  play(frequencies, { delayS, stepS, peakGain, fadeS, lengthS, type = "square", name = "tone" }) {
    const context = this.context;
    if (!this.running) return false;
    this.plays += 1;
    this.last = { name, frequencies: [...frequencies], peakGain, type };
    const start = context.currentTime + delayS;
    frequencies.forEach((frequency, index) => {
      const at = start + index * stepS;
      const oscillator = context.createOscillator();
      const gain = context.createGain();
      oscillator.type = type;
      oscillator.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(peakGain, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + fadeS);
      oscillator.connect(gain).connect(context.destination);
      oscillator.start(at);
      oscillator.stop(at + lengthS);
    });
    return true;
  }
}

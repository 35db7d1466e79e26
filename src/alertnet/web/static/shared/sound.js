// Alarm tones for both pages. Browsers start audio only after a user gesture, so the pages
// call unlock() on every tap and key press; until then tones are skipped (running is false).

export class TonePlayer {
  constructor() {
    this.context = null;
  }

  unlock() {
    const AudioContextClass = window.AudioContext || window.webkitAudioContext;
    if (!this.context && AudioContextClass) {
      try {
        this.context = new AudioContextClass();
      } catch {
        this.context = null;
      }
    }
    if (this.context && this.context.state === "suspended") {
      this.context.resume().catch(() => {});
    }
  }

  get running() {
    return Boolean(this.context) && this.context.state === "running";
  }

  // Square-wave tones, one per frequency, each stepS after the previous one; returns whether
  // they could be played.
  play(frequencies, { delayS, stepS, peakGain, fadeS, lengthS }) {
    const context = this.context;
    if (!this.running) return false;
    const start = context.currentTime + delayS;
    frequencies.forEach((frequency, index) => {
      const at = start + index * stepS;
      const oscillator = context.createOscillator();
      const gain = context.createGain();
      oscillator.type = "square";
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

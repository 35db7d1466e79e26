// Keeping the screen on while on duty (Screen Wake Lock), so an offer is never missed behind
// a dimmed screen. The browser drops the lock whenever the page is hidden: sync again on return.

import { onDuty } from "./state.js";

let wakeLock = null;
let wakeLockAsked = false;

export async function syncWakeLock() {
  if (!("wakeLock" in navigator) || wakeLockAsked) return;
  const wanted = onDuty() && document.visibilityState === "visible";
  if (wanted && wakeLock === null) {
    wakeLockAsked = true;
    try {
      const lock = await navigator.wakeLock.request("screen");
      lock.addEventListener("release", () => {
        if (wakeLock === lock) wakeLock = null;
      });
      wakeLock = lock;
    } catch {
      wakeLock = null; // refused (battery saver, no permission): the screen may dim
    } finally {
      wakeLockAsked = false;
    }
  } else if (!wanted && wakeLock !== null) {
    const lock = wakeLock;
    wakeLock = null;
    lock.release().catch(() => {});
  }
}

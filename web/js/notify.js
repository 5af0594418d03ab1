// Notifications for messages that arrive while the tab is hidden or another conversation is
// open: the Notification API (permission asked only from a button, never on load) and an
// optional short tone made with WebAudio (the choice is remembered).

const SOUND_KEY = 'sc.sound';
let audio = null;

export const supported = () => 'Notification' in window;
export const permission = () => (supported() ? Notification.permission : 'unsupported');

/** Call from a click: asks the browser for permission. */
export async function enable() {
  if (!supported()) return 'unsupported';
  return Notification.requestPermission();
}

export const soundOn = () => localStorage.getItem(SOUND_KEY) === 'on';

/** Call from a click (browsers allow audio to start only after a user action). */
export function setSound(on) {
  localStorage.setItem(SOUND_KEY, on ? 'on' : 'off');
  if (on) {
    audio ||= new AudioContext();
    audio.resume();
    tone();
  }
}

function tone() {
  try {
    audio ||= new AudioContext();
    if (audio.state === 'suspended') audio.resume();
    const t = audio.currentTime;
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = 'sine';
    osc.frequency.setValueAtTime(880, t);
    osc.frequency.exponentialRampToValueAtTime(1320, t + 0.09);
    gain.gain.setValueAtTime(0.0001, t);
    gain.gain.exponentialRampToValueAtTime(0.15, t + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.25);
    osc.connect(gain).connect(audio.destination);
    osc.start(t);
    osc.stop(t + 0.3);
  } catch { /* no audio here */ }
}

/** A message from someone else arrived; `away` is true when the reader is not looking at it. */
export function incoming({ title, body, tag, onclick }, away) {
  if (!away) return;
  if (soundOn()) tone();
  if (permission() !== 'granted' || document.visibilityState === 'visible') return;
  try {
    const n = new Notification(title, { body, tag, icon: '/assets/icon.svg', renotify: true });
    n.onclick = () => {
      window.focus();
      onclick();
      n.close();
    };
  } catch { /* some browsers only notify from a service worker */ }
}

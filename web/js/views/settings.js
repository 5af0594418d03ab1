// Settings dialog: turn on desktop notifications (the browser asks only after this click),
// the sound for new messages, and downloading your data (a ZIP from /api/me/export/).

import { token } from '../api.js';
import { h } from '../dom.js';
import { size } from '../format.js';
import * as notify from '../notify.js';

const $ = (id) => document.getElementById(id);
const dialog = $('settings-dialog');
const enableBtn = $('notify-enable');
const stateText = $('notify-state');
const sound = $('sound-toggle');
const exportBtn = $('export-data');
const exportState = $('export-state');

function refresh() {
  const p = notify.permission();
  stateText.textContent = {
    granted: 'Notifications are on: you are told about new messages while this tab is in the background.',
    denied: 'Notifications are blocked for this site in your browser settings.',
    default: 'Get a notification for new messages while this tab is in the background.',
    unsupported: 'This browser cannot show notifications.',
  }[p];
  enableBtn.hidden = p !== 'default';
  sound.checked = notify.soundOn();
}

export function openSettings() {
  refresh();
  if (!exportBtn.disabled) exportState.textContent = '';
  dialog.showModal();
}

enableBtn.addEventListener('click', async () => {
  await notify.enable();
  refresh();
});
sound.addEventListener('change', () => notify.setSound(sound.checked));

// The archive needs the token, which a plain link cannot carry: fetched, then saved.
exportBtn.addEventListener('click', async () => {
  exportBtn.disabled = true;
  exportState.textContent = 'Preparing your archive…';
  try {
    let res;
    try {
      res = await fetch('/api/me/export/', { headers: { Authorization: `Bearer ${await token()}` } });
    } catch {
      throw new Error('Cannot reach the server. Try again when you are back online.');
    }
    if (!res.ok) {
      throw new Error(res.status === 404 || res.status === 405 ? 'This server cannot export data yet.'
        : `Could not download your data (the server answered ${res.status}).`);
    }
    const blob = await res.blob();
    const name = /filename="?([^";]+)"?/.exec(res.headers.get('Content-Disposition') || '')?.[1]
      || 'simple-chat-export.zip';
    const url = URL.createObjectURL(blob);
    const link = h('a', { href: url, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    exportState.textContent = `Downloaded ${name} (${size(blob.size)}).`;
  } catch (e) {
    exportState.textContent = e.message;
  } finally {
    exportBtn.disabled = false;
  }
});

// Settings dialog: turn on desktop notifications (the browser asks only after this click) and
// the sound for new messages.

import * as notify from '../notify.js';

const $ = (id) => document.getElementById(id);
const dialog = $('settings-dialog');
const enableBtn = $('notify-enable');
const stateText = $('notify-state');
const sound = $('sound-toggle');

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
  dialog.showModal();
}

enableBtn.addEventListener('click', async () => {
  await notify.enable();
  refresh();
});
sound.addEventListener('change', () => notify.setSound(sound.checked));

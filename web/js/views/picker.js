// Reaction picker: a small menu of common emoji opened from a message's React button; arrow
// keys move, Enter picks, Escape closes and gives focus back.

import { h } from '../dom.js';

export const EMOJI = ['👍', '❤️', '😂', '😮', '😢', '🙏', '🎉', '👀'];

let menu = null;

export function closePicker(refocus = true) {
  if (!menu) return;
  const { el, anchor } = menu;
  menu = null;
  el.remove();
  document.removeEventListener('pointerdown', outside, true);
  if (refocus && anchor.isConnected) anchor.focus();
}

function outside(e) {
  if (menu && !menu.el.contains(e.target)) closePicker(false);
}

/** Open the picker next to `anchor`; `pick(emoji)` is called with the chosen one. */
export function openPicker(anchor, pick) {
  closePicker(false);
  const buttons = EMOJI.map((emoji) => h('button', {
    type: 'button',
    role: 'menuitem',
    title: `React with ${emoji}`,
    tabindex: '-1',
    onclick: () => {
      closePicker();
      pick(emoji);
    },
  }, emoji));
  const el = h('div', { class: 'picker', role: 'menu', 'aria-label': 'Reactions' }, buttons);
  el.addEventListener('keydown', (e) => {
    const i = buttons.indexOf(document.activeElement);
    const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[e.key];
    if (step) {
      e.preventDefault();
      buttons[(i + step + buttons.length) % buttons.length].focus();
    } else if (e.key === 'Home' || e.key === 'End') {
      e.preventDefault();
      buttons[e.key === 'Home' ? 0 : buttons.length - 1].focus();
    } else if (e.key === 'Escape' || e.key === 'Tab') {
      e.preventDefault();
      closePicker();
    }
  });
  document.body.append(el);
  const r = anchor.getBoundingClientRect();
  const w = el.offsetWidth;
  const left = Math.max(8, Math.min(innerWidth - w - 8, r.left + r.width / 2 - w / 2));
  const top = r.top - el.offsetHeight - 6 < 8 ? r.bottom + 6 : r.top - el.offsetHeight - 6;
  el.style.left = `${left}px`;
  el.style.top = `${top}px`;
  menu = { el, anchor };
  document.addEventListener('pointerdown', outside, true);
  buttons[0].focus();
}

// Message search: words typed in a dialog, results newest first from all my conversations (the
// last word also matches as a prefix); choosing one opens its conversation at that message.

import { api, local } from '../api.js';
import { h, avatar } from '../dom.js';
import { shortWhen, preview } from '../format.js';
import { state, partner, userName } from '../store.js';

const $ = (id) => document.getElementById(id);
const dialog = $('search-dialog');
const input = $('search-input');
const list = $('search-results');
const status = $('search-status');
let timer = 0;
let asked = 0;

export function openSearch() {
  dialog.showModal();
  input.select();
  input.focus();
}

/** The text with the searched words marked, cut to start near the first match. */
function highlight(text, words) {
  const frag = document.createDocumentFragment();
  if (!words.length) {
    frag.append(text);
    return frag;
  }
  const re = new RegExp(words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'giu');
  const first = text.search(re);
  if (first > 40) text = `…${text.slice(first - 30)}`;
  let last = 0;
  for (const m of text.matchAll(re)) {
    frag.append(text.slice(last, m.index), h('mark', null, m[0]));
    last = m.index + m[0].length;
  }
  frag.append(text.slice(last));
  return frag;
}

function result(m, words) {
  const t = state.threads.get(m.thread);
  const who = t ? partner(t).username : userName(m.sender);
  const from = m.sender === state.me?.id ? 'You' : userName(m.sender);
  return h('li', null, h('button', {
    type: 'button',
    onclick: () => {
      dialog.close();
      location.hash = `#/t/${m.thread}/m/${m.id}`;
    },
  }, avatar(who, 'sm'), h('span', { class: 'result-body' },
    h('span', { class: 'result-head' }, h('strong', null, who), h('span', null, shortWhen(m.created))),
    h('span', { class: 'result-text' }, `${from}: `, highlight(preview(m), words)))));
}

async function search(url, append) {
  const q = input.value.trim();
  const n = ++asked;
  if (!q) {
    list.replaceChildren();
    status.textContent = '';
    return;
  }
  status.textContent = 'Searching…';
  try {
    const page = await api(url || `/api/search/?q=${encodeURIComponent(q)}&limit=30`);
    if (n !== asked) return;
    const words = q.split(/\s+/).filter(Boolean);
    const items = page.results.map((m) => result(m, words));
    if (append) list.querySelector('.more')?.remove();
    else list.replaceChildren();
    list.append(...items);
    if (page.next) {
      list.append(h('li', { class: 'more' }, h('button', { type: 'button', onclick: () => search(local(page.next), true) }, 'Show more results')));
    }
    status.textContent = page.count ? `${page.count} message${page.count === 1 ? '' : 's'} found` : 'No messages found.';
  } catch (e) {
    if (n === asked) status.textContent = e.status === 404 || e.status === 405 ? 'This server cannot search messages yet.' : e.message;
  }
}

input.addEventListener('input', () => {
  clearTimeout(timer);
  timer = setTimeout(search, 250);
});
input.addEventListener('keydown', (e) => {
  if (e.key === 'Escape') {
    e.preventDefault();
    dialog.close(); // not just clearing the field
  } else if (e.key === 'Enter') {
    e.preventDefault();
    clearTimeout(timer);
    search();
  } else if (e.key === 'ArrowDown') {
    e.preventDefault();
    list.querySelector('button')?.focus();
  }
});
list.addEventListener('keydown', (e) => {
  if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
  e.preventDefault();
  const all = [...list.querySelectorAll('button')];
  const next = all.indexOf(document.activeElement) + (e.key === 'ArrowDown' ? 1 : -1);
  (next < 0 ? input : all[Math.min(next, all.length - 1)]).focus();
});

// New conversation: find a person by username and open the conversation with them (the
// existing one when there is one, else a new one).

import { api } from '../api.js';
import { h, avatar } from '../dom.js';
import { state, upsertThread, loadPresence } from '../store.js';

const $ = (id) => document.getElementById(id);
const dialog = $('newchat-dialog');
const input = $('newchat-input');
const results = $('newchat-results');
const error = $('newchat-error');
let timer = 0;
let asked = 0;

export function openNewChat() {
  input.value = '';
  error.textContent = '';
  results.replaceChildren();
  dialog.showModal();
  input.focus();
}

async function search() {
  const q = input.value.trim();
  const n = ++asked;
  if (!q) {
    results.replaceChildren();
    return;
  }
  try {
    const page = await api(`/api/users/?search=${encodeURIComponent(q)}&limit=20`);
    if (n !== asked) return;
    const people = page.results.filter((u) => u.id !== state.me?.id);
    error.textContent = people.length ? '' : `Nobody called “${q}”.`;
    results.replaceChildren(...people.map((u) => h('li', null, h('button', {
      type: 'button',
      onclick: () => start(u),
    }, avatar(u.username, 'sm'), h('span', { class: 'result-body' }, u.username)))));
  } catch (e) {
    if (n === asked) error.textContent = e.message;
  }
}

async function start(user) {
  error.textContent = '';
  try {
    if (!state.me.username) state.me.username = (await api('/api/me/')).username;
    const t = await api('/chat/thread/', { method: 'POST', body: { user1: state.me.username, user2: user.username } });
    upsertThread(t);
    loadPresence([user.id]);
    dialog.close();
    location.hash = `#/t/${t.id}`;
  } catch (e) {
    error.textContent = e.status === 429 ? 'You have started many conversations lately. Try again later.' : e.message;
  }
}

input.addEventListener('input', () => {
  clearTimeout(timer);
  timer = setTimeout(search, 200);
});
input.addEventListener('keydown', (e) => {
  if (e.key === 'Escape') {
    e.preventDefault();
    dialog.close(); // not just clearing the field
  } else if (e.key === 'Enter') {
    e.preventDefault();
    clearTimeout(timer);
    search().then(() => results.querySelector('button')?.focus());
  } else if (e.key === 'ArrowDown') {
    e.preventDefault();
    results.querySelector('button')?.focus();
  }
});
results.addEventListener('keydown', (e) => {
  const all = [...results.querySelectorAll('button')];
  const i = all.indexOf(document.activeElement);
  if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
    e.preventDefault();
    const next = i + (e.key === 'ArrowDown' ? 1 : -1);
    (next < 0 ? input : all[Math.min(next, all.length - 1)]).focus();
  }
});

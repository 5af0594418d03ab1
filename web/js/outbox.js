// Outbox: messages written but not yet stored by the server. Each carries a random client_id
// that every retry reuses (the server answers a repeat with the stored message), so a flaky
// network neither duplicates nor loses a message. The queue is kept in localStorage, so a reload
// loses nothing, and is sent in order, again whenever the connection comes back.

import { api } from './api.js';
import { emit, on, messageCreated } from './store.js';

let key = null;
let queue = []; // {client_id, thread, text, reply_to, files, created, error?, status?}
let sending = false;
let retryTimer = 0;
let backoff = 1000;

function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function save() {
  if (!key) return;
  if (queue.length) localStorage.setItem(key, JSON.stringify(queue));
  else localStorage.removeItem(key);
  emit('outbox');
}

export function init(userId) {
  key = `sc.outbox.${userId}`;
  try {
    queue = JSON.parse(localStorage.getItem(key)) || [];
  } catch {
    queue = [];
  }
  emit('outbox');
  flush();
}

/** Forget the queue (signing out). */
export function clear() {
  if (key) localStorage.removeItem(key);
  key = null;
  queue = [];
  clearTimeout(retryTimer);
}

export const pending = (thread) => queue.filter((e) => e.thread === thread);

export function enqueue({ thread, text, reply_to = null, files = [] }) {
  const entry = { client_id: newId(), thread, text, reply_to, files, created: new Date().toISOString() };
  queue.push(entry);
  save();
  flush();
  return entry;
}

function remove(clientId) {
  const before = queue.length;
  queue = queue.filter((e) => e.client_id !== clientId);
  if (queue.length !== before) save();
}

export function retry(clientId) {
  const e = queue.find((x) => x.client_id === clientId);
  if (e) {
    delete e.error;
    delete e.status;
    save();
  }
  backoff = 1000;
  flush();
}

export const discard = remove;

/** Send what is queued, oldest first; a failure the network may cure is retried with back-off. */
export async function flush() {
  if (sending || !key) return;
  sending = true;
  clearTimeout(retryTimer);
  try {
    for (;;) {
      const entry = queue.find((e) => !e.error);
      if (!entry) break;
      const item = { client_id: entry.client_id, text: entry.text };
      if (entry.reply_to) item.reply_to = entry.reply_to;
      if (entry.files?.length) item.files = entry.files.map((f) => f.id);
      try {
        const stored = await api(`/thread/${entry.thread}/message/`, { method: 'POST', body: { messages: [item] } });
        remove(entry.client_id);
        for (const m of stored) messageCreated(m);
        backoff = 1000;
      } catch (e) {
        if (!key || e.status === 401) break; // signed out meanwhile: sent after signing in again
        if (e.transient) {
          const wait = e.retryAfter ? e.retryAfter * 1000 : backoff * (0.5 + Math.random() / 2);
          backoff = Math.min(backoff * 2, 30000);
          retryTimer = setTimeout(flush, wait);
          break;
        }
        if (e.status === 404) remove(entry.client_id); // the conversation is gone
        else {
          entry.error = e.message;
          entry.status = e.status;
          save();
        }
      }
    }
  } finally {
    sending = false;
  }
}

// The server stored one of ours (its answer or its event, whichever came first).
on('message', (m) => m.client_id && remove(m.client_id));
addEventListener('online', () => {
  backoff = 1000;
  flush();
});
// Another tab of the same user queued or sent something: the stored queue is the truth (both
// tabs may then send an entry; its client_id makes the server store it once).
addEventListener('storage', (e) => {
  if (!key || e.key !== key) return;
  try {
    queue = JSON.parse(e.newValue) || [];
  } catch {
    queue = [];
  }
  emit('outbox');
  flush();
});

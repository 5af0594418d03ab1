// Store: what the client knows — me, the conversations (last message, unread count), presence,
// typing, blocks, the last event seq processed — and how each real-time frame changes it.
// Views listen with on('threads' | 'presence' | 'typing' | 'blocks' | 'incoming' | 'message', fn).
// The open conversation's messages live in history.js.

import { api } from './api.js';
import * as history from './history.js';

const bus = new EventTarget();
export const emit = (type, detail) => bus.dispatchEvent(new CustomEvent(type, { detail }));
export const on = (type, fn) => bus.addEventListener(type, (e) => fn(e.detail));

export const state = {
  me: null, // {id, username}
  threads: new Map(), // id → thread JSON
  nextThreads: null, // the list's next page, when there is one
  presence: new Map(), // user id → {online, last_seen}
  typing: new Map(), // thread id → until (ms)
  blocks: new Set(), // user ids I block
  deleted: new Set(), // message ids deleted while we watched (for "message deleted" replies)
  seq: null, // last event seq processed
  loaded: false, // the list came from the server (or from the copy kept for offline starts)
};

export function partner(t) {
  const me = state.me?.id;
  return t.participants.find((p) => p.id !== me) || t.participants[0];
}

const activity = (t) => t.last_message?.created || t.updated || t.created;

export function sortedThreads() {
  return [...state.threads.values()].sort((a, b) => (activity(b) > activity(a) ? 1 : activity(b) < activity(a) ? -1 : b.id - a.id));
}

export function totalUnread() {
  let n = 0;
  for (const t of state.threads.values()) n += t.unread_count || 0;
  return n;
}

export function userName(id) {
  if (id === state.me?.id) return state.me.username;
  for (const t of state.threads.values()) {
    const p = t.participants.find((x) => x.id === id);
    if (p) return p.username;
  }
  return 'Someone';
}

export function setThreads(page, replace) {
  if (replace) state.threads.clear();
  for (const t of page.results) state.threads.set(t.id, t);
  state.nextThreads = page.next;
  emit('threads');
}

export function upsertThread(t) {
  state.threads.set(t.id, t);
  emit('threads');
}

const fetching = new Map();
/** A thread we have not loaded (an older page, or a message before its thread.created). */
export function ensureThread(id) {
  if (state.threads.has(id)) return Promise.resolve(state.threads.get(id));
  if (!fetching.has(id)) {
    fetching.set(id, api(`/chat/thread/${id}/`)
      .then((t) => {
        upsertThread(t);
        loadPresence([partner(t).id]);
        return t;
      })
      .finally(() => fetching.delete(id)));
  }
  return fetching.get(id);
}

/** Re-read one thread (its last message after a delete). */
function reloadThread(id) {
  api(`/chat/thread/${id}/`).then(upsertThread, () => {});
}

/** Presence of these users; those the server leaves out (blocked either way) show none. */
export async function loadPresence(ids) {
  ids = [...new Set(ids.filter((id) => id && id !== state.me?.id))];
  for (let i = 0; i < ids.length; i += 200) {
    const some = ids.slice(i, i + 200);
    try {
      const answer = (await api(`/api/presence/?users=${some.join(',')}`)) || {};
      for (const id of some) {
        if (answer[id]) state.presence.set(id, answer[id]);
        else state.presence.delete(id);
      }
      emit('presence');
    } catch { /* presence is optional */ }
  }
}

/** Presence of everyone in the list (after a reconnect: presence frames are not replayed). */
export function refreshPresence() {
  return loadPresence([...state.threads.values()].map((t) => partner(t).id));
}

export async function loadBlocks() {
  try {
    const page = await api('/api/me/blocks/?limit=200');
    state.blocks = new Set(page.results.map((u) => u.id));
    emit('blocks');
  } catch { /* blocking is optional */ }
}

/** What a frame changes in the conversation list (also replayed on a list fetched meanwhile). */
function applyToList(f) {
  const t = state.threads.get(f.thread?.id ?? f.thread ?? f.message?.thread);
  switch (f.type) {
    case 'message.created': {
      const m = f.message;
      if (!t) return ensureThread(m.thread).catch(() => {});
      if (!t.last_message || m.id >= t.last_message.id) {
        t.last_message = m;
        t.updated = m.created;
      }
      if (f.unread_count != null) t.unread_count = f.unread_count;
      break;
    }
    case 'message.updated':
      if (t?.last_message?.id === f.message.id) t.last_message = f.message;
      break;
    case 'message.deleted':
      if (t) {
        t.unread_count = f.unread_count ?? t.unread_count;
        if (t.last_message?.id === f.message) reloadThread(t.id);
      }
      break;
    case 'messages.read':
      if (t) {
        t.unread_count = f.unread_count;
        if (t.last_message && f.ids.includes(t.last_message.id)) t.last_message.is_read = true;
      }
      break;
    case 'thread.created':
      state.threads.set(f.thread.id, f.thread);
      break;
    case 'thread.deleted':
      state.threads.delete(f.thread);
      break;
  }
}

/** A message the server stored (from an event or from the answer to our POST). */
export function messageCreated(m, unread) {
  applyToList({ type: 'message.created', message: m, unread_count: unread });
  if (m.sender !== state.me?.id && state.typing.delete(m.thread)) emit('typing', m.thread);
  history.created(m);
  emit('message', m);
  emit('threads');
}

function forget(id) {
  state.deleted.add(id);
  if (state.deleted.size > 2000) state.deleted.delete(state.deleted.values().next().value);
}

const typingTimers = new Map();
const listLoads = new Set(); // frames seen while a list request is in flight, one array per request

/** Apply one frame of the event stream. */
export function apply(f) {
  for (const seen of listLoads) seen.push(f);
  switch (f.type) {
    case 'message.created':
      messageCreated(f.message, f.unread_count);
      if (f.message.sender !== state.me?.id) emit('incoming', f.message);
      return;
    case 'typing':
      if (f.user === state.me?.id) return;
      state.typing.set(f.thread, Date.now() + 5000);
      clearTimeout(typingTimers.get(f.thread));
      typingTimers.set(f.thread, setTimeout(() => {
        state.typing.delete(f.thread);
        emit('typing', f.thread);
      }, 5000));
      emit('typing', f.thread);
      return;
    case 'presence':
      state.presence.set(f.user, { online: f.online, last_seen: f.last_seen });
      emit('presence', f.user);
      return;
  }
  applyToList(f);
  switch (f.type) {
    case 'message.updated':
      history.updated(f.message);
      break;
    case 'message.deleted':
      forget(f.message);
      history.deleted(f.thread, f.message);
      break;
    case 'messages.read':
      history.read(f.thread, f.ids);
      break;
    case 'thread.created':
      loadPresence([partner(f.thread).id]);
      break;
    case 'thread.deleted':
      history.threadDeleted(f.thread);
      emit('thread-deleted', f.thread);
      break;
  }
  emit('threads');
}

/** Reload what HTTP knows (after a gap the log cannot fill, or a first connection). */
export async function loadThreads() {
  const seen = [];
  listLoads.add(seen);
  let page;
  try {
    page = await api(`/chat/user/${state.me.id}/thread/?limit=100`);
  } finally {
    listLoads.delete(seen);
  }
  state.loaded = true;
  state.threads.clear();
  for (const t of page.results) state.threads.set(t.id, t);
  state.nextThreads = page.next;
  for (const f of seen) applyToList(f); // the page may predate them
  emit('threads');
  refreshPresence();
}

// A copy of me and the first page of the list, so a reload without a connection still shows
// them (the outbox keeps unsent messages the same way). Removed when signing out.
const cacheKey = () => `sc.cache.${state.me?.id}`;
let cacheTimer = 0;

export function restoreCache(userId) {
  try {
    const c = JSON.parse(localStorage.getItem(`sc.cache.${userId}`));
    if (!c) return;
    state.me = c.me;
    state.loaded = true;
    setThreads({ results: c.threads, next: null }, true);
  } catch { /* no copy */ }
}

function saveCache() {
  clearTimeout(cacheTimer);
  cacheTimer = setTimeout(() => {
    if (!state.me?.username) return;
    const threads = sortedThreads().slice(0, 100);
    localStorage.setItem(cacheKey(), JSON.stringify({ me: state.me, threads }));
  }, 1000);
}

export function dropCache() {
  clearTimeout(cacheTimer);
  localStorage.removeItem(cacheKey());
}
on('threads', () => state.loaded && saveCache());

export function reset() {
  state.me = null;
  state.threads.clear();
  state.presence.clear();
  state.typing.clear();
  state.blocks.clear();
  state.deleted.clear();
  state.seq = null;
  state.nextThreads = null;
  state.loaded = false;
  history.close();
}

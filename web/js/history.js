// History: the open conversation's messages — one contiguous window of at most MAX messages,
// loaded by pages with before=/after= as the reader scrolls and trimmed at the far end, so a
// conversation of any length costs bounded memory and DOM. Events that arrive while a page is
// in flight are replayed on it, so nothing is missed or shown twice. Also marks messages read.

import { api } from './api.js';
import { emit, state } from './store.js';

export const PAGE = 50;
export const MAX = 300;
const LATEST = Number.MAX_SAFE_INTEGER;

export const conv = {
  id: null, // the open thread
  messages: [], // oldest first, contiguous
  hasOlder: false,
  hasNewer: false,
  ready: false, // the first page is in
  loading: null, // 'open' | 'older' | 'newer' while a page is in flight
  error: null,
  firstUnread: null, // where the "New messages" divider goes
  focus: null, // a message to show and highlight (a search result, a quoted message)
  atBottom: true, // set by the view: the reader sees the newest message
  loadedAt: 0,
  gen: 0, // bumps when another conversation opens, so late answers are dropped
  ops: [], // events seen while a page was in flight
};

const changed = (reason) => emit('conv', reason);
const url = (q) => `/thread/${conv.id}/message/?${q}`;
const indexOf = (id) => conv.messages.findIndex((m) => m.id === id);

export function open(id, around = null) {
  conv.id = id;
  conv.messages = [];
  conv.ready = false;
  conv.hasOlder = conv.hasNewer = false;
  conv.firstUnread = null;
  conv.focus = around;
  conv.error = null;
  conv.ops = [];
  conv.gen++;
  changed('open');
  return around ? loadAround(around) : loadLatest();
}

export function close() {
  conv.id = null;
  conv.messages = [];
  conv.ready = false;
  conv.gen++;
  changed('close');
}

/** Fetch pages for the open conversation; null when it changed meanwhile or failed. */
async function fetchPages(kind, ...queries) {
  const gen = conv.gen;
  conv.loading = kind;
  conv.error = null;
  try {
    const pages = await Promise.all(queries.map((q) => api(url(q))));
    return gen === conv.gen ? pages : null;
  } catch (e) {
    if (gen === conv.gen) {
      conv.error = e;
      changed('error');
    }
    return null;
  } finally {
    if (gen === conv.gen) conv.loading = null;
  }
}

/** After a page is merged: replay what happened meanwhile. */
function settle(reason) {
  const ops = conv.ops;
  conv.ops = [];
  for (const op of ops) applyOp(op);
  conv.loadedAt = Date.now();
  changed(reason);
}

export async function loadLatest(reason = 'ready') {
  const unread = state.threads.get(conv.id)?.unread_count || 0;
  const limit = Math.min(200, Math.max(PAGE, unread + 10));
  const pages = await fetchPages('open', `before=${LATEST}&limit=${limit}`);
  if (!pages) return;
  const [page] = pages;
  conv.messages = page.results;
  conv.hasOlder = page.count > page.results.length;
  conv.hasNewer = false;
  conv.ready = true;
  if (reason === 'ready') {
    const me = state.me?.id;
    conv.firstUnread = conv.messages.find((m) => m.sender !== me && !m.is_read)?.id ?? null;
  }
  settle(reason);
}

async function loadAround(id) {
  const half = PAGE / 2;
  const pages = await fetchPages('open', `before=${id + 1}&limit=${half}`, `after=${id}&limit=${half}`);
  if (!pages) return;
  const [before, after] = pages;
  conv.messages = before.results.concat(after.results);
  conv.hasOlder = before.count > before.results.length;
  conv.hasNewer = after.count > after.results.length;
  conv.ready = true;
  settle('ready');
}

// A reader who reaches the edge again soon after a page came is travelling far (dragging the
// scroll bar, flinging): bigger pages then, half the waits.
let pagedAt = 0;
const pageSize = () => (performance.now() - pagedAt < 1500 ? PAGE * 2 : PAGE);

export async function loadOlder() {
  if (!conv.ready || conv.loading || !conv.hasOlder) return;
  const first = conv.messages[0]?.id ?? LATEST;
  const pages = await fetchPages('older', `before=${first}&limit=${pageSize()}`);
  if (!pages) return;
  const [page] = pages;
  const head = conv.messages[0]?.id ?? LATEST;
  conv.messages = page.results.filter((m) => m.id < head).concat(conv.messages);
  conv.hasOlder = page.count > page.results.length;
  if (conv.messages.length > MAX) {
    conv.messages.length = MAX;
    conv.hasNewer = true;
  }
  pagedAt = performance.now();
  settle('older');
}

export async function loadNewer() {
  if (!conv.ready || conv.loading || !conv.hasNewer) return;
  const last = conv.messages.at(-1)?.id ?? 0;
  const pages = await fetchPages('newer', `after=${last}&limit=${pageSize()}`);
  if (!pages) return;
  const [page] = pages;
  const tail = conv.messages.at(-1)?.id ?? 0;
  conv.messages = conv.messages.concat(page.results.filter((m) => m.id > tail));
  conv.hasNewer = page.count > page.results.length;
  if (conv.messages.length > MAX) {
    conv.messages.splice(0, conv.messages.length - MAX);
    conv.hasOlder = true;
  }
  pagedAt = performance.now();
  settle('newer');
}

/** Show the newest messages: scroll there, or reload the window when it is far behind. */
export function toLatest() {
  if (conv.hasNewer) {
    conv.gen++;
    conv.ready = false;
    conv.focus = null;
    return loadLatest('latest');
  }
  changed('bottom');
}

/** Reload the open conversation (after a gap the event log could not fill). */
export function reload() {
  if (conv.id == null) return;
  conv.gen++;
  return loadLatest(conv.ready ? 'reload' : 'ready');
}

function applyOp(op) {
  const i = op.id != null ? indexOf(op.id) : -1;
  switch (op.kind) {
    case 'created': {
      const m = op.message;
      const at = indexOf(m.id);
      if (at >= 0) conv.messages[at] = m;
      else if (!conv.hasNewer && conv.ready) {
        const last = conv.messages.at(-1);
        if (!last || m.id > last.id) conv.messages.push(m);
        else {
          const pos = conv.messages.findIndex((x) => x.id > m.id);
          conv.messages.splice(pos, 0, m);
        }
        if (conv.atBottom && conv.messages.length > MAX + PAGE) {
          conv.messages.splice(0, conv.messages.length - MAX);
          conv.hasOlder = true;
        }
      }
      break;
    }
    case 'updated':
      if (i >= 0) conv.messages[i] = op.message;
      break;
    case 'deleted':
      if (i >= 0) conv.messages.splice(i, 1);
      break;
    case 'read':
      for (const m of conv.messages) if (op.ids.has(m.id)) m.is_read = true;
      break;
  }
}

function event(threadId, op) {
  if (threadId !== conv.id) return;
  if (conv.loading) conv.ops.push(op);
  applyOp(op);
  changed(op.kind);
}

export const created = (m) => event(m.thread, { kind: 'created', message: m });
export const updated = (m) => event(m.thread, { kind: 'updated', id: m.id, message: m });
export const deleted = (thread, id) => event(thread, { kind: 'deleted', id });
export const read = (thread, ids) => event(thread, { kind: 'read', ids: new Set(ids) });

export function threadDeleted(id) {
  if (conv.id === id) close();
}

export function byId(id) {
  const i = indexOf(id);
  return i >= 0 ? conv.messages[i] : null;
}

/** Is an id inside the window's span (so its absence means it was deleted)? */
export function spans(id) {
  const first = conv.messages[0]?.id;
  const last = conv.messages.at(-1)?.id;
  return first != null && (id > first || !conv.hasOlder) && (id < last || !conv.hasNewer);
}

// Read marks: messages seen on screen are sent in batches.
const toMark = new Set();
let markTimer = 0;

export function markRead(ids) {
  const me = state.me?.id;
  let n = 0;
  for (const id of ids) {
    const m = byId(id);
    if (m && !m.is_read && m.sender !== me) {
      m.is_read = true;
      toMark.add(id);
      n++;
    }
  }
  const t = state.threads.get(conv.id);
  if (n && t) {
    t.unread_count = Math.max(0, (t.unread_count || 0) - n);
    emit('threads');
  }
  if (toMark.size && !markTimer) markTimer = setTimeout(flushMarks, 250);
}

async function flushMarks() {
  markTimer = 0;
  const ids = [...toMark].slice(0, 1000);
  for (const id of ids) toMark.delete(id);
  try {
    await api('/message/', { method: 'POST', body: { messages_ids: ids } });
  } catch (e) {
    if (e.transient) {
      for (const id of ids) toMark.add(id);
      markTimer = setTimeout(flushMarks, 5000);
    }
  }
  if (toMark.size && !markTimer) markTimer = setTimeout(flushMarks, 250);
}

// Conversation list: one link per conversation (the other person, presence dot, last message
// and its time, unread badge), most recent first, kept up to date from the store. Nodes are
// reused by thread id, so focus and scroll survive live updates.

import { api, local } from '../api.js';
import { h, avatar, srOnly } from '../dom.js';
import { shortWhen, preview } from '../format.js';
import { state, on, partner, sortedThreads, setThreads } from '../store.js';

const list = document.getElementById('threads');
const empty = document.getElementById('threads-empty');
const nodes = new Map(); // thread id → li
let selected = null;
let loadingMore = false;

function item(t) {
  const other = partner(t);
  const online = state.presence.get(other.id)?.online;
  const last = t.last_message;
  const unread = t.unread_count || 0;
  const typing = state.typing.has(t.id);
  const face = avatar(other.username);
  if (online) face.append(h('span', { class: 'dot' }));
  let text = typing ? 'typing…' : preview(last);
  if (!typing && last && last.sender === state.me?.id) text = `You: ${text}`;
  if (!last && !typing) text = 'No messages yet';
  const when = last?.created || t.updated;
  return h('a', {
    class: `thread${unread ? ' unread' : ''}`,
    href: `#/t/${t.id}`,
    'aria-current': t.id === selected ? 'page' : null,
  },
  face,
  h('span', { class: 'thread-name' }, other.username, online ? srOnly(', online') : null),
  h('time', { class: 'thread-time', datetime: when }, when ? shortWhen(when) : ''),
  h('span', { class: `thread-preview${typing ? ' typing-text' : ''}` }, text),
  unread ? h('span', { class: 'badge' }, String(unread), srOnly(' unread')) : null);
}

export function renderList() {
  const threads = sortedThreads();
  const seen = new Set();
  let prev = null;
  for (const t of threads) {
    seen.add(t.id);
    let li = nodes.get(t.id);
    const a = item(t);
    if (!li) {
      li = h('li', null, a);
      nodes.set(t.id, li);
    } else {
      // Keep the link element (it may have focus); swap its insides.
      const old = li.firstChild;
      old.className = a.className;
      if (a.hasAttribute('aria-current')) old.setAttribute('aria-current', 'page');
      else old.removeAttribute('aria-current');
      old.replaceChildren(...a.childNodes);
    }
    const want = prev ? prev.nextSibling : list.firstChild;
    if (want !== li) list.insertBefore(li, want);
    prev = li;
  }
  for (const [id, li] of nodes) {
    if (!seen.has(id)) {
      li.remove();
      nodes.delete(id);
    }
  }
  list.setAttribute('aria-busy', String(!state.loaded));
  empty.hidden = threads.length > 0 || !state.loaded;
}

export function select(id) {
  selected = id;
  renderList();
}

async function loadMore() {
  if (loadingMore || !state.nextThreads) return;
  loadingMore = true;
  try {
    setThreads(await api(local(state.nextThreads)), false);
  } catch { /* try again on the next scroll */ }
  loadingMore = false;
}

list.addEventListener('scroll', () => {
  if (list.scrollTop + list.clientHeight > list.scrollHeight - 200) loadMore();
}, { passive: true });

on('threads', renderList);
on('presence', renderList);
on('typing', renderList);

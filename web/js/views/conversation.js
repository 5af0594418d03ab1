// Conversation screen: the message feed and everything that happens in it — day separators,
// the "New messages" divider, "Seen", loading older/newer pages while keeping the view still
// (scroll anchor), read marks for what is seen, jumping to a message, keyboard and touch moves
// between messages, and the message actions.

import { api } from '../api.js';
import { h, avatar, confirmDialog } from '../dom.js';
import { dayKey, dayLabel } from '../format.js';
import { state, on, partner, apply, ensureThread } from '../store.js';
import * as history from '../history.js';
import * as outbox from '../outbox.js';
import * as composer from './composer.js';
import { showHeader, showNotice, hideNotice, showing } from './header.js';
import { messageNode } from './message.js';

const { conv } = history;
const $ = (id) => document.getElementById(id);
const feed = $('feed');
const toLatestBtn = $('to-latest');

const cache = new Map(); // key → {node, sig}
const redrawn = new Map(); // during a render: replaced node → its new copy
let refocusing = false; // a render is putting focus back where it was
let stuck = true; // keep the newest message in view
let lastScrollAt = 0; // the reader's last scroll (see renderWhenStill)
let deferred = null; // a render waiting for the scrolling to pause
let ownScrollAt = 0; // when we last moved the scroll position ourselves (not the reader)
let other = null; // the other participant {id, username}

/* ---------- opening ---------- */

export async function showConversation(id, around = null) {
  $('conv-none').hidden = true;
  $('conv').hidden = false;
  let t = state.threads.get(id);
  if (!t) {
    try {
      t = await ensureThread(id);
    } catch (e) {
      if (e.status === 0) setTimeout(() => location.hash === `#/t/${id}` && showConversation(id), 3000);
      else location.hash = '#/';
      return;
    }
  }
  if (conv.id === id && around == null) return;
  other = partner(t);
  cache.clear();
  feed.replaceChildren();
  stuck = true;
  showHeader(id, other);
  composer.setThread(id, other);
  const opening = history.open(id, around);
  feed.setAttribute('aria-label', `Messages with ${other.username}`);
  await opening;
}

export function hideConversation() {
  if (conv.id != null) history.close();
  $('conv').hidden = true;
  $('conv-none').hidden = false;
  composer.setThread(null);
  showHeader(null, null);
  other = null;
}

/* ---------- the feed ---------- */

function isAtBottom() {
  return feed.scrollHeight - feed.scrollTop - feed.clientHeight < 40;
}

function toBottom() {
  ownScrollAt = performance.now();
  feed.scrollTop = feed.scrollHeight;
}

/** The first message in view and where it is (by id: its node may be rebuilt meanwhile). */
function captureAnchor() {
  const top = feed.getBoundingClientRect().top;
  for (const el of feed.children) {
    if (!el.classList.contains('message')) continue;
    const r = el.getBoundingClientRect();
    if (r.bottom > top + 1) {
      const sel = el.dataset.messageId ? `[data-message-id="${el.dataset.messageId}"]` : `[data-client-id="${el.dataset.clientId}"]`;
      return { sel, offset: r.top - top };
    }
  }
  return null;
}

function restoreAnchor(a) {
  const el = a && feed.querySelector(a.sel);
  if (!el) return;
  const delta = el.getBoundingClientRect().top - feed.getBoundingClientRect().top - a.offset;
  if (delta) {
    ownScrollAt = performance.now();
    feed.scrollTop += delta;
  }
}

/** A node by key, rebuilt only when what it shows changed (its signature or its object). */
function cached(key, sig, make, obj = null) {
  const hit = cache.get(key);
  if (hit && hit.sig === sig && hit.obj === obj) {
    hit.used = true;
    return hit.node;
  }
  const node = make();
  if (hit) {
    unobserve(hit.node);
    // A message redrawn while its actions are open (a read receipt or a reaction arrived)
    // keeps them open: the row must not vanish from under the reader's finger.
    if (hit.node.classList?.contains('active')) setActive(node);
    redrawn.set(hit.node, node);
  }
  cache.set(key, { node, sig, obj, used: true });
  return node;
}

/** The element of `node`'s redrawn copy that stands where `el` stood in `node`. */
function counterpart(el, node, copy) {
  if (el === node) return copy;
  const all = [...node.querySelectorAll('button, a, [tabindex]')];
  const i = all.indexOf(el);
  return i < 0 ? null : copy.querySelectorAll('button, a, [tabindex]')[i] || null;
}

/** The nodes the feed should hold, in order (reusing unchanged ones). */
function build() {
  const items = [];
  const me = state.me?.id;
  if (!conv.ready) {
    const text = conv.error ? (conv.error.status === 0 ? 'Waiting for the connection…' : 'Could not load messages.') : 'Loading…';
    items.push(cached('edge-top', text, () => h('p', { class: 'feed-edge' }, text)));
    for (const e of outbox.pending(conv.id)) {
      items.push(cached(`c${e.client_id}`, `pending${e.error}`, () => messageNode(e, { first: true, pending: true, act }), e));
    }
    return items;
  }
  const empty = !conv.messages.length && !conv.hasOlder && !outbox.pending(conv.id).length;
  items.push(cached('edge-top', `${conv.hasOlder}${empty}`, () => (empty
    ? h('div', { class: 'feed-empty' }, avatar(other?.username || '?', 'big'),
      h('p', null, `No messages yet. Say hello to ${other?.username}!`))
    : h('p', { class: 'feed-edge' },
      conv.hasOlder ? 'Loading earlier messages…' : `This is the beginning of your conversation with ${other?.username}.`))));
  let seenId = null;
  if (!conv.hasNewer) {
    for (let i = conv.messages.length - 1; i >= 0; i--) {
      const m = conv.messages[i];
      if (m.sender === me && m.is_read) {
        seenId = m.id;
        break;
      }
    }
  }
  let prev = null;
  for (const m of conv.messages) {
    const day = dayKey(m.created);
    const newDay = !prev || dayKey(prev.created) !== day;
    if (newDay) items.push(cached(`d${day}`, '', () => h('h3', { class: 'day' }, dayLabel(m.created))));
    if (m.id === conv.firstUnread) items.push(cached('new', '', () => h('p', { class: 'divider', role: 'separator' }, 'New messages')));
    const first = newDay || prev.sender !== m.sender || m.id === conv.firstUnread
      || new Date(m.created) - new Date(prev.created) > 300000;
    const reply = m.reply_to ? (history.byId(m.reply_to) ? `p${history.byId(m.reply_to).edited}` : history.spans(m.reply_to) || state.deleted.has(m.reply_to) ? 'g' : 'u') : '';
    const key = m.client_id && m.sender === me ? `c${m.client_id}` : `m${m.id}`;
    items.push(cached(key, `${first}${reply}`, () => messageNode(m, { first, act }), m));
    if (m.id === seenId) items.push(cached('seen', '', () => h('p', { class: 'seen' }, 'Seen')));
    prev = m;
  }
  if (!conv.hasNewer) {
    for (const e of outbox.pending(conv.id)) {
      if (conv.messages.some((m) => m.client_id === e.client_id)) continue;
      items.push(cached(`c${e.client_id}`, `pending${e.error}`, () => messageNode(e, { first: true, pending: true, act }), e));
    }
  } else {
    items.push(cached('edge-bottom', '', () => h('p', { class: 'feed-edge' }, 'Loading newer messages…')));
  }
  return items;
}

function render(reason) {
  if (conv.id == null) return;
  const wasBottom = stuck && isAtBottom();
  const anchor = wasBottom ? null : captureAnchor();
  const focused = feed.contains(document.activeElement) ? document.activeElement : null;
  for (const c of cache.values()) c.used = false;
  const items = build();
  let cursor = feed.firstChild;
  for (const node of items) {
    if (node === cursor) cursor = cursor.nextSibling;
    else feed.insertBefore(node, cursor);
  }
  while (cursor) {
    const next = cursor.nextSibling;
    cursor.remove();
    cursor = next;
  }
  for (const [key, c] of cache) {
    if (!c.used) {
      unobserve(c.node);
      cache.delete(key);
    }
  }
  let keep = focused;
  if (focused && !focused.isConnected) {
    const old = [...redrawn.keys()].find((node) => node.contains(focused));
    keep = old && counterpart(focused, old, redrawn.get(old));
  }
  redrawn.clear();
  if (keep && keep.isConnected && document.activeElement !== keep) {
    // Focus put back is not the reader moving it: it must not open a message's actions (a
    // tapped reaction chip, redrawn with its new count, would open them).
    refocusing = true;
    keep.focus({ preventScroll: true });
    refocusing = false;
  }

  if (reason === 'ready' || reason === 'latest') position();
  else if (wasBottom && !conv.hasNewer) toBottom();
  else restoreAnchor(anchor);
  observeUnread();
  onScroll();
}

/** Where a freshly opened conversation starts: the asked-for message, the first unread, or the end. */
function position() {
  const focus = conv.focus != null && feed.querySelector(`[data-message-id="${conv.focus}"]`);
  if (focus) {
    focus.scrollIntoView({ block: 'center' });
    flash(focus);
    conv.focus = null;
    stuck = false;
    return;
  }
  if (conv.focus != null) {
    showNotice('That message is no longer there.');
    conv.focus = null;
  }
  const divider = cache.get('new')?.node;
  if (divider?.isConnected && divider.offsetTop > feed.clientHeight / 2) {
    feed.scrollTop = divider.offsetTop - 12;
    stuck = isAtBottom();
  } else {
    toBottom();
    stuck = true;
  }
}

function flash(el) {
  el.classList.remove('flash');
  void el.offsetWidth;
  el.classList.add('flash');
  el.focus({ preventScroll: true });
}

let scrollQueued = false;
function onScroll() {
  if (scrollQueued) return;
  scrollQueued = true;
  requestAnimationFrame(() => {
    scrollQueued = false;
    if (conv.id == null || !conv.ready) return;
    const bottom = isAtBottom() && !conv.hasNewer;
    stuck = bottom;
    conv.atBottom = bottom;
    const unread = state.threads.get(conv.id)?.unread_count || 0;
    const distance = feed.scrollHeight - feed.scrollTop - feed.clientHeight;
    toLatestBtn.hidden = !conv.hasNewer && distance < 300;
    $('to-latest-count').hidden = !unread;
    $('to-latest-count').textContent = unread;
    const margin = Math.max(800, feed.clientHeight * 1.5);
    if (deferred) return; // the last page is not on screen yet
    if (conv.hasOlder && feed.scrollTop < margin) history.loadOlder();
    else if (conv.hasNewer && feed.scrollHeight - feed.scrollTop - feed.clientHeight < margin) history.loadNewer();
  });
}
feed.addEventListener('scroll', onScroll, { passive: true });
toLatestBtn.addEventListener('click', () => {
  stuck = true;
  if (conv.hasNewer) history.toLatest();
  else toBottom();
});
// Images that load and a viewport that shrinks (a phone keyboard) must not push the end away.
feed.addEventListener('load', () => stuck && toBottom(), true);
new ResizeObserver(() => stuck && toBottom()).observe(feed);

/* ---------- read marks ---------- */

const visibleUnread = new Set();
const io = new IntersectionObserver((entries) => {
  for (const e of entries) {
    const id = Number(e.target.dataset.messageId);
    if (e.isIntersecting) visibleUnread.add(id);
    else visibleUnread.delete(id);
  }
  markVisible();
}, { root: feed, rootMargin: '-12px 0px' });

function observeUnread() {
  const me = state.me?.id;
  for (const m of conv.messages) {
    if (m.sender !== me && !m.is_read) {
      const node = cache.get(`m${m.id}`)?.node;
      if (node && !node.observed) {
        node.observed = true;
        io.observe(node);
      }
    }
  }
}

function unobserve(node) {
  if (node.observed) {
    io.unobserve(node);
    node.observed = false;
    visibleUnread.delete(Number(node.dataset.messageId));
  }
}

function markVisible() {
  if (document.visibilityState !== 'visible' || !visibleUnread.size || conv.id == null) return;
  const ids = [...visibleUnread];
  visibleUnread.clear();
  for (const id of ids) {
    const node = cache.get(`m${id}`)?.node;
    if (node) unobserve(node);
  }
  history.markRead(ids);
}
document.addEventListener('visibilitychange', markVisible);

/* ---------- actions ---------- */

async function act(kind, m, arg) {
  try {
    switch (kind) {
      // Both move on to the message box: the actions row has done its job.
      case 'reply':
        setActive(null);
        return composer.replyTo(m);
      case 'edit':
        setActive(null);
        return composer.edit(m);
      case 'react': {
        const { openPicker } = await import('./picker.js'); // loaded when first needed
        return openPicker(arg, (emoji) => act('addreact', m, emoji));
      }
      case 'addreact':
        return await react(m, arg, true);
      case 'unreact':
        return await react(m, arg, false);
      case 'delete':
        if (await confirmDialog('Delete this message?', 'It will be deleted for both of you.', 'Delete message')) {
          await api(`/api/messages/${m.id}/`, { method: 'DELETE' });
          apply({ type: 'message.deleted', thread: m.thread, message: m.id, unread_count: state.threads.get(m.thread)?.unread_count });
        }
        return;
      case 'retry':
        return outbox.retry(m.client_id);
      case 'discard':
        return outbox.discard(m.client_id);
      case 'jump':
        return jumpTo(arg);
    }
  } catch (e) {
    const what = { delete: 'delete the message', addreact: 'react', unreact: 'remove the reaction', react: 'react' }[kind] || 'do that';
    showNotice(e.status === 404 || e.status === 405 ? `This server cannot ${what} yet.` : `Could not ${what}: ${e.message}`);
  }
}

async function react(m, emoji, add) {
  const stored = await api(`/api/messages/${m.id}/reactions/${encodeURIComponent(emoji)}/`, { method: add ? 'PUT' : 'DELETE' });
  if (stored?.id) apply({ type: 'message.updated', message: stored });
}

/** Show one message: scroll to it if it is in the window, else load the window around it. */
export function jumpTo(id) {
  const node = feed.querySelector(`[data-message-id="${id}"]`);
  if (node) {
    stuck = false;
    node.scrollIntoView({ block: 'center', behavior: 'smooth' });
    flash(node);
  } else {
    cache.clear();
    feed.replaceChildren();
    history.open(conv.id, id);
  }
}

/* ---------- keyboard and touch in the feed ---------- */

function setActive(msg) {
  for (const el of feed.querySelectorAll('.message.active')) {
    if (el !== msg) {
      el.classList.remove('active');
      for (const b of el.querySelectorAll('.actions button')) b.tabIndex = -1;
    }
  }
  if (msg) {
    msg.classList.add('active');
    for (const b of msg.querySelectorAll('.actions button')) b.tabIndex = 0;
  }
}

// Keyboard focus opens a message's actions; a tap or click decides in the click handler below.
// (Moving them on a pointer's focus would collapse the open row between press and release, so
// the button under the finger moves away and the tap is lost.)
let pressing = false;
feed.addEventListener('pointerdown', () => { pressing = true; }, true);
for (const type of ['pointerup', 'pointercancel']) addEventListener(type, () => { pressing = false; }, true);
feed.addEventListener('focusin', (e) => {
  if (!pressing && !refocusing) setActive(e.target.closest('.message'));
});
feed.addEventListener('keydown', (e) => {
  if (e.key === 'Escape') {
    composer.focus();
    return;
  }
  if (e.key !== 'ArrowUp' && e.key !== 'ArrowDown') return;
  const all = [...feed.querySelectorAll('.message')];
  if (!all.length) return;
  const current = e.target.closest?.('.message');
  let i = current ? all.indexOf(current) + (e.key === 'ArrowUp' ? -1 : 1) : all.length - 1;
  if (!current && e.target !== feed) return;
  i = Math.max(0, Math.min(all.length - 1, i));
  e.preventDefault();
  all[i].focus();
  all[i].scrollIntoView({ block: 'nearest' });
});
// A tap on a message shows its actions (phones have no hover); another tap hides them.
let wasActive = false;
let pressed = null; // the message under the finger at pointerdown
feed.addEventListener('pointerdown', (e) => {
  pressed = e.target.closest('.message');
  wasActive = !!pressed?.classList.contains('active');
});
feed.addEventListener('click', (e) => {
  if (e.target.closest('button, a')) return;
  let msg = e.target.closest('.message');
  // A redraw between press and release (a receipt or reaction arrived) replaces the pressed
  // row, and the click lands on the feed: the tap still meant the message pressed.
  if (!msg && pressed && !pressed.isConnected && pressed.dataset.messageId) {
    msg = feed.querySelector(`[data-message-id="${pressed.dataset.messageId}"]`);
  }
  setActive(msg && !wasActive ? msg : null);
});

/* ---------- live updates ---------- */

// While the reader is scrolling, a programmatic scroll can be overridden by the scroll still
// in progress (the view would jump by a page): hold renders until the scrolling pauses.
for (const type of ['wheel', 'touchmove', 'scroll']) {
  feed.addEventListener(type, () => {
    const now = performance.now();
    if (type !== 'scroll' || now - ownScrollAt > 50) lastScrollAt = now;
  }, { passive: true });
}
function renderWhenStill(reason) {
  const wait = 100 - (performance.now() - lastScrollAt);
  if (stuck || wait <= 0 || reason === 'ready' || reason === 'latest') {
    clearTimeout(deferred);
    deferred = null;
    render(reason);
  } else if (!deferred) {
    deferred = setTimeout(() => {
      deferred = null;
      renderWhenStill(reason);
    }, wait);
  }
}

on('conv', (reason) => {
  if (reason === 'close') return;
  if (reason === 'created' && document.visibilityState === 'hidden' && conv.firstUnread == null) {
    const last = conv.messages.at(-1);
    if (last && last.sender !== state.me?.id) conv.firstUnread = last.id;
  }
  if (reason === 'error' && conv.error && conv.error.status === 404) {
    location.hash = '#/';
    return;
  }
  renderWhenStill(reason);
});
on('outbox', () => {
  if (conv.id == null) return;
  renderWhenStill('outbox');
  // A refused message ("You cannot message this user.") keeps its notice until it is sent
  // or discarded.
  const failed = outbox.pending(conv.id).find((e) => e.status === 403);
  if (!failed) hideNotice('refused');
  else if (!showing('refused')) showNotice(failed.error, false, 'refused');
});
on('threads', onScroll);

/** After sending: show the end of the conversation, where the new message is. */
export function stickToBottom() {
  stuck = true;
  conv.firstUnread = null; // answering means the new messages were read
  render('sent');
  if (conv.hasNewer) history.toLatest();
  else toBottom();
}

on('thread-deleted', (id) => {
  if (new RegExp(`^#/t/${id}(/|$)`).test(location.hash)) location.hash = '#/';
});

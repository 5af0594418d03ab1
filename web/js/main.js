// Main: starts the client — restores the session or shows sign-in, paints the conversation list
// from one request, connects the event stream, routes #/t/<id> to a conversation, and wires the
// connection banner, title and favicon, announcements, notifications and signing out.

import { api, scheduleRenewal, stopRenewal, renewed } from './api.js';
import { current, userId, end, sessionEvents } from './session.js';
import * as socket from './socket.js';
import { state, on, apply, loadThreads, loadBlocks, refreshPresence, totalUnread, userName, reset, restoreCache, dropCache } from './store.js';
import * as hist from './history.js';
import * as outbox from './outbox.js';
import { fillIcons, avatar, h } from './dom.js';
import { preview } from './format.js';
import { showUnread } from './favicon.js';
import * as notify from './notify.js';
import { showLogin } from './views/login.js';
import { renderList, select } from './views/list.js';
import { showConversation, hideConversation, jumpTo, stickToBottom } from './views/conversation.js';
import { showNotice } from './views/header.js';
import * as composer from './views/composer.js';

// Dialogs used now and then load when first opened (the first page load stays small).
const openNewChat = async () => (await import('./views/newchat.js')).openNewChat();
const openSearch = async () => (await import('./views/search.js')).openSearch();
const openSettings = async () => (await import('./views/settings.js')).openSettings();

const $ = (id) => document.getElementById(id);
let started = false;
let helloAt = 0;
let cameFromList = false;

fillIcons();

async function loadList(attempt = 0) {
  try {
    await loadThreads();
  } catch (e) {
    if (e.status === 401 || !started) return; // the session ended
    setTimeout(() => loadList(attempt + 1), Math.min(30000, 1000 * 2 ** attempt));
  }
}

function showMe() {
  if (!state.me?.username) return;
  $('me-name').textContent = state.me.username;
  $('me-avatar').replaceChildren(avatar(state.me.username, 'sm'));
}

function loadMe() {
  api('/api/me/').then((me) => {
    state.me = { id: me.id, username: me.username };
    showMe();
    renderList();
  }, () => {});
}

function start() {
  started = true;
  state.me = { id: userId(), username: '' };
  restoreCache(state.me.id);
  showMe();
  $('login').hidden = true;
  $('app').hidden = false;
  loadList(); // the first paint needs only this request: the user id is in the token
  loadMe();
  outbox.init(state.me.id);
  loadBlocks();
  scheduleRenewal();
  socket.start({
    frame: apply,
    connected(fresh) {
      helloAt = Date.now();
      // Data loaded before the stream's first hello may predate it: read it again once.
      if (fresh) resync(false);
      else {
        if (hist.conv.id != null && !hist.conv.ready && !hist.conv.loading) hist.reload();
        refreshPresence(); // presence frames are not replayed: what changed while we were away
      }
      if (!state.me.username) loadMe();
      outbox.flush();
    },
    resync: () => resync(true),
    state: banner,
    ended: () => end('expired'),
  });
  route();
}

/** Read the list (and the open conversation) again: always after a gap the log cannot fill,
 * and after the first hello only what was loaded before it. */
function resync(all) {
  loadList();
  loadBlocks();
  if (hist.conv.id != null && (all || hist.conv.loadedAt < helloAt)) hist.reload();
}

function stop(reason) {
  started = false;
  socket.stop();
  stopRenewal();
  if (reason === 'signout') {
    outbox.clear();
    dropCache();
  }
  hideConversation();
  reset();
  renderList();
  $('me-name').textContent = 'Simple Chat';
  $('me-avatar').replaceChildren();
  $('announce').replaceChildren();
  showUnread(0);
  banner('live');
  $('app').classList.remove('in-thread');
  history.replaceState(null, '', '#/');
  showLogin(start, reason === 'expired' ? 'Your session has ended. Please sign in again.' : '');
}

sessionEvents.addEventListener('end', (e) => started && stop(e.detail));
renewed.addEventListener('token', (e) => socket.renew(e.detail));

async function signOut() {
  const s = current();
  if (s) {
    try {
      await api('/api/token/blacklist/', { method: 'POST', body: { refresh: s.refresh }, auth: false });
    } catch { /* the token still expires by itself */ }
  }
  end('signout');
}

/* ---------- routing: #/ is the list, #/t/<id> a conversation, #/t/<id>/m/<msg> a message in it ---------- */

function route() {
  if (!started) return;
  const m = location.hash.match(/^#\/t\/(\d+)(?:\/m\/(\d+))?/);
  if (!m) {
    $('app').classList.remove('in-thread');
    select(null);
    hideConversation();
    return;
  }
  const id = Number(m[1]);
  const at = m[2] ? Number(m[2]) : null;
  $('app').classList.add('in-thread');
  select(id);
  if (at != null) {
    history.replaceState(null, '', `#/t/${id}`);
    if (hist.conv.id === id) jumpTo(at);
    else showConversation(id, at);
  } else showConversation(id);
}

addEventListener('hashchange', (e) => {
  cameFromList = !/#\/t\//.test(e.oldURL);
  route();
});
$('back').addEventListener('click', (e) => {
  e.preventDefault();
  if (cameFromList) history.back();
  else location.replace('#/');
});

/* ---------- connection banner ---------- */

let bannerTimer = 0;
let linkState = 'live';
/** The banner shows while the live connection is down (after a moment, so a quick reconnect
 * does not flash it) or the browser says it is offline. */
function banner(s = linkState) {
  linkState = s;
  clearTimeout(bannerTimer);
  const el = $('status');
  const show = () => {
    el.textContent = navigator.onLine ? 'Reconnecting…' : 'You are offline. Reconnecting…';
    el.hidden = false;
  };
  if (started && !navigator.onLine) show();
  else if (s === 'down') bannerTimer = setTimeout(show, 800);
  else {
    el.hidden = true;
    el.textContent = '';
  }
}
addEventListener('offline', () => banner());

/* ---------- unread count, announcements, notifications ---------- */

on('threads', () => showUnread(totalUnread()));
on('incoming', (m) => {
  const name = userName(m.sender);
  const text = preview(m);
  const here = hist.conv.id === m.thread && document.visibilityState === 'visible';
  // One line per message (a burst is read in full), the last few kept.
  const live = $('announce');
  live.append(h('p', null, here ? `${name}: ${text}` : `New message from ${name}: ${text}`));
  while (live.childElementCount > 5) live.firstElementChild.remove();
  notify.incoming({
    title: name,
    body: text,
    tag: `thread-${m.thread}`,
    onclick: () => { location.hash = `#/t/${m.thread}`; },
  }, !here || !document.hasFocus());
});

composer.configure({
  notice: showNotice,
  sent: stickToBottom,
  typing: (thread) => socket.send({ type: 'typing', thread }),
});

/* ---------- buttons, keys, lifecycle ---------- */

$('new-chat').addEventListener('click', openNewChat);
$('new-chat-empty').addEventListener('click', openNewChat);
$('open-search').addEventListener('click', openSearch);
$('open-settings').addEventListener('click', openSettings);
$('sign-out').addEventListener('click', signOut);
addEventListener('keydown', (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === 'k' && started) {
    e.preventDefault();
    openSearch();
  }
});
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && started) {
    scheduleRenewal();
    socket.nudge();
  }
});
addEventListener('online', () => {
  banner();
  if (started) socket.nudge();
});

if (current()) start();
else showLogin(start);

if ('serviceWorker' in navigator) {
  addEventListener('load', () => setTimeout(() => navigator.serviceWorker.register('/sw.js').catch(() => {}), 3000));
}

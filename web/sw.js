// Service worker: keeps the app shell (page, styles, scripts, icons) so the client opens even
// when the server cannot be reached, and always tries the network first so an upgraded server
// never runs a stale client. API answers, events, files and the admin pages are never cached:
// they pass straight through. Bump VERSION whenever a shell file changes.

const VERSION = 'simple-chat-shell-v6';
const SHELL = [
  '/',
  '/manifest.webmanifest',
  '/assets/app.css',
  '/assets/icon.svg',
  '/assets/icon-maskable.svg',
  '/assets/js/main.js',
  '/assets/js/api.js',
  '/assets/js/session.js',
  '/assets/js/socket.js',
  '/assets/js/store.js',
  '/assets/js/history.js',
  '/assets/js/outbox.js',
  '/assets/js/dom.js',
  '/assets/js/format.js',
  '/assets/js/notify.js',
  '/assets/js/favicon.js',
  '/assets/js/views/login.js',
  '/assets/js/views/list.js',
  '/assets/js/views/conversation.js',
  '/assets/js/views/header.js',
  '/assets/js/views/message.js',
  '/assets/js/views/composer.js',
  '/assets/js/views/picker.js',
  '/assets/js/views/newchat.js',
  '/assets/js/views/search.js',
  '/assets/js/views/settings.js',
];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(VERSION).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== VERSION).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

/** Only the shell: the page itself and /assets/ (never /api, /chat, /thread, /message, /user, /ws, /admin). */
function isShell(url) {
  return url.origin === self.location.origin
    && (url.pathname === '/' || url.pathname === '/manifest.webmanifest' || url.pathname.startsWith('/assets/'));
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  const page = request.mode === 'navigate' && url.origin === self.location.origin && url.pathname === '/';
  if (!page && !isShell(url)) return; // straight to the network, untouched
  const key = page ? '/' : url.pathname;
  event.respondWith(fetch(request).then((response) => {
    if (response.ok) {
      const copy = response.clone();
      caches.open(VERSION).then((cache) => cache.put(key, copy));
    }
    return response;
  }).catch(() => caches.match(key).then((hit) => hit || Response.error())));
});

// Socket: the live event stream. A WebSocket on /ws that resumes from the last seq processed
// (nothing missed, nothing applied twice), reconnects by itself with exponential back-off and
// jitter, renews its token with an `auth` frame, and falls back to long polling /api/events/
// when WebSockets cannot get through. Reports 'connecting' | 'live' | 'down' to its owner.

import { api, token, refresh } from './api.js';

let on = null; // {frame(f), connected(fresh), resync(), state(s)}
let ws = null;
let running = false;
let mode = 'ws';
let attempt = 0; // consecutive failures, for the back-off
let wsFailures = 0; // consecutive sockets that never said hello
let retryTimer = 0;
let pollAbort = null;
let pollingSince = 0;
let lastSeq = null;
let current = 'down';
let reauthAt = 0;

function setState(s) {
  if (s !== current) {
    current = s;
    on.state(s);
  }
}

export const state = () => current;
export const seq = () => lastSeq;

export function start(handlers) {
  on = handlers;
  running = true;
  lastSeq = null;
  attempt = wsFailures = 0;
  mode = 'ws';
  current = '';
  setState('connecting');
  connect();
}

export function stop() {
  running = false;
  clearTimeout(retryTimer);
  if (ws) {
    const sock = ws;
    ws = null;
    sock.close(1000);
  }
  pollAbort?.abort();
}

/** Come back now (the page is visible again, the network is back). */
export function nudge() {
  if (running && current === 'down' && mode === 'ws' && !ws) {
    attempt = 0;
    connect();
  }
}

/** Renew the socket's authentication with a fresh access token. */
export function renew(access) {
  if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'auth', token: access }));
}

export function send(frame) {
  if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
}

/** One frame of the log (or an ephemeral one): each seq is applied once, in order. */
function receive(f) {
  if (f.type === 'resync_required') {
    lastSeq = f.seq;
    on.resync();
    return;
  }
  if (f.seq != null && lastSeq != null && f.seq <= lastSeq) return;
  if (f.type !== 'auth.ok') {
    try {
      on.frame(f);
    } catch (err) {
      console.error('applying frame', f, err);
    }
  }
  if (f.seq != null) lastSeq = f.seq;
}

function retry() {
  attempt++;
  const base = Math.min(30000, 500 * 2 ** Math.min(attempt, 6));
  retryTimer = setTimeout(connect, base / 2 + Math.random() * (base / 2));
}

async function connect() {
  clearTimeout(retryTimer);
  if (!running) return;
  if (mode === 'poll') return poll();
  let access;
  try {
    access = await token();
  } catch (e) {
    if (e.status === 401) return; // the session ended; the owner signs out
    setState('down');
    return retry();
  }
  if (!running || ws) return;
  const q = new URLSearchParams({ token: access });
  if (lastSeq != null) q.set('since', lastSeq);
  const sock = new WebSocket(`${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws?${q}`);
  ws = sock;
  let hello = false;
  sock.onmessage = (e) => {
    let f;
    try {
      f = JSON.parse(e.data);
    } catch {
      return;
    }
    if (f.type === 'hello') {
      hello = true;
      attempt = wsFailures = 0;
      const fresh = lastSeq == null;
      if (fresh) lastSeq = f.seq;
      setState('live');
      on.connected(fresh);
    } else receive(f);
  };
  sock.onclose = (e) => {
    if (ws !== sock) return;
    ws = null;
    if (!running) return;
    setState('down');
    if (e.code === 4001) return reauth();
    if (hello) return retry();
    // A socket that never said hello: WebSockets may be blocked on the way (then long polling
    // works), or the server is simply down or restarting (then it does not, and we keep trying
    // the socket: falling back would cost typing and presence for minutes after a restart).
    httpAnswers().then((up) => {
      if (!running || ws) return;
      if (up && ++wsFailures >= 3) {
        mode = 'poll';
        wsFailures = 0;
        return poll();
      }
      retry();
    });
  };
}

/** Does the server answer plain HTTP right now? */
async function httpAnswers() {
  try {
    return (await fetch('/healthz', { cache: 'no-store' })).ok;
  } catch {
    return false;
  }
}

/** 4001: the token expired or was revoked. Refresh once and come back, or the session is over. */
async function reauth() {
  if (Date.now() - reauthAt < 10000) return on.ended();
  reauthAt = Date.now();
  try {
    await refresh();
    connect();
  } catch (e) {
    if (e.status !== 401) retry(); // 401: the session ended; the owner signs out
  }
}

const sleep = (ms) => new Promise((r) => { retryTimer = setTimeout(r, ms); });

/** Long poll: the same log over HTTP; WebSocket is tried again every five minutes. */
async function poll() {
  pollingSince = Date.now();
  while (running && mode === 'poll') {
    pollAbort = new AbortController();
    try {
      if (lastSeq == null) {
        const head = await api('/api/events/?timeout=0', { signal: pollAbort.signal });
        lastSeq = head.seq;
        setState('live');
        on.connected(true);
      }
      const answer = await api(`/api/events/?since=${lastSeq}&timeout=25`, { signal: pollAbort.signal });
      attempt = 0;
      if (current !== 'live') {
        setState('live');
        on.connected(false);
      }
      for (const f of answer.events) receive(f);
      if (answer.seq > lastSeq) lastSeq = answer.seq;
    } catch (e) {
      if (e.name === 'AbortError' || !running) return;
      if (e.status === 401) return;
      if (e.status === 400) {
        lastSeq = null; // our seq is ahead of the server's log (a restored database): start over
        continue;
      }
      setState('down');
      attempt++;
      await sleep(Math.min(30000, 500 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random() / 2));
    }
    if (Date.now() - pollingSince > 300000) {
      mode = 'ws';
      return connect();
    }
  }
}

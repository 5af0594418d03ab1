// API client: fetch with the access token, renewed before it expires and once more on a 401
// (one refresh at a time, shared between tabs), the server's error shapes turned into ApiError,
// uploads with progress, and files fetched with the token as blob: URLs.

import { current, setTokens, reread, end, accessLeft, refreshLeft, renewMargin } from './session.js';

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(describe(status, body));
    this.status = status; // 0 when the server could not be reached
    this.body = body;
    this.retryAfter = retryAfter;
  }
  get transient() {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

/** The first human message of a DRF error body. */
function describe(status, body) {
  if (status === 0) return 'Cannot reach the server.';
  if (body && typeof body === 'object') {
    if (typeof body.detail === 'string') return body.detail;
    const first = (v) => (typeof v === 'string' ? v : Array.isArray(v) ? v.map(first).find(Boolean)
      : v && typeof v === 'object' ? Object.values(v).map(first).find(Boolean) : null);
    const msg = first(body);
    if (msg) return msg;
  }
  return `The server answered ${status}.`;
}

async function errorOf(res) {
  let body = null;
  try {
    body = await res.json();
  } catch { /* not JSON */ }
  const ra = Number(res.headers.get('Retry-After'));
  return new ApiError(res.status, body, Number.isFinite(ra) && ra > 0 ? ra : null);
}

const JSON_TYPE = { 'Content-Type': 'application/json' };

export async function login(username, password) {
  let res;
  try {
    res = await fetch('/api/token/', { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ username, password }) });
  } catch {
    throw new ApiError(0, null);
  }
  if (!res.ok) throw await errorOf(res);
  setTokens(await res.json());
}

let refreshing = null;

/** Fires `token` (detail: the new access token) after every renewal. */
export const renewed = new EventTarget();

/** A fresh access token. Concurrent callers share one request; tabs share one via a lock. */
export function refresh() {
  if (!refreshing) {
    const run = () => doRefresh();
    refreshing = (navigator.locks ? navigator.locks.request('sc-refresh', run) : run())
      .then((access) => {
        renewed.dispatchEvent(new CustomEvent('token', { detail: access }));
        return access;
      })
      .finally(() => { refreshing = null; });
  }
  return refreshing;
}

async function doRefresh() {
  // Another tab may have renewed while we waited for the lock.
  if (reread() && accessLeft() > renewMargin()) return current().access;
  const s = current();
  if (!s || refreshLeft() <= 0) {
    end('expired');
    throw new ApiError(401, { detail: 'Your session has ended. Please sign in again.' });
  }
  let res;
  try {
    res = await fetch('/api/token/refresh/', { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ refresh: s.refresh }) });
  } catch {
    throw new ApiError(0, null);
  }
  if (res.status === 401 || res.status === 400) {
    // A rotated token another tab already used and stored is not an ended session.
    if (reread() && accessLeft() > 0) return current().access;
    end('expired');
    throw new ApiError(401, { detail: 'Your session has ended. Please sign in again.' });
  }
  if (!res.ok) throw await errorOf(res);
  const data = await res.json();
  setTokens({ access: data.access, refresh: data.refresh });
  return data.access;
}

/** The current access token, renewed first when it is about to expire. */
export async function token() {
  if (!current()) throw new ApiError(401, { detail: 'Not signed in.' });
  if (accessLeft() < renewMargin() / 2) return refresh();
  return current().access;
}

/**
 * api('/api/me/') → parsed JSON (null for 204). Options: method, body (JSON-encoded unless
 * FormData), signal, auth (default true).
 */
export async function api(path, { method = 'GET', body, signal, auth = true } = {}) {
  for (let attempt = 0; ; attempt++) {
    const headers = {};
    if (auth) headers.Authorization = `Bearer ${await token()}`;
    let payload = body;
    if (body !== undefined && !(body instanceof FormData)) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, { method, headers, body: payload, signal });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError(0, null);
    }
    if (res.status === 401 && auth && attempt === 0) {
      await refresh();
      continue;
    }
    if (!res.ok) throw await errorOf(res);
    if (res.status === 204) return null;
    const text = await res.text();
    return text ? JSON.parse(text) : null;
  }
}

/** A same-origin path for an absolute link the server gave (next/previous, file URLs). */
export function local(url) {
  const u = new URL(url, location.href);
  return u.pathname + u.search;
}

/** POST /api/files/ with progress: resolves to the file JSON. */
export async function upload(file, onProgress, signal) {
  const access = await token();
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/files/');
    xhr.setRequestHeader('Authorization', `Bearer ${access}`);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress?.(e.loaded / e.total);
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new ApiError(xhr.status, body, Number(xhr.getResponseHeader('Retry-After')) || null));
    };
    xhr.onerror = () => reject(new ApiError(0, null));
    xhr.onabort = () => reject(new DOMException('aborted', 'AbortError'));
    signal?.addEventListener('abort', () => xhr.abort());
    const form = new FormData();
    form.append('file', file, file.name);
    xhr.send(form);
  });
}

/** A file the server serves to participants only, fetched with the token, as a blob: URL. */
export async function blobUrl(url) {
  const res = await fetch(local(url), { headers: { Authorization: `Bearer ${await token()}` } });
  if (!res.ok) throw await errorOf(res);
  return URL.createObjectURL(await res.blob());
}

// Renew the access token a minute before it expires (or at 3/4 of a short lifetime), so the
// socket is renewed in time and requests never wait for a refresh. Rescheduled after each renewal.
let renewTimer = 0;
export function scheduleRenewal() {
  clearTimeout(renewTimer);
  if (!current()) return;
  const wait = Math.max(1000, accessLeft() - renewMargin());
  renewTimer = setTimeout(() => {
    refresh().catch((e) => {
      if (e.status !== 401) renewTimer = setTimeout(scheduleRenewal, 10000);
    });
  }, wait);
}
renewed.addEventListener('token', scheduleRenewal);

export function stopRenewal() {
  clearTimeout(renewTimer);
}

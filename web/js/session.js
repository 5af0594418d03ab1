// Session: the signed-in user's access and refresh tokens, kept in localStorage so a reload (or
// another tab) stays signed in for the refresh token's lifetime; what the tokens say (user id,
// expiry); and the events `change` (tokens renewed) and `end` (signed out, here or in another tab).

const KEY = 'sc.session';

export const sessionEvents = new EventTarget();

let state = read();

function read() {
  try {
    const s = JSON.parse(localStorage.getItem(KEY));
    return s && s.refresh ? s : null;
  } catch {
    return null;
  }
}

/** The claims of a JWT (not verified: the server does that; we only read expiry and user). */
export function claims(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part));
  } catch {
    return {};
  }
}

export function current() {
  return state;
}

/** The user id the tokens belong to. */
export function userId() {
  return state ? claims(state.refresh).user_id : null;
}

/** Milliseconds left before the access token expires (negative when expired or absent). */
export function accessLeft() {
  if (!state?.access) return -1;
  return claims(state.access).exp * 1000 - Date.now();
}

/** How early to renew the access token: a minute, or a quarter of a short lifetime. */
export function renewMargin() {
  const c = state?.access ? claims(state.access) : {};
  const lifetime = c.exp && c.iat ? (c.exp - c.iat) * 1000 : 300000;
  return Math.min(60000, lifetime / 4);
}

export function refreshLeft() {
  if (!state?.refresh) return -1;
  return claims(state.refresh).exp * 1000 - Date.now();
}

/** Store tokens: a new access, and a new refresh when the server rotated it. */
export function setTokens({ access, refresh }) {
  state = { access, refresh: refresh || state?.refresh };
  localStorage.setItem(KEY, JSON.stringify(state));
  sessionEvents.dispatchEvent(new Event('change'));
}

/** Tokens another tab may have stored since we last looked (rotation, renewal). */
export function reread() {
  const s = read();
  if (s && (!state || s.refresh !== state.refresh || s.access !== state.access)) {
    state = s;
    return true;
  }
  return false;
}

export function end(reason = 'signout') {
  if (!state) return;
  state = null;
  localStorage.removeItem(KEY);
  sessionEvents.dispatchEvent(new CustomEvent('end', { detail: reason }));
}

// Another tab signed out or in as someone else: follow it.
addEventListener('storage', (e) => {
  if (e.key !== KEY && e.key !== null) return;
  const s = read();
  if (!s) {
    if (state) {
      state = null;
      sessionEvents.dispatchEvent(new CustomEvent('end', { detail: 'elsewhere' }));
    }
  } else if (state && claims(s.refresh).user_id !== claims(state.refresh).user_id) {
    location.reload();
  } else if (state) {
    state = s;
  }
});

// Sign-in screen: the username/password form, with a clear message for wrong credentials
// (401), throttling (429, from Retry-After), a busy server (503) and no connection.

import { login } from '../api.js';

const $ = (id) => document.getElementById(id);

export function showLogin(onSignedIn, message = '') {
  const section = $('login');
  const form = $('login-form');
  const error = $('login-error');
  const button = form.querySelector('button[type=submit]');
  $('app').hidden = true;
  section.hidden = false;
  error.textContent = message;
  $('login-password').value = '';
  ($('login-username').value ? $('login-password') : $('login-username')).focus();

  form.onsubmit = async (e) => {
    e.preventDefault();
    const username = $('login-username').value.trim();
    const password = $('login-password').value;
    if (!username || !password) {
      error.textContent = 'Enter your username and password.';
      return;
    }
    button.disabled = true;
    error.textContent = '';
    try {
      await login(username, password);
      section.hidden = true;
      $('login-password').value = '';
      onSignedIn();
    } catch (err) {
      error.textContent = explain(err);
      $('login-password').select();
    } finally {
      button.disabled = false;
    }
  };
}

function explain(err) {
  switch (err.status) {
    case 401:
    case 400:
      return 'Wrong username or password.';
    case 429: {
      const s = err.retryAfter;
      const wait = !s ? 'a few minutes' : s < 90 ? `${s} seconds` : `${Math.ceil(s / 60)} minutes`;
      return `Too many failed attempts. Try again in ${wait}.`;
    }
    case 503:
      return 'The server is busy. Try again in a moment.';
    case 0:
      return 'Cannot reach the server. Check your connection.';
    default:
      return err.message;
  }
}

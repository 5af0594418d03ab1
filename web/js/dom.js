// DOM helpers: building elements without innerHTML (text always goes in as text), the small
// set of line icons the client uses, and the avatar colour of a username.

const SVG = 'http://www.w3.org/2000/svg';

/** h('button', {class: 'x', 'aria-label': 'Send', onclick: f}, child, 'text', …) */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
  }
  for (const c of children.flat()) if (c != null && c !== false) el.append(c);
  return el;
}

// 24×24 stroked paths.
const PATHS = {
  send: 'M4 12 20 4l-6 16-2.5-6.5L4 12zm7.5 1.5L20 4',
  attach: 'M20 11.5 12 19.5a5 5 0 0 1-7-7L13.5 4a3.4 3.4 0 0 1 4.8 4.8L10 17a1.7 1.7 0 0 1-2.4-2.4L15 7.2',
  reply: 'M9 15 4 10l5-5M4 10h10a6 6 0 0 1 6 6v3',
  react: 'M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18zM8.5 14.5s1.2 2 3.5 2 3.5-2 3.5-2M9 9.5h.01M15 9.5h.01',
  edit: 'M4 20h4L19 9l-4-4L4 16v4zM13.5 6.5l4 4',
  trash: 'M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3',
  compose: 'M12 20h8M16.5 4.5a2.1 2.1 0 0 1 3 3L8 19l-4 1 1-4L16.5 4.5z',
  search: 'M11 4a7 7 0 1 0 0 14 7 7 0 0 0 0-14zM20 20l-4-4',
  settings: 'M4 7h9M17 7h3M4 17h3M11 17h9M15 5v4M9 15v4',
  signout: 'M14 4h4a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2h-4M9 16l-4-4 4-4M5 12h11',
  back: 'M15 18l-6-6 6-6',
  block: 'M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18zM5.6 5.6l12.8 12.8',
  close: 'M6 6l12 12M18 6 6 18',
  down: 'M12 5v14M6 13l6 6 6-6',
  file: 'M14 3H6v18h12V7l-4-4zM14 3v4h4',
  bell: 'M6 9a6 6 0 0 1 12 0c0 6 2.5 8 2.5 8h-17S6 15 6 9zM10 20.5a2.2 2.2 0 0 0 4 0',
  download: 'M12 4v11M7 10l5 5 5-5M5 20h14',
};

export function icon(name) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', 'icon');
  const path = document.createElementNS(SVG, 'path');
  path.setAttribute('d', PATHS[name]);
  svg.append(path);
  return svg;
}

/** An icon-only button: the label is its accessible name and its tooltip. */
export function iconButton(name, label, onclick, cls = 'icon-btn') {
  return h('button', { type: 'button', class: cls, 'aria-label': label, title: label, onclick }, icon(name));
}

/** Fill every `[data-icon]` placeholder of the static page with its icon. */
export function fillIcons(root = document) {
  for (const el of root.querySelectorAll('[data-icon]')) {
    if (!el.querySelector('svg')) el.prepend(icon(el.dataset.icon));
  }
}

export function avatar(name, cls = '') {
  let hash = 0;
  for (const ch of name || '?') hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  const initial = [...(name || '?')][0].toUpperCase();
  return h('span', { class: `avatar av-${hash % 8} ${cls}`, 'aria-hidden': 'true' }, initial);
}

export function srOnly(text) {
  return h('span', { class: 'sr-only' }, text);
}

/** Ask before something that cannot be undone; resolves true when confirmed. */
export function confirmDialog(title, text, ok) {
  const dialog = document.getElementById('confirm-dialog');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = ok;
  dialog.returnValue = '';
  dialog.showModal();
  document.getElementById('confirm-ok').focus();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
  });
}

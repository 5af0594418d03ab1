// One message on screen: the bubble (text with clickable links, the quoted message it replies
// to, attached images and files), its time, "edited", its sending state, reaction chips, and the
// Reply / React / Edit / Delete buttons. Images are fetched with the token and kept as blob: URLs
// in a small cache; other files download the same way.

import { blobUrl, local } from '../api.js';
import { h, iconButton, icon, srOnly } from '../dom.js';
import { time, fullDate, linkify, isJumbo, preview, size } from '../format.js';
import { state, userName } from '../store.js';
import * as history from '../history.js';

/**
 * m: message JSON, or an outbox entry ({client_id, text, files, reply_to, created, error}).
 * ctx: {first, pending, act(kind, m, arg)}.
 */
export function messageNode(m, ctx) {
  const me = state.me?.id;
  const mine = ctx.pending || m.sender === me;
  const el = h('article', {
    class: `message ${mine ? 'mine' : 'theirs'}${ctx.first ? ' first' : ''}${ctx.pending ? (m.error ? ' failed' : ' pending') : ''}`,
    'data-message-id': ctx.pending ? null : m.id,
    'data-client-id': m.client_id || null,
    tabindex: '-1',
  });
  const sending = ctx.pending && !m.error;
  const bubble = h('div', { class: `bubble${m.edited ? ' edited' : ''}${sending ? ' sending' : ''}${m.text ? '' : ' no-text'}` },
    srOnly(mine ? 'You: ' : `${userName(m.sender)}: `));
  if (m.reply_to) bubble.append(quote(m.reply_to, ctx));
  if (m.files?.length) bubble.append(files(m.files));
  if (m.text) bubble.append(h('div', { class: `text${isJumbo(m.text) ? ' jumbo' : ''}` }, linkify(m.text)));
  const meta = h('span', { class: 'meta' }, h('time', { datetime: m.created, title: fullDate(m.created) }, time(m.created)));
  if (m.edited) meta.append(' · ', h('span', { title: `Edited ${fullDate(m.edited)}` }, 'edited'));
  if (sending) meta.append(' · Sending…');
  bubble.append(meta);

  const row = h('div', { class: 'row' }, bubble);
  if (!ctx.pending) {
    const actions = h('div', { class: 'actions', role: 'group', 'aria-label': 'Message actions' },
      button('reply', 'Reply', () => ctx.act('reply', m)),
      button('react', 'React', (e) => ctx.act('react', m, e.currentTarget)));
    if (mine) {
      if (m.text) actions.append(button('edit', 'Edit', () => ctx.act('edit', m)));
      actions.append(button('trash', 'Delete', () => ctx.act('delete', m)));
    }
    row.append(actions);
  }
  el.append(row);

  if (m.reactions?.length) {
    el.append(h('div', { class: 'reactions' }, m.reactions.map((r) => {
      const pressed = r.users.includes(me);
      return h('button', {
        type: 'button',
        class: 'chip',
        'aria-pressed': String(pressed),
        title: r.users.map(userName).join(', '),
        onclick: () => ctx.act(pressed ? 'unreact' : 'addreact', m, r.emoji),
      }, `${r.emoji} ${r.users.length}`);
    })));
  }
  if (ctx.pending && m.error) {
    el.append(h('p', { class: 'fail-line' }, `Not sent: ${m.error}`,
      h('button', { type: 'button', onclick: () => ctx.act('retry', m) }, 'Retry'),
      h('button', { type: 'button', onclick: () => ctx.act('discard', m) }, 'Discard')));
  }
  return el;
}

function button(name, label, onclick) {
  const b = iconButton(name, label, onclick);
  b.tabIndex = -1; // reachable from the focused message (roving focus), not one stop per message
  return b;
}

function quote(id, ctx) {
  const original = history.byId(id);
  const gone = !original && (state.deleted.has(id) || history.spans(id));
  const who = original && (original.sender === state.me?.id ? 'You' : userName(original.sender));
  const text = original ? preview(original) : gone ? 'message deleted' : 'an earlier message';
  return h('button', {
    type: 'button',
    class: `quote${original ? '' : ' gone'}`,
    disabled: gone,
    'aria-label': `Replying to ${original ? `${who}: ${text}` : text}${gone ? '' : '. Show it'}`,
    onclick: () => ctx.act('jump', null, id),
  }, who ? h('strong', null, who) : null, h('span', null, text));
}

// Thumbnails as blob: URLs, the most recent 100 kept (and the rest revoked).
const thumbs = new Map();
function thumbUrl(url) {
  let p = thumbs.get(url);
  if (p) {
    thumbs.delete(url);
    thumbs.set(url, p);
    return p;
  }
  p = blobUrl(url);
  p.catch(() => thumbs.delete(url));
  thumbs.set(url, p);
  if (thumbs.size > 100) {
    const [oldUrl, oldP] = thumbs.entries().next().value;
    thumbs.delete(oldUrl);
    oldP.then(URL.revokeObjectURL, () => {});
  }
  return p;
}

// Images are fetched when they come near the visible part of the feed, not all at once.
const nearView = new IntersectionObserver((entries) => {
  for (const e of entries) {
    if (!e.isIntersecting) continue;
    const img = e.target;
    nearView.unobserve(img);
    thumbUrl(img.source).then((u) => { img.src = u; }, () => { img.alt = `${img.alt} (could not load)`; });
  }
}, { root: document.getElementById('feed'), rootMargin: '600px 0px' });

const isImage = (f) => /^image\/(png|jpeg|gif|webp)$/.test(f.content_type || '');

function files(list) {
  const box = h('div', { class: 'files' });
  for (const f of list) {
    if (isImage(f)) {
      const img = h('img', { alt: f.name, decoding: 'async' });
      img.source = f.thumbnail_url || f.url;
      nearView.observe(img);
      box.append(h('button', { type: 'button', class: 'thumb', 'aria-label': `Open image ${f.name}`, onclick: () => view(f) }, img));
    } else {
      box.append(h('a', {
        class: 'file-link',
        href: local(f.url),
        download: f.name,
        onclick: (e) => {
          e.preventDefault();
          download(f);
        },
      }, icon('file'), h('span', null, h('span', { class: 'file-name' }, f.name), h('span', { class: 'file-size' }, `${size(f.size)} · Download`))));
    }
  }
  return box;
}

async function view(f) {
  const dialog = document.getElementById('viewer');
  const img = document.getElementById('viewer-img');
  img.alt = f.name;
  img.src = await thumbUrl(f.thumbnail_url || f.url);
  dialog.showModal();
  try {
    const full = await blobUrl(f.url);
    if (dialog.open && img.alt === f.name) {
      img.src = full;
      dialog.addEventListener('close', () => URL.revokeObjectURL(full), { once: true });
    } else URL.revokeObjectURL(full);
  } catch { /* the thumbnail stays */ }
}

async function download(f) {
  try {
    const u = await blobUrl(f.url);
    const a = h('a', { href: u, download: f.name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(u), 30000);
  } catch {
    location.href = local(f.url);
  }
}

// Conversation header and notices: who the other person is, their presence ("online",
// "last seen …"), the typing line, the Block / Unblock button, and the notice line above the
// composer (errors, "You cannot message this user.").

import { api } from '../api.js';
import { h, avatar } from '../dom.js';
import { lastSeen } from '../format.js';
import { state, on, loadPresence } from '../store.js';
import * as composer from './composer.js';

const $ = (id) => document.getElementById(id);
const typingLine = $('typing');
const notice = $('notice');
const blockBtn = $('block');

let thread = null;
let other = null; // {id, username}

/** Show the header of a conversation (or clear it with nulls). */
export function showHeader(threadId, person) {
  thread = threadId;
  other = person;
  hideNotice();
  if (!other) return;
  $('conv-avatar').replaceChildren(avatar(other.username));
  $('conv-name').textContent = other.username;
  presence();
  typing();
  blockState();
}

function presence() {
  if (!other) return;
  const p = state.presence.get(other.id);
  const el = $('conv-presence');
  el.textContent = lastSeen(p);
  el.classList.toggle('online', !!p?.online);
  const face = $('conv-avatar').firstChild;
  if (face && !!p?.online !== !!face.querySelector('.dot')) {
    if (p?.online) face.append(h('span', { class: 'dot' }));
    else face.querySelector('.dot').remove();
  }
}
setInterval(presence, 30000); // "last seen 5 min ago" moves on

function typing() {
  const shown = other != null && state.typing.has(thread);
  typingLine.textContent = shown ? `${other.username} is typing…` : '';
  typingLine.hidden = !shown;
}

function blockState() {
  if (!other) return;
  const blocked = state.blocks.has(other.id);
  blockBtn.textContent = blocked ? 'Unblock' : 'Block';
  blockBtn.title = `${blocked ? 'Unblock' : 'Block'} ${other.username}`;
  composer.setBlocked(blocked);
  if (blocked) {
    showNotice(`You blocked ${other.username}. Neither of you can send messages until you unblock.`, false, 'block');
  } else hideNotice('block');
}

blockBtn.addEventListener('click', async () => {
  if (!other) return;
  const target = other;
  const blocked = state.blocks.has(target.id);
  try {
    await api(`/api/me/blocks/${target.id}/`, { method: blocked ? 'DELETE' : 'PUT' });
    if (blocked) state.blocks.delete(target.id);
    else state.blocks.add(target.id);
    if (target === other) blockState();
    loadPresence([target.id]); // not shared while either blocks the other
  } catch (e) {
    showNotice(e.status === 404 || e.status === 405 ? 'Blocking is not available on this server.'
      : `Could not ${blocked ? 'unblock' : 'block'}: ${e.message}`);
  }
});

let noticeTimer = 0;
/** Show a notice above the composer; `kind` names a lasting one so it can be taken back. */
export function showNotice(text, autoHide = true, kind = null) {
  clearTimeout(noticeTimer);
  notice.textContent = text;
  notice.hidden = false;
  if (kind) notice.dataset.kind = kind;
  else delete notice.dataset.kind;
  if (autoHide) noticeTimer = setTimeout(hideNotice, 8000);
}

/** Hide the notice (only when it is of `kind`, if given). */
export function hideNotice(kind) {
  if (typeof kind === 'string' && notice.dataset.kind !== kind) return;
  notice.hidden = true;
  delete notice.dataset.kind;
}

/** Is a notice of this kind showing? */
export const showing = (kind) => !notice.hidden && notice.dataset.kind === kind;

on('typing', (id) => id === thread && typing());
on('presence', presence);
on('blocks', blockState);

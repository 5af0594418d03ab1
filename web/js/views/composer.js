// Composer: the message box under a conversation. Enter sends, Shift+Enter breaks the line;
// typing signals at most every 2 s; reply and edit modes (Esc cancels, ↑ in an empty box edits
// your last message); files from the Attach button, drag-and-drop onto the conversation and
// paste, uploaded at once with progress and sent with the message. Drafts are kept per
// conversation while the page lives.

import { api, upload } from '../api.js';
import { h, icon } from '../dom.js';
import { preview, size } from '../format.js';
import { state, apply } from '../store.js';
import * as history from '../history.js';
import * as outbox from '../outbox.js';

const $ = (id) => document.getElementById(id);
const form = $('composer');
const input = $('message-input');
const send = $('send');
const tray = $('attachments');
const fileInput = $('file-input');

let thread = null;
let other = null;
let mode = null; // {kind: 'reply' | 'edit', m}
let files = []; // {file, preview, progress, meta, error, abort}
let lastTyping = 0;
let hooks = { notice() {}, sent() {}, typing() {} };
const drafts = new Map();

export function configure(handlers) {
  hooks = { ...hooks, ...handlers };
}

export function setThread(id, person) {
  setMode(null); // an edit in progress gives the draft back first
  if (thread != null) drafts.set(thread, input.value);
  clearFiles();
  thread = id;
  other = person;
  input.value = (id != null && drafts.get(id)) || '';
  input.placeholder = person ? `Message ${person.username}` : 'Message';
  autosize();
  update();
  if (id != null && matchMedia('(hover: hover)').matches) input.focus({ preventScroll: true });
}

export function setBlocked(blocked) {
  input.disabled = !!blocked;
  input.placeholder = blocked ? 'You blocked this person' : other ? `Message ${other.username}` : 'Message';
  update();
}

export const focus = () => input.focus();

function setMode(next) {
  if (mode?.kind === 'edit' && next?.kind !== 'edit') input.value = mode.draft ?? '';
  mode = next;
  $('composer-context').hidden = !mode;
  if (mode) {
    const who = mode.m.sender === state.me?.id ? 'your message' : other?.username;
    $('context-title').textContent = mode.kind === 'edit' ? 'Edit message' : `Replying to ${who}`;
    $('context-body').textContent = preview(mode.m);
  }
  autosize();
  update();
}

export function replyTo(m) {
  setMode({ kind: 'reply', m });
  input.focus();
}

export function edit(m) {
  const draft = mode?.kind === 'edit' ? mode.draft : input.value;
  setMode({ kind: 'edit', m, draft });
  input.value = m.text;
  autosize();
  update();
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
}

$('context-cancel').addEventListener('click', () => {
  setMode(null);
  input.focus();
});

function autosize() {
  input.style.height = 'auto';
  input.style.height = `${Math.min(input.scrollHeight, 180)}px`;
}

const uploading = () => files.some((f) => !f.meta && !f.error);

function update() {
  const hasText = input.value.trim().length > 0;
  const ready = files.filter((f) => f.meta).length;
  send.disabled = input.disabled || uploading() || (mode?.kind === 'edit' ? !hasText : !hasText && !ready);
}

input.addEventListener('input', () => {
  autosize();
  update();
  if (thread != null && input.value && Date.now() - lastTyping > 2000) {
    lastTyping = Date.now();
    hooks.typing(thread);
  }
});

input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey && !e.isComposing) {
    e.preventDefault();
    form.requestSubmit();
  } else if (e.key === 'Escape' && mode) {
    e.preventDefault();
    setMode(null);
  } else if (e.key === 'ArrowUp' && !input.value && !mode) {
    const mine = history.conv.messages.findLast((m) => m.sender === state.me?.id && m.text);
    if (mine) {
      e.preventDefault();
      edit(mine);
    }
  }
});

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  if (uploading() && !input.disabled) hooks.notice('Files are still uploading: send when they are done.');
  if (send.disabled || thread == null) return;
  const text = input.value.trim();
  if (mode?.kind === 'edit') {
    const m = mode.m;
    setMode(null); // gives back the draft the edit interrupted
    if (text === m.text) return;
    try {
      const stored = await api(`/api/messages/${m.id}/`, { method: 'PATCH', body: { text } });
      apply({ type: 'message.updated', message: stored });
    } catch (err) {
      hooks.notice(err.status === 404 || err.status === 405 ? 'This server cannot edit messages yet.' : `Could not edit: ${err.message}`);
    }
    return;
  }
  const attached = files.filter((f) => f.meta).map((f) => f.meta);
  outbox.enqueue({ thread, text, reply_to: mode?.kind === 'reply' ? mode.m.id : null, files: attached });
  input.value = '';
  drafts.delete(thread);
  clearFiles();
  setMode(null);
  lastTyping = 0;
  hooks.sent();
});

/* ---------- attachments ---------- */

$('attach').addEventListener('click', () => fileInput.click());
fileInput.addEventListener('change', () => {
  addFiles(fileInput.files);
  fileInput.value = '';
});
input.addEventListener('paste', (e) => {
  const pasted = e.clipboardData?.files;
  if (pasted?.length) {
    e.preventDefault();
    addFiles(pasted);
  }
});

export function addFiles(list) {
  if (thread == null || input.disabled) return;
  for (const file of list) {
    if (files.length >= 10) {
      hooks.notice('At most 10 files per message.');
      break;
    }
    const entry = {
      file,
      preview: /^image\//.test(file.type) ? URL.createObjectURL(file) : null,
      progress: 0,
      abort: new AbortController(),
    };
    files.push(entry);
    upload(file, (p) => {
      entry.progress = p;
      renderTray();
    }, entry.abort.signal).then((meta) => {
      entry.meta = meta;
    }, (err) => {
      if (err.name === 'AbortError') return;
      entry.error = err.status === 413 ? 'Too large'
        : err.status === 404 || err.status === 405 ? 'Uploads not available' : err.message;
    }).finally(() => {
      renderTray();
      update();
    });
  }
  renderTray();
  update();
  input.focus();
}

function removeFile(entry) {
  entry.abort.abort();
  if (entry.preview) URL.revokeObjectURL(entry.preview);
  files = files.filter((f) => f !== entry);
  renderTray();
  update();
}

function clearFiles() {
  for (const f of files) {
    if (!f.meta) f.abort.abort();
    if (f.preview) URL.revokeObjectURL(f.preview);
  }
  files = [];
  renderTray();
}

function renderTray() {
  tray.hidden = !files.length;
  tray.replaceChildren(...files.map((f) => h('li', { class: `attachment${f.error ? ' error' : ''}` },
    f.preview ? h('img', { src: f.preview, alt: '' }) : icon('file'),
    h('span', null,
      h('span', { class: 'file-name' }, f.file.name),
      f.error ? h('span', { class: 'file-size' }, f.error)
        : f.meta ? h('span', { class: 'file-size' }, size(f.file.size))
          : h('progress', { max: '1', value: String(f.progress), 'aria-label': `Uploading ${f.file.name}` })),
    h('button', {
      type: 'button',
      class: 'icon-btn small',
      'aria-label': `Remove ${f.file.name}`,
      title: 'Remove',
      onclick: () => removeFile(f),
    }, icon('close')))));
}

/* ---------- drag and drop onto the conversation ---------- */

const convEl = $('conv');
const drop = $('drop');
let dragDepth = 0;
const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
convEl.addEventListener('dragenter', (e) => {
  if (!hasFiles(e)) return;
  dragDepth++;
  drop.hidden = false;
});
convEl.addEventListener('dragleave', () => {
  if (--dragDepth <= 0) {
    dragDepth = 0;
    drop.hidden = true;
  }
});
convEl.addEventListener('dragover', (e) => hasFiles(e) && e.preventDefault());
convEl.addEventListener('drop', (e) => {
  dragDepth = 0;
  drop.hidden = true;
  if (!e.dataTransfer?.files.length) return;
  e.preventDefault();
  addFiles(e.dataTransfer.files);
});

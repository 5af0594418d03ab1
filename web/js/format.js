// Formatting for people: times and days in the reader's locale, "last seen", file sizes, and
// message text with its http(s) links made clickable (built as nodes, never as HTML).

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
const weekdayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short' });
const dateFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });
const yearFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short', year: 'numeric' });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', day: 'numeric', month: 'long' });
const dayYearFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'long', year: 'numeric' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });

const DAY = 86400000;

function startOfDay(d) {
  return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
}

/** Days between the date and today (0 = today, 1 = yesterday). */
function daysAgo(d) {
  return Math.round((startOfDay(new Date()) - startOfDay(d)) / DAY);
}

export const time = (iso) => timeFmt.format(new Date(iso));
export const fullDate = (iso) => fullFmt.format(new Date(iso));
export const dayKey = (iso) => startOfDay(new Date(iso));

/** For the conversation list: a time today, a weekday this week, a date before. */
export function shortWhen(iso) {
  const d = new Date(iso);
  const ago = daysAgo(d);
  if (ago <= 0) return timeFmt.format(d);
  if (ago < 7) return weekdayFmt.format(d);
  return (d.getFullYear() === new Date().getFullYear() ? dateFmt : yearFmt).format(d);
}

/** For day separators. */
export function dayLabel(iso) {
  const d = new Date(iso);
  const ago = daysAgo(d);
  if (ago === 0) return 'Today';
  if (ago === 1) return 'Yesterday';
  return (d.getFullYear() === new Date().getFullYear() ? dayFmt : dayYearFmt).format(d);
}

export function lastSeen(p) {
  if (!p) return '';
  if (p.online) return 'online';
  if (!p.last_seen) return 'offline';
  const d = new Date(p.last_seen);
  const mins = Math.floor((Date.now() - d) / 60000);
  if (mins < 1) return 'last seen just now';
  if (mins < 60) return `last seen ${mins} min ago`;
  const ago = daysAgo(d);
  if (ago === 0) return `last seen today at ${timeFmt.format(d)}`;
  if (ago === 1) return `last seen yesterday at ${timeFmt.format(d)}`;
  return `last seen ${shortWhen(p.last_seen)}`;
}

export function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(bytes < 10240 ? 1 : 0)} KB`;
  return `${(bytes / 1048576).toFixed(1)} MB`;
}

const URL_RE = /\bhttps?:\/\/[^\s<>"]+/gi;

/** Text with its http(s) URLs as links (rel=noopener noreferrer), as a fragment of nodes. */
export function linkify(text) {
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    let url = match[0].replace(/[.,;:!?'")\]]+$/, '');
    let href;
    try {
      href = new URL(url);
    } catch {
      continue;
    }
    if (href.protocol !== 'http:' && href.protocol !== 'https:') continue;
    frag.append(text.slice(last, match.index));
    const a = document.createElement('a');
    a.href = href.href;
    a.textContent = url;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    frag.append(a);
    last = match.index + url.length;
  }
  frag.append(text.slice(last));
  return frag;
}

/** One to three emoji and nothing else: shown larger. */
export function isJumbo(text) {
  return text.length <= 24 && /^(\p{Extended_Pictographic}|\p{Emoji_Modifier}|\u200d|\ufe0f|\s)+$/u.test(text)
    && [...text.matchAll(/\p{Extended_Pictographic}/gu)].length <= 3;
}

/** A preview line for a message: its text, or what it carries. */
export function preview(m) {
  if (!m) return '';
  if (m.text && m.text.trim()) return m.text.replace(/\s+/g, ' ').slice(0, 140);
  const files = m.files || [];
  if (files.length === 1) return (files[0].content_type || '').startsWith('image/') ? 'Photo' : files[0].name;
  if (files.length) return `${files.length} files`;
  return '';
}

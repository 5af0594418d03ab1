// Favicon and title: the total unread count shown in the page title and drawn as a badge on the
// icon (a canvas turned into a data: URL).

const link = document.querySelector('link[rel=icon]');
const plain = link.href;
let shown = -1;

function draw(count) {
  const c = document.createElement('canvas');
  c.width = c.height = 64;
  const g = c.getContext('2d');
  g.fillStyle = '#2563eb';
  g.beginPath();
  g.roundRect(0, 0, 64, 64, 14);
  g.fill();
  g.fillStyle = '#fff';
  g.beginPath();
  g.moveTo(14, 18);
  g.lineTo(50, 18);
  g.lineTo(50, 40);
  g.lineTo(30, 40);
  g.lineTo(20, 48);
  g.lineTo(20, 40);
  g.lineTo(14, 40);
  g.closePath();
  g.fill();
  const text = count > 99 ? '99+' : String(count);
  g.font = `bold ${text.length > 2 ? 22 : 28}px system-ui, sans-serif`;
  const w = Math.max(34, g.measureText(text).width + 14);
  g.fillStyle = '#dc2626';
  g.beginPath();
  g.roundRect(64 - w, 0, w, 34, 17);
  g.fill();
  g.fillStyle = '#fff';
  g.textAlign = 'center';
  g.textBaseline = 'middle';
  g.fillText(text, 64 - w / 2, 18);
  return c.toDataURL('image/png');
}

export function showUnread(count, name = 'Simple Chat') {
  document.title = count ? `(${count}) ${name}` : name;
  if (count === shown) return;
  shown = count;
  link.type = count ? 'image/png' : 'image/svg+xml';
  link.href = count ? draw(count) : plain;
}

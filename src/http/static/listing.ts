// A small HTML index of a mounted directory (the MX/1 uploads under /files/). Names are
// HTML-escaped for the text and percent-encoded for the link; dotfiles (in-progress uploads)
// never appear.
import { readdir } from 'node:fs/promises';
import { encodeSegment } from './paths.js';

const MAX_LISTED = 1000;

export async function renderListing(dir: string, urlPath: string): Promise<Buffer> {
  const names: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    if (entry.isFile()) names.push(entry.name);
    else if (entry.isDirectory()) names.push(entry.name + '/');
  }
  names.sort();
  const shown = names.slice(0, MAX_LISTED);
  const items = shown
    .map((n) => {
      const dirSlash = n.endsWith('/');
      const bare = dirSlash ? n.slice(0, -1) : n;
      return `<li><a href="${escapeHtml(encodeSegment(bare))}${dirSlash ? '/' : ''}">${escapeHtml(n)}</a></li>`;
    })
    .join('\n');
  const more = names.length > shown.length ? `<p>and ${names.length - shown.length} more</p>\n` : '';
  const title = escapeHtml(`Index of ${urlPath}`);
  const html =
    `<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n` +
    `<title>${title}</title>\n<link rel="stylesheet" href="/style.css">\n</head>\n<body>\n<main>\n<h1>${title}</h1>\n` +
    (shown.length === 0 ? '<p>No files yet. Upload one with <code>muxd put FILE</code>.</p>\n' : `<ul class="listing">\n${items}\n</ul>\n`) +
    more +
    `<p><a href="/">Home</a></p>\n</main>\n</body>\n</html>\n`;
  return Buffer.from(html, 'utf8');
}

export function escapeHtml(s: string): string {
  let out = '';
  for (const ch of s) {
    switch (ch) {
      case '&': out += '&amp;'; break;
      case '<': out += '&lt;'; break;
      case '>': out += '&gt;'; break;
      case '"': out += '&quot;'; break;
      case "'": out += '&#39;'; break;
      default: out += ch;
    }
  }
  return out;
}

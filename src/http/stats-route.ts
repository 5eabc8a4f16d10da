// A live view of the running server for the site's own pages (and for curl): GET <path> answers
// the metrics snapshot as JSON, never cached. Every other request goes to the wrapped handler.
// The snapshot comes from src/loop's Metrics, which both faces fill in: HTTP never learns MX/1.
import { errorReply, SERVER_HEADER, statusLine } from './status.js';
import type { Answer, Handler, Reply, RequestHead } from './types.js';
import { absoluteFormPathStart } from './authority.js';

const JSON_HEAD = statusLine(200) + SERVER_HEADER + 'Content-Type: application/json\r\nCache-Control: no-store\r\n';
const ALLOW_LINE = 'Allow: GET, HEAD, OPTIONS\r\n';
const OPTIONS_REPLY: Reply = { status: 204, head: statusLine(204) + SERVER_HEADER + ALLOW_LINE, body: [], bodyLength: 0 };

/** "http://host/p?q" -> "/p?q", "http://host?q" -> "/?q"; anything else is left as it is. */
function originForm(target: string): string {
  const at = absoluteFormPathStart(target);
  if (at === -1) return target;
  return target.charCodeAt(at) === 0x2f /* / */ ? target.slice(at) : '/' + target.slice(at);
}

export function withStatsRoute(inner: Handler, path: string, snapshot: () => unknown): Handler {
  return {
    handle(head: RequestHead): Answer | Promise<Answer> {
      // Absolute-form ("http://host/p", RFC 9112 §3.2.2) names the same resource as "/p".
      const target = head.target.charCodeAt(0) === 0x2f /* / */ ? head.target : originForm(head.target);
      // One prefix test on the hot path; the exact match (query ignored) only for candidates.
      if (!target.startsWith(path) || (target.length > path.length && target.charCodeAt(path.length) !== 0x3f /* ? */)) {
        return inner.handle(head);
      }
      if (head.method === 'OPTIONS') return OPTIONS_REPLY;
      if (head.method !== 'GET' && head.method !== 'HEAD') return errorReply(405, { extraHeaders: ALLOW_LINE });
      const body = Buffer.from(JSON.stringify(snapshot()), 'utf8');
      return {
        status: 200,
        head: JSON_HEAD + `Content-Length: ${body.length}\r\n`,
        body: head.method === 'HEAD' ? [] : [body],
        bodyLength: body.length,
      };
    },
  };
}

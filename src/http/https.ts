// What HTTP says about HTTPS, as handler wrappers and bytes (no socket, no TLS here):
// Strict-Transport-Security on HTTPS answers (RFC 6797 §6.1), the plain port's 308 to the HTTPS
// port (RFC 9110 §15.4.9: method and body kept), and the plaintext 400 for an HTTP request sent
// to the HTTPS port (what nginx answers there, "The plain HTTP request was sent to HTTPS port").
import { absoluteFormPathStart } from './authority.js';
import { errorReply, SERVER_HEADER, statusLine } from './status.js';
import type { Answer, Handler, Reply, RequestHead } from './types.js';
import { isUpgrade } from './types.js';

/** Adds `Strict-Transport-Security: max-age=N` to every reply of `inner`. */
export function withHsts(inner: Handler, maxAgeSeconds: number): Handler {
  const line = `Strict-Transport-Security: max-age=${maxAgeSeconds}\r\n`;
  // Cached replies are reused objects with pre-encoded heads: their HSTS twin is made once.
  const twins = new WeakMap<Reply, Reply>();
  const add = (answer: Answer): Answer => {
    if (isUpgrade(answer)) return answer;
    if (answer.headBytes !== undefined) {
      let twin = twins.get(answer);
      if (twin === undefined) {
        const head = answer.head + line;
        twin = { ...answer, head, headBytes: Buffer.from(head, 'latin1') };
        twins.set(answer, twin);
      }
      // A cached reply's body is shared and unowned (Buffers only): the twin may share it.
      return twin;
    }
    // A copy: some replies are shared constants (the stats route's OPTIONS answer).
    return { ...answer, head: answer.head + line };
  };
  return {
    handle(head: RequestHead): Answer | Promise<Answer> {
      const answer = inner.handle(head);
      return answer instanceof Promise ? answer.then(add) : add(answer);
    },
  };
}

export interface RedirectOptions {
  /** The HTTPS port (read per request: it may have been chosen by the kernel). */
  httpsPort: () => number;
  /** The stats route's path, answered in clear (null = none). */
  statsPath: string | null;
}

/** Paths the plain port keeps serving: ACME HTTP-01 challenges (RFC 8555 §8.3) must stay plain. */
const ACME_PREFIX = '/.well-known/acme-challenge/';

/** A host name or address fit for a Location: letters, digits, dots, hyphens, or [IPv6]. */
const HOST_RE = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

function hostOnly(host: string): string | null {
  if (!HOST_RE.test(host)) return null;
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  const colon = host.indexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}

/** "/p?q" from an origin-form or absolute-form target; null for anything else ("*"). */
function pathOf(target: string): string | null {
  if (target.charCodeAt(0) === 0x2f /* / */) return target;
  const at = absoluteFormPathStart(target);
  if (at === -1) return null;
  return target.charCodeAt(at) === 0x2f ? target.slice(at) : '/' + target.slice(at);
}

/**
 * --https-redirect: GET and HEAD get 308 to the same path on the HTTPS port, other methods 400;
 * the stats route and ACME challenges are answered by `inner` as before.
 */
export function withHttpsRedirect(inner: Handler, opts: RedirectOptions): Handler {
  return {
    handle(head: RequestHead): Answer | Promise<Answer> {
      const path = pathOf(head.target);
      if (path !== null) {
        const bare = path.split('?', 1)[0]!;
        if (bare.startsWith(ACME_PREFIX) || (opts.statsPath !== null && bare === opts.statsPath)) return inner.handle(head);
      }
      if (head.method !== 'GET' && head.method !== 'HEAD') return errorReply(400, { close: true });
      const host = head.host === null ? null : hostOnly(head.host);
      if (path === null || host === null) return errorReply(400, { close: true });
      const port = opts.httpsPort();
      const location = `https://${host}${port === 443 ? '' : `:${port}`}${path}`;
      // Location is sent as the client wrote the path (already limited to what our parser accepts).
      const body = Buffer.from(`308 Permanent Redirect: ${location}\n`, 'latin1');
      return {
        status: 308,
        head: statusLine(308) + SERVER_HEADER + `Location: ${location}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\n`,
        body: head.method === 'HEAD' ? [] : [body],
        bodyLength: body.length,
      };
    },
  };
}

/** The Host field in the first bytes of a plaintext request, if it is a plain host name. */
function hostFromFirstBytes(first: Buffer): string | null {
  const text = first.toString('latin1', 0, Math.min(first.length, 8192));
  const m = /\r\nhost:[ \t]*([^\r\n]*)/i.exec(text);
  return m === null ? null : hostOnly(m[1]!.trim());
}

/**
 * The whole plaintext answer to an HTTP request on the HTTPS port: 400 naming the https:// URL
 * (host from the request's Host field when it is a plain name, else `fallbackHost`), then close.
 */
export function plainHttpOnHttpsPort(first: Buffer, fallbackHost: string, port: number, date: string): Buffer {
  const host = hostFromFirstBytes(first) ?? fallbackHost;
  const url = `https://${host}${port === 443 ? '' : `:${port}`}/`;
  const body = `400 Bad Request: this port speaks HTTPS; use ${url}\n`;
  return Buffer.from(
    statusLine(400) + SERVER_HEADER + `Date: ${date}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n` + body,
    'latin1',
  );
}

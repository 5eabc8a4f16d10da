// Opening the connection a client runs over: TCP, a Unix socket, TLS (node:tls), or a WebSocket
// (ws:// or wss://, over TCP or TLS). Each ends in a Transport, so the client above is the same.
import net from 'node:net';
import tls from 'node:tls';
import { DEFAULT_MAX_PAYLOAD } from '../wire/protocol.js';
import { LocalCode, MuxError } from './errors.js';
import { StreamTransport, type Transport } from './transport.js';
import { pooledRandom, upgrade, WsTransport } from './ws.js';

export interface TlsOptions {
  /** Trusted CA certificates (PEM) instead of Node's bundled roots, e.g. a private CA. */
  ca?: string | Buffer | (string | Buffer)[];
  /** The name the certificate must be valid for (and sent as SNI); default: the host (a wss:// url's host). */
  servername?: string;
  /** Default true: an unverifiable certificate fails the connection. false accepts any: for tests only. */
  rejectUnauthorized?: boolean;
}

export interface DialOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 9000. */
  port?: number;
  /** A Unix socket path, used instead of host/port. */
  path?: string;
  /**
   * `ws://HOST:PORT/PATH` or `wss://…`: MX/1 over WebSocket, one frame per binary message
   * (muxd's path is /.well-known/muxd/mx on its HTTP port). host, port and path are then unused.
   */
  url?: string;
  /**
   * MX/1 over TLS: true (Node's trusted roots), or options. Certificates are verified unless
   * rejectUnauthorized is false. With a wss:// url these options apply to its TLS.
   */
  tls?: boolean | TlsOptions;
  /** Sent as the WebSocket Origin header (browsers always send one; muxd allows none). */
  origin?: string;
  /** Connecting, TLS and the WebSocket handshake together must finish within this. Default 10000. */
  timeoutMs?: number;
  /** Largest frame payload accepted from the server. Default 1 MiB. */
  maxFrame?: number;
}

/** ALPN for MX/1 straight over TLS (issue 16: the binary TLS listener selects it when offered). */
export const MX_ALPN = 'mx1';

/** A parsed ws:// or wss:// url; throws a LOCAL MuxError naming what is wrong. */
export function parseWsUrl(url: string): { secure: boolean; hostname: string; port: number; host: string; path: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new MuxError(LocalCode.LOCAL, `invalid url ${JSON.stringify(url)}: expected ws://HOST:PORT/PATH or wss://…`);
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new MuxError(LocalCode.LOCAL, `url ${JSON.stringify(url)}: the scheme must be ws:// or wss://`);
  if (u.username !== '' || u.password !== '') throw new MuxError(LocalCode.LOCAL, `url ${JSON.stringify(url)}: credentials in the url are not supported`);
  if (u.hash !== '') throw new MuxError(LocalCode.LOCAL, `url ${JSON.stringify(url)}: a WebSocket url has no #fragment (RFC 6455 §3)`);
  const secure = u.protocol === 'wss:';
  // URL keeps IPv6 literals bracketed; sockets want them bare.
  const hostname = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return { secure, hostname, port: u.port === '' ? (secure ? 443 : 80) : Number(u.port), host: u.host, path: u.pathname + u.search };
}

/** Opens the connection `opts` describes; rejects with a MuxError (TIMEOUT, TLS, PROTOCOL, LOCAL) or the socket's error (ECONNREFUSED, …). */
export function dial(opts: DialOptions): Promise<Transport> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const maxFrame = opts.maxFrame ?? DEFAULT_MAX_PAYLOAD;
  let ws: ReturnType<typeof parseWsUrl> | null = null;
  if (opts.url !== undefined) {
    try {
      ws = parseWsUrl(opts.url);
    } catch (err) {
      return Promise.reject(err);
    }
    if (!ws.secure && opts.tls !== undefined && opts.tls !== false) {
      return Promise.reject(new MuxError(LocalCode.LOCAL, `tls options with ${opts.url}: use a wss:// url for WebSocket over TLS`));
    }
  }
  const useTls = ws !== null ? ws.secure : opts.tls !== undefined && opts.tls !== false;
  const host = ws?.hostname ?? opts.host ?? '127.0.0.1';
  const port = ws?.port ?? opts.port ?? 9000;
  const where = opts.url ?? opts.path ?? (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
  const t = typeof opts.tls === 'object' ? opts.tls : {};

  return new Promise<Transport>((resolve, reject) => {
    let socket: net.Socket;
    if (useTls) {
      // SNI must be a DNS name (RFC 6066 §3): an IP literal is checked against the certificate but not sent.
      const servername = t.servername ?? (net.isIP(host) === 0 ? host : undefined);
      socket = tls.connect({
        host,
        port,
        servername,
        ca: t.ca,
        rejectUnauthorized: t.rejectUnauthorized ?? true,
        // The binary TLS listener selects mx1; under a WebSocket the HTTP listener selects http/1.1.
        ALPNProtocols: ws !== null ? ['http/1.1'] : [MX_ALPN],
        // A servername given explicitly is what the certificate must name, even when connecting by IP.
        checkServerIdentity: (hostname, cert) => tls.checkServerIdentity(t.servername ?? hostname, cert),
      });
    } else if (opts.path !== undefined && ws === null) {
      socket = net.connect({ path: opts.path });
    } else {
      socket = net.connect({ host, port });
    }
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(() => {
      fail(new MuxError(LocalCode.TIMEOUT, `connecting to ${where} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    const onError = (err: Error): void => fail(useTls ? tlsError(err, where, t) : err);
    socket.once('error', onError);
    const connected = (): void => {
      if (ws === null) {
        settled = true;
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(new StreamTransport(socket, maxFrame, where));
        return;
      }
      const random = pooledRandom();
      upgrade(socket, { host: ws.host, path: ws.path, origin: opts.origin }, where, random).then(
        (rest) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          socket.off('error', onError);
          resolve(new WsTransport(socket, rest, where, { maxFrame, closeTimeoutMs: timeoutMs, random }));
        },
        (err: Error) => fail(err),
      );
    };
    socket.once(useTls ? 'secureConnect' : 'connect', connected);
  });
}

/** OpenSSL's certificate verification failures (X509_V_ERR_* names) as Node reports them. */
const VERIFY_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
]);

/**
 * A TLS failure as one clear MuxError (code LocalCode.TLS, the original as `cause`): an
 * unverifiable certificate, a certificate for another name, or a handshake that failed (a
 * plaintext port, no common protocol version). Other socket errors pass through as they are.
 */
export function tlsError(err: Error, where: string, t: TlsOptions): Error {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  let text: string;
  if (VERIFY_CODES.has(code)) {
    text = `the certificate of ${where} could not be verified (${code}: ${err.message}); ` +
      (t.ca === undefined ? 'if a private CA signed it, pass that CA (ca, CLI --ca FILE)' : 'it is not signed by the CA given');
  } else if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    text = `the certificate of ${where} is not valid for the name asked for (${err.message}); connect by a name it lists, or set servername (--servername NAME)`;
  } else if (code.startsWith('ERR_SSL_') || code === 'ECONNRESET' || code === 'EPROTO') {
    text = `TLS handshake with ${where} failed (${code}: ${err.message}); is it a TLS port?`;
  } else {
    return err;
  }
  const out = new MuxError(LocalCode.TLS, text);
  (out as Error).cause = err;
  return out;
}

// MX/1 over WebSocket, the client's side (issue 15 part 5): the opening handshake on a connected
// socket (plain or TLS), then one MX/1 frame per binary message each way. The codec is our own
// client side of src/ws (client-handshake, the receiver in role 'client', masking); this file only
// moves bytes and makes the close decisions a client must make (RFC 6455 §5.5, §7).
import { randomFillSync } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Frame } from '../wire/frame.js';
import { HEADER_SIZE } from '../wire/protocol.js';
import { checkServerHandshake, clientHandshake, type ClientHandshake } from '../ws/client-handshake.js';
import { CloseCode, Opcode } from '../ws/constants.js';
import { applyMask } from '../ws/mask.js';
import { checkMxMessage } from '../ws/mx.js';
import { WsReceiver } from '../ws/receiver.js';
import { ClientFrameEncoder, fitCloseReason, serverFrameHeader, type RandomSource } from '../ws/sender.js';
import { LocalCode, MuxError } from './errors.js';
import { SocketTransport, type TransportHandlers } from './transport.js';

/** The server's handshake response head may be at most this long (ours is ~200 bytes). */
export const MAX_RESPONSE_HEAD = 16 * 1024;

// ------------------------------------------------------------------ the response head, sans-IO

export interface ResponseHead {
  status: number;
  /** Names lower-cased, values trimmed, in order. */
  headers: [name: string, value: string][];
}

export type HeadResult =
  | { kind: 'more' }
  | { kind: 'head'; head: ResponseHead; rest: Buffer }
  | { kind: 'bad'; reason: string };

const STATUS_LINE = /^HTTP\/1\.[01] ([1-9]\d\d)(?: [\t\x20-\x7e\x80-\xff]*)?$/;
const FIELD_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Collects the server's response head (RFC 9112 §2, §4, §5) from the bytes as they arrive. The
 * bytes after the blank line are the first WebSocket bytes (a server may send a frame at once).
 * At most `max` bytes of head; bare LF line ends are accepted, obsolete line folding is not.
 */
export class ResponseHeadReader {
  private readonly max: number;
  private buf: Buffer = Buffer.alloc(0);
  private done = false;

  constructor(max = MAX_RESPONSE_HEAD) {
    this.max = max;
  }

  push(chunk: Buffer): HeadResult {
    if (this.done) return { kind: 'bad', reason: 'the head was already read' };
    // Search from a little before the new bytes: the blank line may straddle chunks.
    const from = Math.max(0, this.buf.length - 3);
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const end = findHeadEnd(this.buf, from);
    if (end === null) {
      if (this.buf.length > this.max) return this.bad(`response head longer than ${this.max} bytes`);
      return { kind: 'more' };
    }
    if (end.headLength > this.max) return this.bad(`response head longer than ${this.max} bytes`);
    this.done = true;
    const parsed = parseResponseHead(this.buf.subarray(0, end.headLength).toString('latin1'));
    if (typeof parsed === 'string') return { kind: 'bad', reason: parsed };
    return { kind: 'head', head: parsed, rest: this.buf.subarray(end.headLength + end.blank) };
  }

  private bad(reason: string): HeadResult {
    this.done = true;
    return { kind: 'bad', reason };
  }
}

/** Where the head ends: its length without the final blank line, and that blank line's size. */
function findHeadEnd(buf: Buffer, from: number): { headLength: number; blank: number } | null {
  for (let i = from; i < buf.length; i++) {
    if (buf[i] !== 0x0a) continue;
    // LF LF or LF CR LF: the line before was the last one.
    if (buf[i + 1] === 0x0a) return { headLength: i + 1, blank: 1 };
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return { headLength: i + 1, blank: 2 };
  }
  return null;
}

/** The status and fields of a head (status line and field lines, each ending in LF or CRLF); a string says what is wrong. */
export function parseResponseHead(text: string): ResponseHead | string {
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  if (lines[lines.length - 1] === '') lines.pop();
  const first = lines[0] ?? '';
  const m = STATUS_LINE.exec(first);
  if (m === null) return `not an HTTP/1.1 response: ${JSON.stringify(first.slice(0, 60))}`;
  const headers: [string, string][] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (line.startsWith(' ') || line.startsWith('\t')) return 'obsolete line folding in the response head';
    const name = colon > 0 ? line.slice(0, colon) : '';
    const value = line.slice(colon + 1).trim();
    if (!FIELD_NAME.test(name) || !FIELD_VALUE.test(value)) return `malformed header line ${JSON.stringify(line.slice(0, 60))}`;
    headers.push([name.toLowerCase(), value]);
  }
  return { status: Number(m[1]), headers };
}

// ------------------------------------------------------------------ randomness

/**
 * Mask keys and handshake nonces from a pooled randomFillSync: one call per 1024 frames instead
 * of one per frame. Mask keys must be unpredictable to the application, not secret (§10.3).
 */
export function pooledRandom(): RandomSource {
  const pool = Buffer.allocUnsafe(4096);
  let at = pool.length;
  return (bytes) => {
    if (bytes.length > pool.length) {
      randomFillSync(bytes);
      return;
    }
    if (at + bytes.length > pool.length) {
      randomFillSync(pool);
      at = 0;
    }
    bytes.set(pool.subarray(at, at + bytes.length));
    at += bytes.length;
  };
}

// ------------------------------------------------------------------ the opening handshake

export interface WsTarget {
  /** Host header value, port included unless the default one. */
  host: string;
  /** Path and query. */
  path: string;
  origin?: string;
}

/**
 * Writes the handshake request on a connected socket and resolves with the bytes that followed
 * the server's 101 head. Rejects with a PROTOCOL MuxError for a refusal or a bad 101; the
 * caller's timer bounds the wait, and the caller destroys the socket on rejection.
 */
export function upgrade(socket: Socket, target: WsTarget, where: string, random: RandomSource): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    let sent: ClientHandshake;
    try {
      sent = clientHandshake({ host: target.host, path: target.path, origin: target.origin, random });
    } catch (err) {
      reject(new MuxError(LocalCode.LOCAL, `cannot open ${where}: ${(err as Error).message}`));
      return;
    }
    const reader = new ResponseHeadReader();
    const finish = (): void => {
      socket.pause();
      socket.off('data', onData);
      socket.off('end', onEnd);
    };
    const onData = (chunk: Buffer): void => {
      const r = reader.push(chunk);
      if (r.kind === 'more') return;
      finish();
      if (r.kind === 'bad') {
        reject(new MuxError(LocalCode.PROTOCOL, `WebSocket handshake with ${where}: ${r.reason}`));
        return;
      }
      const verdict = checkServerHandshake(r.head.status, r.head.headers, sent);
      if (verdict.ok) {
        resolve(r.rest);
        return;
      }
      // A refusal's short body says why (403 origin, 426 version): show its first line.
      const said = r.head.status !== 101 ? firstLine(r.rest) : '';
      const hint = r.head.status === 200 || r.head.status === 404 ? ` (is ${target.path} the server's WebSocket path?)` : '';
      reject(new MuxError(LocalCode.PROTOCOL, `WebSocket handshake with ${where}: ${verdict.reason}${said ? `: ${said}` : ''}${hint}`));
    };
    const onEnd = (): void => {
      finish();
      reject(new MuxError(LocalCode.CLOSED, `WebSocket handshake with ${where}: the server closed the connection before answering`));
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.write(sent.head);
  });
}

function firstLine(body: Buffer): string {
  const text = body.subarray(0, 200).toString('utf8');
  const line = text.split(/\r?\n/, 1)[0] ?? '';
  return /^[\x20-\x7e]*$/.test(line) ? line.trim() : '';
}

// ------------------------------------------------------------------ the transport

const CLOSE_NAMES: Record<number, string> = {
  1000: 'normal closure',
  1001: 'going away',
  1002: 'protocol error',
  1003: 'unsupported data',
  1007: 'invalid payload data',
  1008: 'policy violation',
  1009: 'message too big',
  1010: 'mandatory extension',
  1011: 'internal error',
  1012: 'service restart',
  1013: 'try again later',
  1014: 'bad gateway',
};

/** "1009 (message too big): frame too large". */
export function describeClose(code: number | null, reason: string): string {
  if (code === null) return 'no close code';
  const name = CLOSE_NAMES[code];
  return `${code}${name ? ` (${name})` : ''}${reason ? `: ${reason}` : ''}`;
}

/**
 * How a WebSocket ended, on the client's failure when the server sent a close frame:
 * `closeCode` null for a close frame without a code (what browsers report as 1005).
 */
export class WsCloseError extends MuxError {
  readonly closeCode: number | null;
  readonly closeReason: string;
  constructor(closeCode: number | null, closeReason: string, message: string) {
    super(LocalCode.CLOSED, message);
    this.closeCode = closeCode;
    this.closeReason = closeReason;
  }
}

export interface WsTransportOptions {
  /** The largest MX/1 payload accepted: a message may carry this plus the 12-byte header. */
  maxFrame: number;
  /** After the close frames crossed, how long the server has to end the TCP connection (RFC 6455 §7.1.1). */
  closeTimeoutMs: number;
  random: RandomSource;
}

/**
 * MX/1 over an upgraded socket: every frame sent is one masked binary message, every binary
 * message received must be exactly one MX/1 frame. Pings are answered; a close frame from the
 * server is echoed, and its code decides whether the end is an error (anything but 1000, 1001).
 */
export class WsTransport extends SocketTransport {
  private readonly receiver: WsReceiver;
  private readonly encoder: ClientFrameEncoder;
  private readonly random: RandomSource;
  private readonly maxFrame: number;
  private readonly closeTimeoutMs: number;
  private readonly key = new Uint8Array(4);
  private readonly rotated = new Uint8Array(4);
  private pending: Buffer | null;
  /** 'open'; 'closing': we sent a close and await the server's; 'closed': no frame goes out any more. */
  private state: 'open' | 'closing' | 'closed' = 'open';
  private sawClose = false;
  private hardFailure = false;

  constructor(socket: Socket, rest: Buffer, where: string, opts: WsTransportOptions) {
    super(socket, where);
    this.pending = rest.length > 0 ? rest : null;
    this.maxFrame = opts.maxFrame;
    this.closeTimeoutMs = opts.closeTimeoutMs;
    this.random = opts.random;
    this.encoder = new ClientFrameEncoder(opts.random);
    this.receiver = new WsReceiver({ role: 'client', maxMessage: opts.maxFrame + HEADER_SIZE });
  }

  start(handlers: TransportHandlers): void {
    this.handlers = handlers;
    const socket = this.socket;
    socket.on('data', (chunk: Buffer) => {
      this.receiver.push(chunk);
      this.pump();
    });
    socket.on('end', () => {
      // The server ended TCP. After a close exchange that is the normal order (§7.1.1);
      // without one it is what browsers report as 1006.
      if (!this.sawClose && this.state === 'open') {
        this.state = 'closed';
        handlers.ended?.(new WsCloseError(null, '', `${this.where}: the server ended the connection without a WebSocket close frame (1006)`));
      }
      this.state = 'closed';
    });
    socket.on('error', (err: Error) => {
      this.hardFailure = true;
      handlers.error(err, new MuxError(LocalCode.CLOSED, `connection error: ${err.message}`));
    });
    socket.on('drain', () => handlers.drain());
    socket.on('close', (hadError: boolean) => handlers.close(hadError || this.hardFailure));
    // The bytes that came right behind the 101 head are the first WebSocket bytes.
    if (this.pending !== null) {
      this.receiver.push(this.pending);
      this.pending = null;
    }
    this.pump();
    if (!this.paused) socket.resume();
  }

  get destroyed(): boolean {
    return this.state !== 'open' || this.socket.destroyed || this.socket.writableEnded;
  }

  /**
   * One binary message carrying the frame's parts: the WebSocket header, the mask key, then the
   * parts masked on their way into the one output buffer (masking copies anyway, so nothing is
   * copied twice). The header comes from the unmasked encoder with the MASK bit set (§5.2).
   */
  send(parts: readonly Buffer[]): boolean {
    let n = 0;
    for (const p of parts) n += p.length;
    const head = serverFrameHeader(Opcode.BINARY, n);
    const at0 = head.length + 4;
    const out = Buffer.allocUnsafe(at0 + n);
    head.copy(out, 0);
    out[1]! |= 0x80;
    const key = this.key;
    this.random(key);
    out.set(key, head.length);
    let at = at0;
    for (const p of parts) {
      // Payload byte i takes key[i & 3]: a part starting at offset k needs the key rotated by k.
      const shift = (at - at0) & 3;
      let k = key;
      if (shift !== 0) {
        k = this.rotated;
        for (let j = 0; j < 4; j++) k[j] = key[(shift + j) & 3]!;
      }
      applyMask(p, k, out, at);
      at += p.length;
    }
    return this.socket.write(out);
  }

  /** Starts the closing handshake (1000); the server's close frame, then its FIN, end it. */
  end(): void {
    if (this.state === 'open') {
      this.state = 'closing';
      this.socket.write(this.encoder.close(CloseCode.NORMAL));
      this.closeTimer();
    }
    // The server's close frame must be read, even while a download sink is full.
    this.paused = false;
    this.pump();
    if (!this.socket.destroyed) this.socket.resume();
  }

  destroy(): void {
    this.state = 'closed';
    this.socket.destroy();
  }

  protected pump(): void {
    const h = this.handlers;
    if (h === null) return;
    while (this.more()) {
      const e = this.receiver.next();
      if (e === null) return;
      switch (e.kind) {
        case 'message': {
          const m = checkMxMessage(e.data, this.maxFrame);
          if (m.ok) {
            const frame: Frame = { type: m.type, id: m.id, payload: m.payload };
            h.frame(frame);
          } else {
            this.fail(CloseCode.PROTOCOL_ERROR, m.message, new MuxError(m.code, `bad message from server: ${m.message}`));
          }
          break;
        }
        case 'ping':
          // Answered until the server's close arrives (a close of ours does not stop pongs: §5.5.2).
          if (!this.sawClose && !this.socket.writableEnded) this.socket.write(this.encoder.pong(e.payload));
          break;
        case 'pong':
          break; // unsolicited pongs are allowed (§5.5.3)
        case 'close':
          this.onServerClose(e.code, e.reason);
          break;
        case 'fail':
          this.fail(e.code, e.reason, new MuxError(LocalCode.PROTOCOL, `bad WebSocket frame from server: ${e.reason} (closed with ${e.code})`));
          break;
      }
    }
  }

  private onServerClose(code: number | null, reason: string): void {
    const h = this.handlers!;
    this.sawClose = true;
    const weStarted = this.state === 'closing';
    if (this.state === 'open') {
      // Echo the code (§5.5.1); an empty close is echoed empty.
      this.socket.write(code === null ? this.encoder.close() : this.encoder.close(code));
    }
    this.state = 'closed';
    // The server closes TCP first (§7.1.1); our FIN goes now, and a server that never ends is cut.
    this.socket.end();
    this.closeTimer();
    if (weStarted) return;
    const failure = new WsCloseError(code, reason, `${this.where} closed the WebSocket with ${describeClose(code, reason)}`);
    if (code === null || code === CloseCode.NORMAL || code === CloseCode.GOING_AWAY) h.ended?.(failure);
    else {
      this.hardFailure = true;
      h.error(failure, failure);
    }
  }

  private fail(code: number, reason: string, failure: MuxError): void {
    const h = this.handlers!;
    if (this.state !== 'closed' && !this.socket.writableEnded) this.socket.write(this.encoder.close(code, fitCloseReason(reason)));
    this.state = 'closed';
    this.hardFailure = true;
    this.socket.end();
    this.closeTimer();
    h.error(failure, failure);
  }

  private closeTimer(): void {
    const t = setTimeout(() => this.socket.destroy(), this.closeTimeoutMs);
    t.unref();
    this.socket.once('close', () => clearTimeout(t));
  }
}

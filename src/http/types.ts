// The contract between the HTTP parsers (ours and the llhttp reference), the connection
// that drives them, and the handler that answers. None of these types touches a socket.
import { CodedError } from '../loop/coded-error.js';
import type { Connection } from '../loop/listener.js';
import type { OpenFile } from '../loop/open-file.js';
import type { BytePipe } from '../loop/pipe.js';

/** A parsed request head. Strings are latin1 views of the bytes as sent. */
export interface RequestHead {
  /** The method token as sent, e.g. "GET" (RFC 9110 §9: case-sensitive). */
  method: string;
  /** The request-target as sent: origin-form "/a?b", absolute-form "http://h/a", or "*". */
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1 (any other version is rejected with 505). */
  versionMinor: 0 | 1;
  /** Flat [name0, value0, name1, value1, ...]: names lower-cased, values without surrounding OWS. */
  headers: string[];
  /** The Host field value, or null when absent (allowed only for HTTP/1.0). */
  host: string | null;
  /** Declared Content-Length, or -1 when absent. */
  contentLength: number;
  /** Transfer-Encoding ends in chunked (RFC 9112 §6.3). */
  chunked: boolean;
  /** Persistence per RFC 9112 §9.3: 1.1 unless "close"; 1.0 only with "keep-alive". */
  keepAlive: boolean;
}

/** An HTTP-level rejection: `code` is the status to answer with (h11's error_status_hint). */
export class HttpError extends CodedError<number> {
  get status(): number {
    return this.code;
  }
}

export interface ParserLimits {
  /** Longest request line in bytes, CRLF excluded; longer -> 414. */
  maxRequestLine: number;
  /** Longest head (request line + fields + CRLFs) in bytes; longer -> 431. */
  maxHeadBytes: number;
  /** Most header fields; more -> 431. */
  maxHeaders: number;
  /** Largest request body (declared or decoded); larger -> 413. */
  maxBodyBytes: number;
}

export const DEFAULT_PARSER_LIMITS: ParserLimits = {
  maxRequestLine: 8 * 1024,
  maxHeadBytes: 16 * 1024,
  maxHeaders: 100,
  maxBodyBytes: 1024 * 1024,
};

export interface ParserCallbacks {
  /** A complete, validated head. The object is the callee's to keep. */
  onHead(head: RequestHead): void;
  /** Decoded body bytes; a view that is valid only during the call. */
  onBody(chunk: Buffer): void;
  /** The message (head and body) is complete; the next byte starts a new request. */
  onComplete(): void;
}

export interface RequestParser {
  /**
   * Parses as much of `chunk` as it can, calling back as it goes, and returns the bytes it
   * consumed: chunk.length normally (a partial head or body is kept inside the parser and is
   * not an error), fewer only when pause() was called from a callback, in which case the
   * rest is the caller's to feed again after resume(). Returns -1 on a protocol error, with
   * `error` set; after that the parser accepts nothing more.
   */
  execute(chunk: Buffer): number;
  /** Stop right after the current callback returns (used to bound pipelined work). */
  pause(): void;
  resume(): void;
  readonly error: HttpError | null;
  /** True while part of a head has arrived but not all of it (drives the head timeout). */
  readonly inHead: boolean;
  /** True while between onHead and onComplete. */
  readonly inBody: boolean;
  /** Releases resources (the llhttp parser lives in wasm memory). */
  destroy(): void;
}

export type ParserFactory = (limits: ParserLimits, callbacks: ParserCallbacks) => RequestParser;

/** The server's one open-file type: a reference-counted descriptor and its fstat. */
export type { OpenFile };

/**
 * A region of an open file to send, inclusive byte range. Each region holds one reference to
 * its file: whoever sends it releases it when done, whoever drops a reply unsent releases it
 * then (releaseBody).
 */
export interface FileRegion {
  file: OpenFile;
  start: number;
  end: number;
}

export type BodyPart = Buffer | FileRegion;

/** Lets go of the files held by body parts from `from` on (a reply dropped or cut). */
export function releaseBody(parts: readonly BodyPart[], from = 0): void {
  for (let i = from; i < parts.length; i++) {
    const part = parts[i]!;
    if (!Buffer.isBuffer(part)) part.file.release();
  }
}

/** True when a body holds an open file (it must be sent or released). */
export function holdsFile(parts: readonly BodyPart[]): boolean {
  for (let i = 0; i < parts.length; i++) if (!Buffer.isBuffer(parts[i])) return true;
  return false;
}

/** What a handler answers: everything but the Date and Connection headers, which the connection adds. */
export interface Reply {
  status: number;
  /**
   * The status line and every header line, each ending in CRLF, without Date, Connection or
   * the blank line. Includes Content-Length (or the body is delimited by close).
   */
  head: string;
  /**
   * The same head already encoded (latin1). Handlers that answer many requests with one
   * reusable Reply (memory-cached files) set it, so a response costs a copy, not an encode.
   */
  headBytes?: Buffer;
  /** Body pieces in order; empty for HEAD, 304, 204 (the handler decides, not the connection). */
  body: BodyPart[];
  /** Total bytes in body (what Content-Length says, or would say for HEAD). */
  bodyLength: number;
  /** Ask the connection to close after this reply. */
  close?: boolean;
}

/**
 * A handler's answer that switches the connection to another protocol (RFC 9110 §7.8, e.g. a
 * WebSocket handshake). Honoured only for a request that sent an Upgrade field and no body, and
 * whose `upgrade` names a registered protocol (HttpServerOptions.upgrades); otherwise the
 * connection answers 500 and closes (a handler bug, never the client's).
 */
export interface Upgrade {
  /** The protocol to hand the connection to: a key of the server's upgrade registry. */
  upgrade: string;
  /**
   * The 101 Switching Protocols head (Upgrade, Connection: Upgrade and the protocol's own
   * fields) and no body. The connection adds Date and the blank line, and no Connection
   * field of its own.
   */
  reply: Reply;
}

/** What a handler returns: a reply, or an upgrade to another protocol. */
export type Answer = Reply | Upgrade;

export function isUpgrade(answer: Answer): answer is Upgrade {
  return (answer as Upgrade).upgrade !== undefined;
}

/**
 * Takes over a connection after its 101: `pipe` (paused: resume it once your 'data' listener
 * is on; the HTTP connection has removed all of its own listeners and deadlines), `leftover`
 * (the bytes that arrived right behind the head, never parsed as HTTP; may be empty) and the
 * request's head. The returned Connection is swept, drained and aborted by the listener. A
 * client that half-closed before the handover gets its 'end' emitted on the pipe again right
 * after this returns (the socket emits it only once, and it came while HTTP still listened).
 */
export type UpgradeProtocol = (pipe: BytePipe, leftover: Buffer, head: RequestHead) => Connection;

export interface Handler {
  /** Cache hits must answer synchronously: no promise on the hot path. */
  handle(head: RequestHead): Answer | Promise<Answer>;
}

/** First value of a header (names are lower-case), or undefined. */
export function headerValue(head: RequestHead, name: string): string | undefined {
  const h = head.headers;
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) return h[i + 1];
  return undefined;
}

/** All values of a header, in order (for list-valued fields sent on several lines). */
export function headerValues(head: RequestHead, name: string): string[] {
  const out: string[] = [];
  const h = head.headers;
  for (let i = 0; i < h.length; i += 2) if (h[i] === name) out.push(h[i + 1]!);
  return out;
}

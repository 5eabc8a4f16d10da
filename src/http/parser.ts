// muxd's HTTP/1.1 request parser: an incremental state machine over Buffers, strict per
// RFC 9112. Input may be split at any byte and may hold many pipelined requests.
//
// The head is found first by a resumable scan for line ends (picohttpparser's last_len idea:
// bytes already scanned are never scanned again, so a client sending one byte at a time
// costs O(n) in total), which also enforces the size limits early (414 / 431). Once the
// blank line is seen, the complete head is validated and decoded in one pass: in place when
// it arrived in one chunk, else from one parser-owned buffer bounded by maxHeadBytes. The
// body (Content-Length or chunked) is then delivered as views of the input.
import { COLON, CR, DQUOTE, EQUALS, FIELD_VALUE_CHAR, HEX_VALUE, HTAB, LF, QDTEXT, SCHEME_CHAR, SEMI, SP, TARGET_CHAR, TCHAR, BACKSLASH, isAlphaByte, latin1 } from './chars.js';
import { HttpError, type ParserCallbacks, type ParserLimits, type RequestHead, type RequestParser } from './types.js';
import { absoluteAuthorityProblem, isValidHost } from './authority.js';

/** Content-Length values saturate here: far below 2^53, far above any sane maxBodyBytes. */
const CONTENT_LENGTH_CAP = 2 ** 50;
/** Longest chunk-size line (size + extensions) we read before calling it an attack. */
const MAX_CHUNK_LINE = 4096;

const enum State {
  Head,
  ContentLengthBody,
  ChunkSizeStart,
  ChunkSize,
  ExtBeforeSemi,
  ExtBeforeName,
  ExtName,
  ExtAfterName,
  ExtBeforeValue,
  ExtToken,
  ExtQuoted,
  ExtQuotedPair,
  ExtAfterQuoted,
  ChunkSizeLf,
  ChunkData,
  ChunkDataCr,
  ChunkDataLf,
  TrailerLineStart,
  TrailerName,
  TrailerValue,
  TrailerLf,
  TrailerEndLf,
  Dead,
}

// --- interned strings -------------------------------------------------------------------

interface Known {
  name: string;
  codes: Uint8Array;
}

function byLength(names: readonly string[]): Known[][] {
  const out: Known[][] = [];
  for (const name of names) {
    (out[name.length] ??= []).push({ name, codes: Buffer.from(name, 'latin1') });
  }
  return out;
}

/** RFC 9110 §9: methods are case-sensitive, so these match exactly. */
const METHODS = byLength(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE', 'PATCH']);

/** Field names seen on nearly every request, returned as constants (no allocation). */
const FIELD_NAMES = byLength([
  'host',
  'connection',
  'content-length',
  'transfer-encoding',
  'accept',
  'accept-encoding',
  'accept-language',
  'if-none-match',
  'if-modified-since',
  'if-match',
  'if-unmodified-since',
  'range',
  'if-range',
  'user-agent',
  'cache-control',
  'pragma',
  'referer',
  'origin',
  'cookie',
  'authorization',
  'content-type',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'keep-alive',
  'dnt',
  'priority',
  'sec-fetch-dest',
  'sec-fetch-mode',
  'sec-fetch-site',
  'sec-fetch-user',
  'sec-ch-ua',
  'sec-ch-ua-mobile',
  'sec-ch-ua-platform',
  'upgrade-insecure-requests',
  'x-forwarded-for',
]);

function internMethod(buf: Buffer, start: number, end: number): string {
  const candidates = METHODS[end - start];
  if (candidates !== undefined) {
    for (const known of candidates) {
      const codes = known.codes;
      let k = 0;
      while (k < codes.length && buf[start + k] === codes[k]) k++;
      if (k === codes.length) return known.name;
    }
  }
  return latin1(buf, start, end);
}

/** Lower-cased field name. Callers have checked every byte is a tchar, so `| 0x20` folds case safely. */
function internFieldName(buf: Buffer, start: number, end: number): string {
  const candidates = FIELD_NAMES[end - start];
  if (candidates !== undefined) {
    for (const known of candidates) {
      const codes = known.codes;
      let k = 0;
      while (k < codes.length && (buf[start + k]! | 0x20) === codes[k]) k++;
      if (k === codes.length) return known.name;
    }
  }
  return latin1(buf, start, end).toLowerCase();
}

// --- list-valued fields -------------------------------------------------------------------

/**
 * RFC 9110 §5.6.3: OWS = *( SP / HTAB ). Not String.prototype.trim, which also strips
 * U+00A0 and friends: a 0xA0 byte is obs-text, not whitespace.
 */
function trimOws(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && (s.charCodeAt(start) === SP || s.charCodeAt(start) === HTAB)) start++;
  while (end > start && (s.charCodeAt(end - 1) === SP || s.charCodeAt(end - 1) === HTAB)) end--;
  return s.slice(start, end);
}

const CONNECTION_CLOSE = 1;
const CONNECTION_KEEP_ALIVE = 2;

/** RFC 9112 §9.6 / RFC 9110 §7.6.1: Connection = #connection-option, case-insensitive tokens. */
function connectionOptions(value: string): number {
  if (value === 'keep-alive') return CONNECTION_KEEP_ALIVE;
  if (value === 'close') return CONNECTION_CLOSE;
  let flags = 0;
  for (const element of value.toLowerCase().split(',')) {
    const option = trimOws(element);
    if (option === 'close') flags |= CONNECTION_CLOSE;
    else if (option === 'keep-alive') flags |= CONNECTION_KEEP_ALIVE;
  }
  return flags;
}

/**
 * RFC 9110 §8.6: Content-Length = 1*DIGIT. RFC 9112 §6.3 lets a recipient either reject or
 * merge a list of identical values ("5, 5"); we reject, as llhttp does: two parsers on one path
 * that disagree about a body's length is how requests get smuggled.
 * Returns the value (saturated at CONTENT_LENGTH_CAP), or -1 when it is not exactly 1*DIGIT.
 */
export function parseContentLength(buf: Buffer, start: number, end: number): number {
  if (start === end) return -1;
  let value = 0;
  for (let p = start; p < end; p++) {
    const d = buf[p]! - 0x30;
    if (d < 0 || d > 9) return -1;
    value = value * 10 + d;
    if (value > CONTENT_LENGTH_CAP) value = CONTENT_LENGTH_CAP;
  }
  return value;
}

/** A rejection with the status to answer (thrown inside parseHead, caught in execute). */
function reject(status: number, message: string): never {
  throw new HttpError(status, message);
}

// --- the parser ---------------------------------------------------------------------------

export class MuxdRequestParser implements RequestParser {
  private state = State.Head;
  private paused = false;
  private err: HttpError | null = null;

  // Head scan: a head that arrives in pieces accumulates in `owned` (allocated on first need).
  private owned: Buffer | null = null;
  /** Bytes of the current head held in `owned`; 0 when no head has started. */
  private headLen = 0;
  /** A CR before the request line (RFC 9112 §2.2 leading empty line) awaiting its LF. */
  private leadingCr = false;
  /**
   * Empty lines arrived before this request line. They count as a head in progress, so the
   * head deadline runs from the first of them: blank lines dripped forever hold nothing.
   */
  private leadingLines = false;
  /** Head-relative offset of the line being scanned. */
  private lineStart = 0;
  private seenRequestLine = false;
  private fieldCount = 0;

  // Body.
  private remaining = 0;
  private bodyReceived = 0;
  private chunkSize = 0;
  private chunkLine = 0;
  private trailerBytes = 0;
  private trailerFields = 0;

  constructor(
    private readonly limits: ParserLimits,
    private readonly callbacks: ParserCallbacks,
  ) {}

  get error(): HttpError | null {
    return this.err;
  }

  get inHead(): boolean {
    return this.state === State.Head && (this.headLen > 0 || this.leadingCr || this.leadingLines);
  }

  get inBody(): boolean {
    return this.state !== State.Head && this.state !== State.Dead;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  destroy(): void {
    this.owned = null;
    this.state = State.Dead;
  }

  execute(chunk: Buffer): number {
    if (this.state === State.Dead) return -1;
    try {
      return this.run(chunk);
    } catch (e) {
      if (!(e instanceof HttpError)) throw e;
      this.err = e;
      this.state = State.Dead;
      this.owned = null;
      return -1;
    }
  }

  private run(chunk: Buffer): number {
    const len = chunk.length;
    let pos = 0;
    while (pos < len) {
      if (this.paused) return pos;
      switch (this.state) {
        case State.Head: {
          if (this.headLen === 0) {
            const b = chunk[pos]!;
            // RFC 9112 §2.2: ignore empty lines before the request line; a bare CR or LF is
            // refused (strictness against smuggling, as everywhere in this parser).
            if (this.leadingCr) {
              if (b !== LF) reject(400, 'bare CR before request line');
              this.leadingCr = false;
              this.leadingLines = true;
              pos++;
              continue;
            }
            if (b === CR) {
              this.leadingCr = true;
              pos++;
              continue;
            }
            if (b === LF) reject(400, 'bare LF before request line');
            this.leadingLines = false;
            this.lineStart = 0;
            this.seenRequestLine = false;
            this.fieldCount = 0;
          }
          const headEnd = this.scanHead(chunk, pos);
          if (headEnd === -1) return len;
          let head: RequestHead;
          if (this.headLen === 0) {
            head = this.parseHead(chunk, pos, headEnd);
          } else {
            const owned = this.owned!;
            chunk.copy(owned, this.headLen, pos, headEnd);
            const total = this.headLen + headEnd - pos;
            this.headLen = 0;
            head = this.parseHead(owned, 0, total);
          }
          pos = headEnd;
          if (this.startMessage(head)) return pos;
          break;
        }
        case State.ContentLengthBody: {
          const take = Math.min(this.remaining, len - pos);
          const piece = chunk.subarray(pos, pos + take);
          pos += take;
          this.remaining -= take;
          this.callbacks.onBody(piece);
          // The last piece completes the message at once: no byte lies between them.
          if (this.remaining === 0) this.complete();
          break;
        }
        case State.ChunkData: {
          const take = Math.min(this.remaining, len - pos);
          const piece = chunk.subarray(pos, pos + take);
          pos += take;
          this.remaining -= take;
          if (this.remaining === 0) this.state = State.ChunkDataCr;
          this.callbacks.onBody(piece);
          break;
        }
        default:
          pos = this.chunkedFraming(chunk, pos);
      }
    }
    return pos;
  }

  /**
   * Scans chunk[pos..] for the end of the head, continuing from where the previous call
   * stopped. Returns the chunk index just past the blank line, or -1 after copying the whole
   * remainder into `owned` (the head is incomplete). Limits are checked at every line end
   * and at the end of each chunk, so an oversized line or head is refused without waiting.
   */
  private scanHead(chunk: Buffer, pos: number): number {
    const { maxRequestLine, maxHeadBytes, maxHeaders } = this.limits;
    const len = chunk.length;
    const base = this.headLen - pos; // head-relative offset = chunk index + base
    let i = pos;
    for (;;) {
      const lf = chunk.indexOf(LF, i);
      if (lf === -1) break;
      const r = lf + base;
      const prev = lf > pos ? chunk[lf - 1] : this.owned![this.headLen - 1];
      const contentEnd = prev === CR ? r - 1 : r;
      if (!this.seenRequestLine && contentEnd - this.lineStart > maxRequestLine) reject(414, 'request line too long');
      if (r + 1 > maxHeadBytes) reject(431, 'head too large');
      // RFC 9112 §2.2 lets a recipient accept a bare LF as a line end; we refuse it, since
      // parsers that disagree on line ends are how requests get smuggled.
      if (prev !== CR) reject(400, 'bare LF in head');
      if (contentEnd === this.lineStart) return lf + 1;
      if (!this.seenRequestLine) this.seenRequestLine = true;
      else if (++this.fieldCount > maxHeaders) reject(431, 'too many header fields');
      this.lineStart = r + 1;
      i = lf + 1;
    }
    const total = len + base;
    const partialLine = total - (chunk[len - 1] === CR ? 1 : 0) - this.lineStart;
    if (!this.seenRequestLine && partialLine > maxRequestLine) reject(414, 'request line too long');
    if (total > maxHeadBytes) reject(431, 'head too large');
    this.owned ??= Buffer.allocUnsafe(maxHeadBytes);
    chunk.copy(this.owned, this.headLen, pos, len);
    this.headLen = total;
    return -1;
  }

  /**
   * Validates and decodes a complete head in buf[start, end) (end is just past the blank
   * line). Every line is known to end in CRLF and to fit the limits.
   */
  private parseHead(buf: Buffer, start: number, end: number): RequestHead {
    // RFC 9112 §3: request-line = method SP request-target SP HTTP-version
    let p = start;
    while (TCHAR[buf[p]!] === 1) p++;
    if (p === start || buf[p] !== SP) reject(400, 'malformed method');
    const method = internMethod(buf, start, p);

    const targetStart = ++p;
    while (TARGET_CHAR[buf[p]!] === 1) p++;
    if (p === targetStart || buf[p] !== SP) reject(400, 'malformed request-target');
    this.checkTargetForm(method, buf, targetStart, p);
    const target = latin1(buf, targetStart, p);
    if (buf[targetStart] !== 0x2f) {
      const problem = absoluteAuthorityProblem(target);
      if (problem !== null) reject(400, problem);
    }

    // RFC 9112 §2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT, then the line's CRLF.
    p++;
    if (buf[p] !== 0x48 || buf[p + 1] !== 0x54 || buf[p + 2] !== 0x54 || buf[p + 3] !== 0x50 || buf[p + 4] !== 0x2f) {
      reject(400, 'malformed HTTP-version');
    }
    const major = buf[p + 5]! - 0x30;
    const minor = buf[p + 7]! - 0x30;
    if (major < 0 || major > 9 || buf[p + 6] !== 0x2e || minor < 0 || minor > 9 || buf[p + 8] !== CR || buf[p + 9] !== LF) {
      reject(400, 'malformed HTTP-version');
    }
    if (major !== 1 || minor > 1) reject(505, 'HTTP version not supported');
    const versionMinor: 0 | 1 = minor === 0 ? 0 : 1;
    p += 10;

    const headers: string[] = [];
    let host: string | null = null;
    let hostCount = 0;
    let contentLength = -1;
    let transferEncoding: string | null = null;
    let connection = 0;
    const fieldsEnd = end - 2; // the blank line's CRLF
    while (p < fieldsEnd) {
      // RFC 9112 §5: field-line = field-name ":" OWS field-value OWS
      const nameStart = p;
      // §5.2: obs-fold (a line starting with SP/HTAB) is refused.
      if (buf[p] === SP || buf[p] === HTAB) reject(400, 'obsolete line folding');
      while (TCHAR[buf[p]!] === 1) p++;
      // §5.1: no whitespace between field name and colon.
      if (p === nameStart || buf[p] !== COLON) reject(400, 'malformed field name');
      const name = internFieldName(buf, nameStart, p);
      p++;
      while (buf[p] === SP || buf[p] === HTAB) p++;
      const valueStart = p;
      let valueEnd = p;
      let b: number;
      while ((b = buf[p]!) !== CR) {
        if (FIELD_VALUE_CHAR[b] !== 1) reject(400, 'invalid character in field value');
        p++;
        if (b !== SP && b !== HTAB) valueEnd = p;
      }
      if (buf[p + 1] !== LF) reject(400, 'bare CR in field value');
      p += 2;
      const value = valueEnd === valueStart ? '' : latin1(buf, valueStart, valueEnd);
      headers.push(name, value);

      if (name === 'host') {
        hostCount++;
        host = value;
      } else if (name === 'content-length') {
        // A tab after the digits is how smuggling probes hide a value from one parser and
        // not another; llhttp refuses it too (RFC 9112 §11.2).
        if (hasTab(buf, valueStart, p - 2)) reject(400, 'tab in Content-Length');
        const n = parseContentLength(buf, valueStart, valueEnd);
        // RFC 9112 §6.3 (5): an invalid Content-Length is unrecoverable; a second one, even an
        // identical copy, is refused for the same reason as lists (see parseContentLength).
        if (n === -1) reject(400, 'invalid Content-Length');
        if (contentLength !== -1) reject(400, 'more than one Content-Length');
        contentLength = n;
      } else if (name === 'transfer-encoding') {
        if (hasTab(buf, valueStart, p - 2)) reject(400, 'tab in Transfer-Encoding');
        transferEncoding = transferEncoding === null ? value : `${transferEncoding},${value}`;
      } else if (name === 'connection') {
        connection |= connectionOptions(value);
      }
    }

    // RFC 9112 §3.2: a 1.1 request carries exactly one Host; none or several -> 400.
    if (versionMinor === 1 ? hostCount !== 1 : hostCount > 1) reject(400, hostCount === 0 ? 'missing Host' : 'repeated Host');
    if (host !== null && !isValidHost(host)) reject(400, 'invalid Host');

    let chunked = false;
    if (transferEncoding !== null) {
      // RFC 9112 §6.1: a 1.0 recipient cannot know chunked; §6.3 (3): CL with TE is an attack.
      if (versionMinor === 0) reject(400, 'Transfer-Encoding in HTTP/1.0');
      if (contentLength !== -1) reject(400, 'both Content-Length and Transfer-Encoding');
      chunked = finalCodingIsChunked(transferEncoding);
    }

    const keepAlive =
      versionMinor === 1 ? (connection & CONNECTION_CLOSE) === 0 : (connection & (CONNECTION_KEEP_ALIVE | CONNECTION_CLOSE)) === CONNECTION_KEEP_ALIVE;
    return { method, target, versionMinor, headers, host, contentLength, chunked, keepAlive };
  }

  /** RFC 9112 §3.2: which form of request-target each method may use. */
  private checkTargetForm(method: string, buf: Buffer, start: number, end: number): void {
    const first = buf[start]!;
    if (first === 0x2f) return; // origin-form
    if (method === 'CONNECT') return; // authority-form: accepted as sent; the handler answers it
    if (first === 0x2a) {
      // asterisk-form: only "*", only for OPTIONS (§3.2.4)
      if (end - start === 1 && method === 'OPTIONS') return;
      reject(400, 'asterisk-form is only for OPTIONS');
    }
    // absolute-form: scheme ":" hier-part (§3.2.2, RFC 3986 §3)
    if (isAlphaByte(first)) {
      let p = start + 1;
      while (p < end && SCHEME_CHAR[buf[p]!] === 1) p++;
      if (p < end && buf[p] === COLON) return;
    }
    reject(400, 'malformed request-target');
  }

  /** Sets up the body and calls back; returns true when execute must return (paused). */
  private startMessage(head: RequestHead): boolean {
    const { maxBodyBytes } = this.limits;
    if (head.contentLength > maxBodyBytes) reject(413, 'body too large');
    this.bodyReceived = 0;
    if (head.chunked) {
      this.state = State.ChunkSizeStart;
      this.chunkLine = 0;
      this.trailerBytes = 0;
      this.trailerFields = 0;
    } else if (head.contentLength > 0) {
      this.state = State.ContentLengthBody;
      this.remaining = head.contentLength;
    } else {
      // RFC 9112 §6.3 (7): a request with neither field has no body. onComplete follows
      // onHead even if onHead paused: no byte lies between them to resume from.
      this.callbacks.onHead(head);
      this.complete();
      return this.paused;
    }
    this.callbacks.onHead(head);
    return this.paused;
  }

  private complete(): void {
    this.state = State.Head;
    this.callbacks.onComplete();
  }

  /**
   * The byte-level states of chunked framing (RFC 9112 §7.1): size line with extensions,
   * the CRLF after data, and the trailer section. Returns the new position; stops at the
   * start of chunk data, at the end of the message, or at the end of the chunk.
   */
  private chunkedFraming(chunk: Buffer, pos: number): number {
    const len = chunk.length;
    while (pos < len) {
      const b = chunk[pos++]!;
      switch (this.state) {
        case State.ChunkSizeStart:
        case State.ChunkSize: {
          if (++this.chunkLine > MAX_CHUNK_LINE) reject(400, 'chunk size line too long');
          const digit = HEX_VALUE[b]!;
          if (digit !== 0xff) {
            if (this.state === State.ChunkSizeStart) {
              this.state = State.ChunkSize;
              this.chunkSize = 0;
            }
            this.chunkSize = this.chunkSize * 16 + digit;
            // Checked per digit, so the size can never overflow (cap << 2^53).
            if (this.bodyReceived + this.chunkSize > this.limits.maxBodyBytes) reject(413, 'body too large');
            break;
          }
          if (this.state === State.ChunkSizeStart) reject(400, 'missing chunk size');
          if (b === CR) this.state = State.ChunkSizeLf;
          else if (b === SEMI) this.state = State.ExtBeforeName;
          else if (b === SP || b === HTAB) this.state = State.ExtBeforeSemi;
          else reject(400, 'invalid chunk size');
          break;
        }
        // chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ) (§7.1.1):
        // validated, then ignored.
        case State.ExtBeforeSemi:
          this.chunkLineByte();
          if (b === SEMI) this.state = State.ExtBeforeName;
          else if (b !== SP && b !== HTAB) reject(400, 'invalid chunk extension');
          break;
        case State.ExtBeforeName:
          this.chunkLineByte();
          if (TCHAR[b] === 1) this.state = State.ExtName;
          else if (b !== SP && b !== HTAB) reject(400, 'invalid chunk extension');
          break;
        case State.ExtName:
          this.chunkLineByte();
          if (TCHAR[b] === 1) break;
          if (b === CR) this.state = State.ChunkSizeLf;
          else if (b === EQUALS) this.state = State.ExtBeforeValue;
          else if (b === SEMI) this.state = State.ExtBeforeName;
          else if (b === SP || b === HTAB) this.state = State.ExtAfterName;
          else reject(400, 'invalid chunk extension');
          break;
        case State.ExtAfterName:
          this.chunkLineByte();
          if (b === EQUALS) this.state = State.ExtBeforeValue;
          else if (b === SEMI) this.state = State.ExtBeforeName;
          else if (b !== SP && b !== HTAB) reject(400, 'invalid chunk extension');
          break;
        case State.ExtBeforeValue:
          this.chunkLineByte();
          if (TCHAR[b] === 1) this.state = State.ExtToken;
          else if (b === DQUOTE) this.state = State.ExtQuoted;
          else if (b !== SP && b !== HTAB) reject(400, 'invalid chunk extension');
          break;
        case State.ExtToken:
          this.chunkLineByte();
          if (TCHAR[b] === 1) break;
          if (b === CR) this.state = State.ChunkSizeLf;
          else if (b === SEMI) this.state = State.ExtBeforeName;
          else if (b === SP || b === HTAB) this.state = State.ExtBeforeSemi;
          else reject(400, 'invalid chunk extension');
          break;
        case State.ExtQuoted:
          this.chunkLineByte();
          if (b === DQUOTE) this.state = State.ExtAfterQuoted;
          else if (b === BACKSLASH) this.state = State.ExtQuotedPair;
          else if (QDTEXT[b] !== 1) reject(400, 'invalid chunk extension');
          break;
        case State.ExtQuotedPair:
          this.chunkLineByte();
          if (FIELD_VALUE_CHAR[b] !== 1) reject(400, 'invalid chunk extension');
          this.state = State.ExtQuoted;
          break;
        case State.ExtAfterQuoted:
          this.chunkLineByte();
          if (b === CR) this.state = State.ChunkSizeLf;
          else if (b === SEMI) this.state = State.ExtBeforeName;
          else if (b === SP || b === HTAB) this.state = State.ExtBeforeSemi;
          else reject(400, 'invalid chunk extension');
          break;
        case State.ChunkSizeLf:
          if (b !== LF) reject(400, 'bare CR in chunk size line');
          this.chunkLine = 0;
          if (this.chunkSize === 0) {
            this.state = State.TrailerLineStart;
            break;
          }
          this.bodyReceived += this.chunkSize;
          this.remaining = this.chunkSize;
          this.state = State.ChunkData;
          return pos;
        case State.ChunkDataCr:
          if (b !== CR) reject(400, 'chunk data not followed by CRLF');
          this.state = State.ChunkDataLf;
          break;
        case State.ChunkDataLf:
          if (b !== LF) reject(400, 'chunk data not followed by CRLF');
          this.state = State.ChunkSizeStart;
          break;
        // trailer-section = *( field-line CRLF ) (§7.1.2): validated like head fields, discarded.
        case State.TrailerLineStart:
          this.trailerByte();
          if (b === CR) this.state = State.TrailerEndLf;
          else if (TCHAR[b] === 1) {
            if (++this.trailerFields > this.limits.maxHeaders) reject(431, 'too many trailer fields');
            this.state = State.TrailerName;
          } else reject(400, b === SP || b === HTAB ? 'obsolete line folding in trailer' : 'malformed trailer field');
          break;
        case State.TrailerName:
          this.trailerByte();
          if (b === COLON) this.state = State.TrailerValue;
          else if (TCHAR[b] !== 1) reject(400, 'malformed trailer field');
          break;
        case State.TrailerValue:
          this.trailerByte();
          if (b === CR) this.state = State.TrailerLf;
          else if (FIELD_VALUE_CHAR[b] !== 1) reject(400, 'invalid character in trailer value');
          break;
        case State.TrailerLf:
          this.trailerByte();
          if (b !== LF) reject(400, 'bare CR in trailer');
          this.state = State.TrailerLineStart;
          break;
        case State.TrailerEndLf:
          if (b !== LF) reject(400, 'bare CR after trailer');
          this.complete();
          return pos;
        default:
          throw new Error(`chunked framing in state ${this.state}`);
      }
    }
    return pos;
  }

  private chunkLineByte(): void {
    if (++this.chunkLine > MAX_CHUNK_LINE) reject(400, 'chunk size line too long');
  }

  private trailerByte(): void {
    if (++this.trailerBytes > this.limits.maxHeadBytes) reject(431, 'trailer section too large');
  }
}

/** An HTAB anywhere in buf[start, end) (a framing field's value with its trailing OWS). */
function hasTab(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i] === HTAB) return true;
  return false;
}

/**
 * RFC 9112 §6.3 (4): chunked must be the final coding, and applied once (§6.1). We decode
 * nothing else, so any other final coding is 501 (RFC 9112 §6.1: "SHOULD respond with 501").
 */
function finalCodingIsChunked(value: string): boolean {
  const codings: string[] = [];
  for (const element of value.toLowerCase().split(',')) {
    const coding = trimOws(element);
    // RFC 9110 §5.6.1.2 lets a recipient skip empty list elements, but this list decides the
    // framing: "chunked," is refused, as llhttp does, so no two parsers can read it differently.
    if (coding === '') reject(400, 'empty element in Transfer-Encoding');
    codings.push(coding);
  }
  const last = codings.length - 1;
  if (codings[last] !== 'chunked') reject(501, 'unsupported transfer coding');
  if (codings.indexOf('chunked') !== last) reject(400, 'chunked applied more than once');
  return true;
}

export function createMuxdParser(limits: ParserLimits, callbacks: ParserCallbacks): RequestParser {
  return new MuxdRequestParser(limits, callbacks);
}

// The reference RequestParser: llhttp (the parser inside Node's http) through llhttp-wasm.
// Two modes:
// - serving (`--parser llhttp`, the default here): llhttp plus the rules a server must add
//   that llhttp leaves to its user (Host, authority, version, transfer coding, our limits), so
//   a server running it answers like one running ours;
// - raw (`{ raw: true }`, the differential test's reference): llhttp on its own terms, no
//   muxd rule layered on, no limits; a rejection's status is what a server would send for
//   llhttp's error code (llhttpErrorStatus), or null when the code maps to none.
//
// llhttp-wasm@1.0.3 overwrites `url` on every on_url span and pushes every header span as a
// new entry, so a head that reaches llhttp in two execute() calls comes out garbled. We
// therefore collect the head ourselves until its blank line and give llhttp the whole head
// in one execute(); while a head is still incomplete its pieces are also fed to llhttp for
// validation only (so malformed input is refused as early as llhttp would), and llhttp is
// reset before the real pass. Body bytes go to llhttp as they come. After every message
// llhttp is reset, so each request starts clean (no "data after Connection: close").
import { createParser, METHODS, TYPE, type HeadersComplete, type Parser } from 'llhttp-wasm';
import { HttpError, type ParserCallbacks, type ParserLimits, type RequestHead, type RequestParser } from './types.js';
import { absoluteAuthorityProblem, isValidHost } from './authority.js';

// llhttp error codes (llhttp's `llhttp_errno`), as exported by llhttp-wasm's constants.
const HPE_OK = 0;
const HPE_INVALID_VERSION = 9;
const HPE_PAUSED = 21;
const CB_ERROR = -1;

/**
 * The status a server sends for an llhttp error code, or null when the code is not a verdict
 * on the request (pauses, callback errors, end-of-stream states). Node's http server answers
 * 400 to every parse error except its own header overflow (431); we follow it, and take 505
 * for a well-formed but unsupported version (RFC 9110 §15.6.6), which llhttp reports as
 * INVALID_VERSION with the reason "Invalid HTTP version".
 */
export function llhttpErrorStatus(name: string, reason: string): number | null {
  switch (name) {
    case 'HPE_INVALID_VERSION':
      return /^Invalid HTTP version/i.test(reason) ? 505 : 400;
    // Malformed syntax of the request line, a field or the body framing: RFC 9110 §15.5.1.
    case 'HPE_STRICT':
    case 'HPE_CR_EXPECTED':
    case 'HPE_LF_EXPECTED':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_UNEXPECTED_SPACE':
    case 'HPE_INVALID_METHOD': // llhttp knows a fixed list; malformed and unknown look alike (Node: 400)
    case 'HPE_INVALID_URL':
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_INVALID_CHUNK_SIZE':
    // RFC 9112 §6.3: chunked not the final coding of a request -> 400 (llhttp's only TE error).
    case 'HPE_INVALID_TRANSFER_ENCODING':
      return 400;
    // Node maps its header-size overflow to 431 (raw llhttp has no limit, so never seen here).
    case 'HPE_HEADER_OVERFLOW':
      return 431;
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return 413;
    default:
      // HPE_INTERNAL, HPE_CLOSED_CONNECTION (data after "Connection: close": a server just
      // closes), HPE_INVALID_EOF_STATE (only from finish()), HPE_PAUSED*, HPE_USER, HPE_CB_*:
      // not a verdict on the bytes.
      return null;
  }
}

export interface LlhttpOptions {
  /** llhttp alone: no Host/authority/version/transfer-coding rules of ours, no limits. */
  raw?: boolean;
}

/** What llhttp itself said when it refused the input (null if it did not, or a rule of ours did). */
export interface LlhttpFailure {
  code: number;
  name: string;
  reason: string;
}

const NO_LIMITS: ParserLimits = {
  maxRequestLine: Number.MAX_SAFE_INTEGER,
  maxHeadBytes: Number.MAX_SAFE_INTEGER,
  maxHeaders: Number.MAX_SAFE_INTEGER,
  maxBodyBytes: Number.MAX_SAFE_INTEGER,
};

const LF = 0x0a;
const CR = 0x0d;

const METHOD_NAMES: string[] = [];
for (const [name, code] of Object.entries(METHODS)) METHOD_NAMES[code] = name;

const enum Mode {
  Head,
  Body,
  Dead,
}

export class LlhttpRequestParser implements RequestParser {
  private readonly ll: Parser;
  private mode = Mode.Head;
  private err: HttpError | null = null;
  private userPaused = false;
  /** llhttp itself is paused (we returned HPE_PAUSED from onBody) and must be resumed. */
  private llPaused = false;
  /** Set while feeding a partial head for validation: callbacks must not reach the user. */
  private validating = false;
  private completed = false;
  private bodyBytes = 0;

  // Head collection.
  private owned: Buffer | null = null;
  private headLen = 0;
  private sawContent = false;
  /** 0: last byte was not part of a line end; 1: last byte was LF; 2: last bytes were LF CR. */
  private lineEnd = 0;
  private requestLineStart = 0;
  private requestLineDone = false;
  private fields = 0;
  private nonAscii = false;
  private readonly raw: boolean;
  private readonly limits: ParserLimits;
  private llFailure: LlhttpFailure | null = null;

  constructor(
    limits: ParserLimits,
    private readonly callbacks: ParserCallbacks,
    options: LlhttpOptions = {},
  ) {
    this.raw = options.raw === true;
    this.limits = this.raw ? NO_LIMITS : limits;
    const ll = createParser(TYPE.REQUEST!);
    ll.onHeadersComplete = (msg) => this.onHeadersComplete(msg);
    ll.onBody = (data) => this.onBody(data);
    ll.onMessageComplete = () => this.onMessageComplete();
    this.ll = ll;
  }

  get error(): HttpError | null {
    return this.err;
  }

  /** llhttp's own error, when the rejection came from llhttp rather than a rule of ours. */
  get llhttpFailure(): LlhttpFailure | null {
    return this.llFailure;
  }

  get inHead(): boolean {
    return this.mode === Mode.Head && this.headLen > 0;
  }

  get inBody(): boolean {
    return this.mode === Mode.Body;
  }

  pause(): void {
    this.userPaused = true;
  }

  resume(): void {
    this.userPaused = false;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.mode = Mode.Dead;
    this.owned = null;
    this.ll.destroy();
  }

  private destroyed = false;

  execute(chunk: Buffer): number {
    if (this.mode === Mode.Dead) return -1;
    const len = chunk.length;
    let pos = 0;
    while (pos < len) {
      if (this.userPaused) return pos;
      if (this.mode === Mode.Head) {
        const end = this.scanHead(chunk, pos);
        if (end === -2) return this.fail(null);
        if (end === -1) {
          // Incomplete: keep the bytes and let llhttp judge what has arrived so far.
          this.validating = true;
          const ret = this.ll.execute(chunk.subarray(pos));
          this.validating = false;
          if (ret !== HPE_OK) return this.fail(ret);
          return len;
        }
        let head: Buffer;
        if (this.headLen === 0) {
          head = chunk.subarray(pos, end);
        } else {
          const need = this.headLen + end - pos;
          if (this.owned!.length < need) {
            const grown = Buffer.allocUnsafe(need);
            this.owned!.copy(grown, 0, 0, this.headLen);
            this.owned = grown;
          }
          const owned = this.owned!;
          chunk.copy(owned, this.headLen, pos, end);
          head = owned.subarray(0, need);
        }
        this.ll.reset();
        this.headRaw = head;
        const ret = this.ll.execute(head);
        this.headRaw = null;
        this.resetHeadScan();
        pos = end;
        if (ret === HPE_PAUSED && this.completed) {
          this.finishMessage();
          continue;
        }
        if (ret !== HPE_OK) return this.fail(ret);
        this.mode = Mode.Body;
        continue;
      }
      // Body: llhttp frames it; it pauses itself at the end of the message (onMessageComplete).
      if (this.llPaused) {
        this.ll.resume();
        this.llPaused = false;
      }
      const ret = this.ll.execute(chunk.subarray(pos));
      if (ret === HPE_OK) return len;
      if (ret !== HPE_PAUSED) return this.fail(ret);
      pos += this.ll.getErrorPosition();
      if (this.completed) this.finishMessage();
      else this.llPaused = true; // paused from onBody
    }
    return pos;
  }

  /** The head being parsed, for recovering obs-text bytes llhttp-wasm decodes as UTF-8. */
  private headRaw: Buffer | null = null;

  private finishMessage(): void {
    this.completed = false;
    this.mode = Mode.Head;
    this.ll.reset();
  }

  private fail(code: number | null): number {
    if (this.err === null) {
      const name = code === null ? 'error' : (this.ll.getErrorName(code) ?? String(code));
      const reason = code === null ? '' : (this.ll.getErrorReason(code) ?? '');
      if (code !== null) this.llFailure = { code, name, reason };
      let status: number | null;
      if (this.raw) status = code === null ? null : llhttpErrorStatus(name, reason);
      else status = code === HPE_INVALID_VERSION && /Invalid HTTP version/i.test(reason) ? 505 : 400;
      // An unmappable code still refuses the input; -1 says "no status a server would send".
      this.err = new HttpError(status ?? -1, `llhttp: ${name} ${reason}`);
    }
    this.mode = Mode.Dead;
    this.owned = null;
    return -1;
  }

  private reject(status: number, message: string): void {
    this.err ??= new HttpError(status, message);
  }

  private resetHeadScan(): void {
    this.headLen = 0;
    this.sawContent = false;
    this.lineEnd = 0;
    this.requestLineDone = false;
    this.fields = 0;
    this.nonAscii = false;
  }

  /**
   * Finds the blank line ending the head in chunk[pos..], enforcing our limits as it goes.
   * Returns the index just past it, -1 (incomplete: bytes kept) or -2 (limit exceeded).
   * A line end is LF optionally preceded by CR, so a head with bare LFs still reaches llhttp
   * whole, which then refuses it as it would have anyway.
   */
  private scanHead(chunk: Buffer, pos: number): number {
    const { maxRequestLine, maxHeadBytes, maxHeaders } = this.limits;
    const len = chunk.length;
    const base = this.headLen - pos;
    for (let i = pos; i < len; i++) {
      const b = chunk[i]!;
      const r = i + base;
      if (r + 1 > maxHeadBytes) {
        if (!this.requestLineDone && this.sawContent && r - this.requestLineStart > maxRequestLine) this.reject(414, 'request line too long');
        this.reject(431, 'head too large');
        return -2;
      }
      if (b === LF) {
        if (this.sawContent) {
          if (this.lineEnd !== 0) return i + 1;
          if (!this.requestLineDone) {
            const prevCr = i > pos ? chunk[i - 1] === CR : this.owned![this.headLen - 1] === CR;
            if (r - (prevCr ? 1 : 0) - this.requestLineStart > maxRequestLine) {
              this.reject(414, 'request line too long');
              return -2;
            }
            this.requestLineDone = true;
          } else if (++this.fields > maxHeaders) {
            this.reject(431, 'too many header fields');
            return -2;
          }
        }
        this.lineEnd = 1;
      } else if (b === CR) {
        this.lineEnd = this.lineEnd === 1 ? 2 : 0;
      } else {
        this.lineEnd = 0;
        if (!this.sawContent) {
          this.sawContent = true;
          this.requestLineStart = r;
        }
        if (b >= 0x80) this.nonAscii = true;
        if (!this.requestLineDone && r - this.requestLineStart + 1 > maxRequestLine) {
          this.reject(414, 'request line too long');
          return -2;
        }
      }
    }
    const need = len + base;
    if (this.owned === null || this.owned.length < need) {
      // Grow by doubling (raw mode has no head limit; serving mode stops at maxHeadBytes).
      const grown = Buffer.allocUnsafe(Math.min(maxHeadBytes, Math.max(need, 2 * (this.owned?.length ?? 2048))));
      if (this.owned !== null) this.owned.copy(grown, 0, 0, this.headLen);
      this.owned = grown;
    }
    chunk.copy(this.owned, this.headLen, pos, len);
    this.headLen = need;
    return -1;
  }

  private onHeadersComplete(msg: HeadersComplete): number {
    if (this.validating) return CB_ERROR; // cannot happen: the scan ends heads no later than llhttp
    if (!this.raw && (msg.versionMajor !== 1 || msg.versionMinor > 1)) {
      this.reject(505, 'HTTP version not supported');
      return CB_ERROR;
    }
    const raw = msg.rawHeaders;
    const headers: string[] = new Array<string>(raw.length);
    const latin1 = this.nonAscii ? latin1FieldValues(this.headRaw!) : null;
    let host: string | null = null;
    let hosts = 0;
    let contentLength = -1;
    let transferEncoding: string | null = null;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      const value = latin1 !== null ? latin1[i >> 1]! : trimOws(raw[i + 1]!);
      headers[i] = name;
      headers[i + 1] = value;
      if (name === 'host') {
        host ??= value;
        hosts++;
      }
      else if (name === 'content-length') contentLength = Number(value);
      else if (name === 'transfer-encoding') transferEncoding = transferEncoding === null ? value : `${transferEncoding},${value}`;
    }
    // RFC 9112 §3.2: a server MUST answer 400 to a 1.1 request without Host, and to any request
    // with more than one. llhttp leaves this to its user, so the adapter enforces it as ours does.
    // Raw mode leaves all of these to llhttp: its user (a server) would add them.
    if (!this.raw && (hosts > 1 || (hosts === 0 && msg.versionMinor === 1))) {
      this.reject(400, hosts > 1 ? 'more than one Host field' : 'missing Host field');
      return CB_ERROR;
    }
    const authorityProblem = this.raw ? null : host !== null && !isValidHost(host) ? 'invalid Host' : absoluteAuthorityProblem(msg.url ?? '');
    if (authorityProblem !== null) {
      this.reject(400, authorityProblem);
      return CB_ERROR;
    }
    let chunked = false;
    if (transferEncoding !== null) {
      const codings = transferEncoding.toLowerCase().split(',').map(trimOws).filter((c) => c !== '');
      chunked = codings[codings.length - 1] === 'chunked';
      // llhttp refuses a request whose final coding is not chunked only after this callback
      // (with 400, RFC 9112 §6.3); serving mode answers 501 first, as ours does (RFC 9112 §6.1).
      if (!chunked && !this.raw) {
        this.reject(501, 'unsupported transfer coding');
        return CB_ERROR;
      }
    }
    if (contentLength > this.limits.maxBodyBytes) {
      this.reject(413, 'body too large');
      return CB_ERROR;
    }
    this.bodyBytes = 0;
    const head: RequestHead = {
      method: METHOD_NAMES[msg.method ?? -1] ?? 'UNKNOWN',
      target: msg.url ?? '',
      versionMinor: msg.versionMinor === 0 ? 0 : 1,
      headers,
      host,
      contentLength,
      chunked,
      keepAlive: msg.shouldKeepAlive,
    };
    this.callbacks.onHead(head);
    return 0;
  }

  private onBody(data: Uint8Array): number {
    if (this.validating) return 0;
    this.bodyBytes += data.length;
    if (this.bodyBytes > this.limits.maxBodyBytes) {
      this.reject(413, 'body too large');
      return CB_ERROR;
    }
    // llhttp-wasm hands us a fresh copy of the bytes; wrap it without copying again.
    this.callbacks.onBody(Buffer.from(data.buffer, data.byteOffset, data.length));
    return this.userPaused ? HPE_PAUSED : 0;
  }

  private onMessageComplete(): number {
    if (this.validating) return 0;
    this.completed = true;
    this.callbacks.onComplete();
    return HPE_PAUSED;
  }
}

/** RFC 9110 §5.5: OWS around a field value is not part of it (llhttp keeps trailing OWS). */
function trimOws(value: string): string {
  let start = 0;
  let end = value.length;
  while (start < end && (value.charCodeAt(start) === 0x20 || value.charCodeAt(start) === 0x09)) start++;
  while (end > start && (value.charCodeAt(end - 1) === 0x20 || value.charCodeAt(end - 1) === 0x09)) end--;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}

/**
 * llhttp-wasm decodes spans as UTF-8, which mangles obs-text. When the head holds such
 * bytes, take each field value again from the raw head (llhttp accepted it, so every line
 * after the request line is "name:value" in order).
 */
function latin1FieldValues(head: Buffer): string[] {
  const values: string[] = [];
  let p = 0;
  while (p < head.length && (head[p] === CR || head[p] === LF)) p++;
  p = head.indexOf(LF, p) + 1; // skip the request line
  while (p < head.length) {
    let lineEnd = head.indexOf(LF, p);
    if (lineEnd === -1) lineEnd = head.length;
    const contentEnd = lineEnd > p && head[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd;
    if (contentEnd === p) break;
    const colon = head.indexOf(0x3a, p);
    values.push(trimOws(head.toString('latin1', colon + 1, contentEnd)));
    p = lineEnd + 1;
  }
  return values;
}

export function createLlhttpParser(limits: ParserLimits, callbacks: ParserCallbacks, options?: LlhttpOptions): RequestParser {
  return new LlhttpRequestParser(limits, callbacks, options);
}

/** llhttp on its own terms (the differential test's reference): see LlhttpOptions.raw. */
export function createRawLlhttpParser(limits: ParserLimits, callbacks: ParserCallbacks): LlhttpRequestParser {
  return new LlhttpRequestParser(limits, callbacks, { raw: true });
}

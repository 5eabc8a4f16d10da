// The reference RequestParser: llhttp (the parser inside Node's http) through llhttp-wasm.
// Used by the differential tests and as `--parser llhttp`.
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

  constructor(
    private readonly limits: ParserLimits,
    private readonly callbacks: ParserCallbacks,
  ) {
    const ll = createParser(TYPE.REQUEST!);
    ll.onHeadersComplete = (msg) => this.onHeadersComplete(msg);
    ll.onBody = (data) => this.onBody(data);
    ll.onMessageComplete = () => this.onMessageComplete();
    this.ll = ll;
  }

  get error(): HttpError | null {
    return this.err;
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
          const owned = this.owned!;
          chunk.copy(owned, this.headLen, pos, end);
          head = owned.subarray(0, this.headLen + end - pos);
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
      let status = 400;
      if (code === HPE_INVALID_VERSION && /Invalid HTTP version/i.test(this.ll.getErrorReason(code) ?? '')) status = 505;
      this.err = new HttpError(status, `llhttp: ${code === null ? 'error' : (this.ll.getErrorName(code) ?? code)} ${code === null ? '' : (this.ll.getErrorReason(code) ?? '')}`);
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
    this.owned ??= Buffer.allocUnsafe(maxHeadBytes);
    chunk.copy(this.owned, this.headLen, pos, len);
    this.headLen = len + base;
    return -1;
  }

  private onHeadersComplete(msg: HeadersComplete): number {
    if (this.validating) return CB_ERROR; // cannot happen: the scan ends heads no later than llhttp
    if (msg.versionMajor !== 1 || msg.versionMinor > 1) {
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
    if (hosts > 1 || (hosts === 0 && msg.versionMinor === 1)) {
      this.reject(400, hosts > 1 ? 'more than one Host field' : 'missing Host field');
      return CB_ERROR;
    }
    const authorityProblem = host !== null && !isValidHost(host) ? 'invalid Host' : absoluteAuthorityProblem(msg.url ?? '');
    if (authorityProblem !== null) {
      this.reject(400, authorityProblem);
      return CB_ERROR;
    }
    let chunked = false;
    if (transferEncoding !== null) {
      const codings = transferEncoding.toLowerCase().split(',').map(trimOws).filter((c) => c !== '');
      chunked = codings[codings.length - 1] === 'chunked';
      // llhttp refuses a request whose final coding is not chunked only after this callback.
      if (!chunked) {
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

export function createLlhttpParser(limits: ParserLimits, callbacks: ParserCallbacks): RequestParser {
  return new LlhttpRequestParser(limits, callbacks);
}

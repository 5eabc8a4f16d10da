// Named request vectors and a harness shared by the parser tests (ours and the llhttp
// reference). Not a test file itself: parser.test.ts and differential.test.ts import it.
import assert from 'node:assert/strict';
import { DEFAULT_PARSER_LIMITS, type ParserFactory, type ParserLimits, type RequestHead } from '../../src/http/types.js';

export interface ExpectedMessage {
  head: Partial<RequestHead>;
  body?: string;
}

export interface Vector {
  name: string;
  /** latin1: every char is one byte. */
  input: string;
  limits?: Partial<ParserLimits>;
  /** Accepted: the messages in order (the input holds exactly these, complete). */
  messages?: ExpectedMessage[];
  /** Rejected with this status. */
  status?: number;
  /**
   * How llhttp (the reference) sees it, when not the same as ours:
   * "stricter" = we reject on purpose what llhttp accepts; "llhttp-stricter" = llhttp rejects
   * what we accept; "other-status" = both reject with different statuses.
   */
  llhttp?: 'stricter' | 'llhttp-stricter' | 'other-status';
}

export interface Message {
  head: RequestHead;
  body: string;
}

export interface Run {
  messages: Message[];
  status: number | null;
  /** For each callback, the input offset (bytes fed so far) when it fired. */
  events: { kind: 'head' | 'body' | 'complete'; at: number }[];
  parser: ReturnType<ParserFactory>;
}

const H = 'Host: h\r\n';

export function limitsOf(v: { limits?: Partial<ParserLimits> }): ParserLimits {
  return { ...DEFAULT_PARSER_LIMITS, ...v.limits };
}

/** Feeds `pieces` in order; pauses in the onComplete of message `pauseAfter` (1-based). */
export function runPieces(factory: ParserFactory, limits: ParserLimits, pieces: Buffer[], pauseAfter = 0): Run & { returned: number[] } {
  const run: Run & { returned: number[] } = { messages: [], status: null, events: [], returned: [], parser: null! };
  let fed = 0;
  let current: Message | null = null;
  const parser = factory(limits, {
    onHead(head) {
      current = { head, body: '' };
      run.messages.push(current);
      run.events.push({ kind: 'head', at: fed });
    },
    onBody(chunk) {
      assert.ok(current !== null, 'onBody before onHead');
      current.body += chunk.toString('latin1');
      run.events.push({ kind: 'body', at: fed });
    },
    onComplete() {
      run.events.push({ kind: 'complete', at: fed });
      current = null;
      if (run.messages.length === pauseAfter) parser.pause();
    },
  });
  run.parser = parser;
  for (const piece of pieces) {
    fed += piece.length;
    const n = parser.execute(piece);
    run.returned.push(n);
    if (n === -1) {
      run.status = parser.error?.status ?? -1;
      break;
    }
  }
  return run;
}

export function checkMessages(actual: Message[], expected: ExpectedMessage[], label: string): void {
  assert.equal(actual.length, expected.length, `${label}: message count`);
  for (let i = 0; i < expected.length; i++) {
    const want = expected[i]!;
    const got = actual[i]!;
    for (const key of Object.keys(want.head) as (keyof RequestHead)[]) {
      assert.deepEqual(got.head[key], want.head[key], `${label}: message ${i} ${key}`);
    }
    assert.equal(got.body, want.body ?? '', `${label}: message ${i} body`);
  }
}

/** Where the first head ends: just past the first blank line after the request line. */
function firstHeadEnd(input: string): number {
  let start = 0;
  while (input[start] === '\r' || input[start] === '\n') start++;
  return input.indexOf('\r\n\r\n', start) + 4;
}

const TRAILING = '\x00trailing garbage\r\n\r\n';

/** Runs one vector three ways (whole, byte at a time, with trailing bytes) against a parser. */
export function checkVector(factory: ParserFactory, v: Vector): void {
  const limits = limitsOf(v);
  const input = Buffer.from(v.input, 'latin1');

  // 1. Whole.
  const whole = runPieces(factory, limits, [input]);
  if (v.status !== undefined) {
    assert.equal(whole.status, v.status, `whole: status (${whole.parser.error?.message})`);
    assert.equal(whole.parser.execute(Buffer.from('GET / HTTP/1.1\r\n\r\n')), -1, 'whole: parser stays dead');
  } else {
    assert.equal(whole.status, null, `whole: unexpected error ${whole.parser.error?.status} ${whole.parser.error?.message}`);
    assert.deepEqual(whole.returned, [input.length], 'whole: consumed everything');
    checkMessages(whole.messages, v.messages!, 'whole');
    assert.equal(whole.parser.inHead, false, 'whole: not in a head at the end');
    assert.equal(whole.parser.inBody, false, 'whole: not in a body at the end');
  }
  whole.parser.destroy();

  // 2. One byte at a time.
  const bytes: Buffer[] = [];
  for (let i = 0; i < input.length; i++) bytes.push(input.subarray(i, i + 1));
  const bytewise = runPieces(factory, limits, bytes);
  if (v.status !== undefined) {
    assert.equal(bytewise.status, v.status, `bytewise: status (${bytewise.parser.error?.message})`);
  } else {
    assert.equal(bytewise.status, null, `bytewise: unexpected error ${bytewise.parser.error?.message}`);
    assert.ok(bytewise.returned.every((n) => n === 1), 'bytewise: every byte consumed');
    checkMessages(bytewise.messages, v.messages!, 'bytewise');
    const headEnd = firstHeadEnd(v.input);
    assert.equal(bytewise.events[0]?.at, headEnd, 'bytewise: no callback before the first head is complete');
    assert.equal(bytewise.events[0]?.kind, 'head');
    assert.equal(bytewise.events.at(-1)?.kind, 'complete');
    assert.equal(bytewise.events.at(-1)?.at, input.length, 'bytewise: complete on the last byte');
  }
  bytewise.parser.destroy();

  // 3. Followed by bytes that must stay unconsumed.
  const withTrailing = Buffer.concat([input, Buffer.from(TRAILING, 'latin1')]);
  if (v.status !== undefined) {
    const run = runPieces(factory, limits, [withTrailing]);
    assert.equal(run.status, v.status, `trailing: status (${run.parser.error?.message})`);
    run.parser.destroy();
  } else {
    const run = runPieces(factory, limits, [withTrailing], v.messages!.length);
    assert.equal(run.status, null, `trailing: unexpected error ${run.parser.error?.message}`);
    assert.deepEqual(run.returned, [input.length], 'trailing: stops right after the last message');
    checkMessages(run.messages, v.messages!, 'trailing');
    // The rest is garbage: fed after resume(), it must be refused.
    run.parser.resume();
    assert.equal(run.parser.execute(withTrailing.subarray(input.length)), -1, 'trailing: garbage refused after resume');
    run.parser.destroy();
  }
}

function get(target = '/', extra = ''): string {
  return `GET ${target} HTTP/1.1\r\n${H}${extra}\r\n`;
}

export const VECTORS: Vector[] = [
  // --- accepted: request line ---
  {
    name: 'typical GET',
    input: 'GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n',
    messages: [
      {
        head: {
          method: 'GET',
          target: '/index.html',
          versionMinor: 1,
          headers: ['host', '127.0.0.1:8080'],
          host: '127.0.0.1:8080',
          contentLength: -1,
          chunked: false,
          keepAlive: true,
        },
      },
    ],
  },
  { name: 'HEAD with query', input: `HEAD /a/b?c=d&e=%20f HTTP/1.1\r\n${H}\r\n`, messages: [{ head: { method: 'HEAD', target: '/a/b?c=d&e=%20f' } }] },
  { name: 'extension method token', input: `FROBNICATE / HTTP/1.1\r\n${H}\r\n`, messages: [{ head: { method: 'FROBNICATE' } }], llhttp: 'llhttp-stricter' },
  { name: 'method is case-sensitive, kept as sent', input: `get / HTTP/1.1\r\n${H}\r\n`, messages: [{ head: { method: 'get' } }], llhttp: 'llhttp-stricter' },
  { name: 'absolute-form target', input: `GET http://example.com/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n`, messages: [{ head: { target: 'http://example.com/x?y' } }] },
  { name: 'asterisk-form for OPTIONS', input: `OPTIONS * HTTP/1.1\r\n${H}\r\n`, messages: [{ head: { method: 'OPTIONS', target: '*' } }] },
  { name: 'authority-form for CONNECT', input: 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', messages: [{ head: { method: 'CONNECT', target: 'example.com:443' } }] },
  { name: 'sub-delims and unencoded brackets in target', input: get("/a!$&'()*+,;=:@-._~[]{}|^`\\\"<>"), messages: [{ head: { target: "/a!$&'()*+,;=:@-._~[]{}|^`\\\"<>" } }] },
  { name: 'one leading empty line', input: `\r\n${get()}`, messages: [{ head: { target: '/' } }] },
  { name: 'two leading empty lines', input: `\r\n\r\n${get()}`, messages: [{ head: { target: '/' } }] },
  // --- accepted: versions and persistence ---
  { name: 'HTTP/1.0 without Host', input: 'GET / HTTP/1.0\r\n\r\n', messages: [{ head: { versionMinor: 0, host: null, keepAlive: false, headers: [] } }] },
  { name: 'HTTP/1.0 with Host', input: 'GET / HTTP/1.0\r\nHost: a\r\n\r\n', messages: [{ head: { versionMinor: 0, host: 'a' } }] },
  ...['', 'example.com', '127.0.0.1:8080', '[::1]:8080', '[v1.fe]', 'xn--bcher-kva.example', 'a%41b', "h!$&'()*+,;=-._~", 'h:'].map((host) => ({
    name: `valid Host ${JSON.stringify(host)}`,
    input: `GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
    messages: [{ head: { host } }],
  })),
  { name: 'absolute-form https with a port', input: 'GET https://h:8443/x HTTP/1.1\r\nHost: h\r\n\r\n', messages: [{ head: { target: 'https://h:8443/x' } }] },
  { name: 'HTTP/1.0 keep-alive', input: 'GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n', messages: [{ head: { keepAlive: true } }] },
  { name: 'HTTP/1.1 close', input: get('/', 'Connection: close\r\n'), messages: [{ head: { keepAlive: false } }] },
  { name: 'HTTP/1.1 close in a list, any case', input: get('/', 'Connection: keep-alive, CLOSE\r\n'), messages: [{ head: { keepAlive: false } }] },
  { name: 'HTTP/1.1 close on a second Connection line', input: get('/', 'Connection: upgrade\r\nConnection: close\r\n'), messages: [{ head: { keepAlive: false } }] },
  // Regression (found by the differential test): String.trim() strips U+00A0, so "\xa0close" read as "close".
  { name: 'NBSP before close is not OWS', input: get('/', 'Connection: \xa0close\r\n'), messages: [{ head: { keepAlive: true } }] },
  { name: 'NBSP after chunked is not OWS', input: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\xa0\r\n\r\n`, status: 501 },
  { name: 'HTTP/1.1 other connection options persist', input: get('/', 'Connection: te\r\n'), messages: [{ head: { keepAlive: true } }] },
  // --- accepted: fields ---
  {
    name: 'names lower-cased, known and unknown',
    input: 'GET / HTTP/1.1\r\nHOST: h\r\nAccept-Encoding: gzip\r\nIf-None-Match: "x"\r\nX-Custom-Thing: 1\r\nUSER-AGENT: t\r\n\r\n',
    messages: [{ head: { headers: ['host', 'h', 'accept-encoding', 'gzip', 'if-none-match', '"x"', 'x-custom-thing', '1', 'user-agent', 't'], host: 'h' } }],
  },
  { name: 'OWS around values trimmed, inner kept', input: get('/', 'X:  \t a \t b \t \r\n'), messages: [{ head: { headers: ['host', 'h', 'x', 'a \t b'] } }] },
  { name: 'empty value', input: get('/', 'X:\r\nY: \r\n'), messages: [{ head: { headers: ['host', 'h', 'x', '', 'y', ''] } }] },
  { name: 'obs-text in value (latin1)', input: get('/', 'X: caf\xe9\r\n'), messages: [{ head: { headers: ['host', 'h', 'x', 'caf\xe9'] } }] },
  { name: 'tchar punctuation in names', input: get('/', "!#$%&'*+-.^_`|~: v\r\n"), messages: [{ head: { headers: ['host', 'h', "!#$%&'*+-.^_`|~", 'v'] } }] },
  // --- accepted: bodies ---
  { name: 'Content-Length body', input: `POST /p HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello`, messages: [{ head: { method: 'POST', contentLength: 5 }, body: 'hello' }] },
  { name: 'Content-Length 0', input: `POST /p HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n`, messages: [{ head: { contentLength: 0 } }] },
  { name: 'Content-Length with leading zeros', input: `POST /p HTTP/1.1\r\n${H}Content-Length: 003\r\n\r\nabc`, messages: [{ head: { contentLength: 3 }, body: 'abc' }] },
  // --- refused on purpose: RFC 9112 §6.3 allows merging identical values; we refuse (as llhttp does)
  { name: 'identical duplicate Content-Length fields', input: `POST /p HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc`, status: 400 },
  { name: 'identical Content-Length list', input: `POST /p HTTP/1.1\r\n${H}Content-Length: 3, 3\r\n\r\nabc`, status: 400 },
  {
    name: 'chunked body',
    input: `POST /c HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n`,
    messages: [{ head: { chunked: true, contentLength: -1 }, body: 'hello world' }],
  },
  { name: 'chunked, coding name any case', input: `POST /c HTTP/1.1\r\n${H}Transfer-Encoding: Chunked\r\n\r\n1\r\na\r\n0\r\n\r\n`, messages: [{ head: { chunked: true }, body: 'a' }] },
  { name: 'chunked, hex sizes any case', input: `POST /c HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n00a\r\n0123456789\r\n0\r\n\r\n`, messages: [{ body: '01234567890123456789', head: {} }] },
  {
    name: 'chunked with extensions',
    input: `POST /c HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3;a\r\nabc\r\n3;a=b;c="d;\\"e"\r\ndef\r\n0;last\r\n\r\n`,
    messages: [{ head: { chunked: true }, body: 'abcdef' }],
  },
  {
    name: 'chunk extension with BWS (RFC 9112 §7.1.1)',
    input: `POST /c HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1 ; x = y\r\ng\r\n0\r\n\r\n`,
    messages: [{ head: { chunked: true }, body: 'g' }],
    llhttp: 'llhttp-stricter',
  },
  {
    name: 'chunked with trailers',
    input: `POST /c HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\nExpires: never\r\nX-Sum:\r\n\r\n`,
    messages: [{ head: { chunked: true }, body: 'ab' }],
  },
  { name: 'gzip then chunked: final coding decides', input: `POST /c HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n`, messages: [{ head: { chunked: true }, body: 'z' }] },
  { name: 'Transfer-Encoding over two lines', input: `POST /c HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n`, messages: [{ head: { chunked: true }, body: 'z' }] },
  // --- accepted: pipelining ---
  { name: 'three pipelined GETs', input: get('/1') + get('/2') + get('/3'), messages: [{ head: { target: '/1' } }, { head: { target: '/2' } }, { head: { target: '/3' } }] },
  {
    name: 'pipelined GET, POST, chunked POST',
    input: `${get('/a')}POST /b HTTP/1.1\r\n${H}Content-Length: 2\r\n\r\nxyPOST /c HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1\r\nq\r\n0\r\n\r\n${get('/d')}`,
    messages: [{ head: { target: '/a' } }, { head: { target: '/b' }, body: 'xy' }, { head: { target: '/c' }, body: 'q' }, { head: { target: '/d' } }],
  },
  { name: 'empty line between pipelined requests', input: `${get('/1')}\r\n${get('/2')}`, messages: [{ head: { target: '/1' } }, { head: { target: '/2' } }] },
  // --- accepted: limits at their edge ---
  { name: 'request line exactly at the limit', input: `GET /${'a'.repeat(14)} HTTP/1.1\r\n${H}\r\n`, limits: { maxRequestLine: 28 }, messages: [{ head: {} }] },
  { name: 'head exactly at the limit', input: get('/'), limits: { maxHeadBytes: get('/').length }, messages: [{ head: {} }] },
  { name: 'fields exactly at the limit', input: get('/', 'A: 1\r\nB: 2\r\n'), limits: { maxHeaders: 3 }, messages: [{ head: {} }] },
  { name: 'body exactly at the limit', input: `POST / HTTP/1.1\r\n${H}Content-Length: 4\r\n\r\nabcd`, limits: { maxBodyBytes: 4 }, messages: [{ head: {}, body: 'abcd' }] },
  { name: 'chunked body exactly at the limit', input: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n`, limits: { maxBodyBytes: 4 }, messages: [{ head: {}, body: 'abcd' }] },

  // --- rejected: request line ---
  { name: 'empty method', input: ` / HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'non-token method', input: `GE(T / HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'two spaces after method', input: `GET  / HTTP/1.1\r\n${H}\r\n`, status: 400, llhttp: 'stricter' },
  { name: 'space inside target', input: `GET /a b HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'CTL in target', input: `GET /a\x01b HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'DEL in target', input: `GET /a\x7fb HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'obs-text in target', input: `GET /caf\xe9 HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'fragment in target', input: `GET /a#b HTTP/1.1\r\n${H}\r\n`, status: 400, llhttp: 'stricter' },
  { name: 'relative target', input: `GET a/b HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'asterisk-form for GET', input: `GET * HTTP/1.1\r\n${H}\r\n`, status: 400, llhttp: 'stricter' },
  { name: 'missing target', input: `GET HTTP/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'missing version', input: `GET /\r\n${H}\r\n`, status: 400, llhttp: 'other-status' },
  { name: 'space after version', input: `GET / HTTP/1.1 \r\n${H}\r\n`, status: 400 },
  { name: 'lower-case protocol name', input: `GET / http/1.1\r\n${H}\r\n`, status: 400 },
  { name: 'version without dot', input: `GET / HTTP/11\r\n${H}\r\n`, status: 400 },
  { name: 'two-digit minor version', input: `GET / HTTP/1.10\r\n${H}\r\n`, status: 400 },
  { name: 'HTTP/2.0', input: `GET / HTTP/2.0\r\n${H}\r\n`, status: 505 },
  { name: 'HTTP/1.2', input: `GET / HTTP/1.2\r\n${H}\r\n`, status: 505 },
  { name: 'HTTP/0.9 version token', input: `GET / HTTP/0.9\r\n${H}\r\n`, status: 505 },
  { name: 'HTTP/3.1', input: `GET / HTTP/3.1\r\n${H}\r\n`, status: 505 },
  // --- rejected: line ends ---
  { name: 'bare LF after request line', input: `GET / HTTP/1.1\n${H}\r\n`, status: 400 },
  { name: 'bare LF after a field', input: `GET / HTTP/1.1\r\nHost: h\n\r\n`, status: 400 },
  { name: 'bare LF as the blank line', input: `GET / HTTP/1.1\r\nHost: h\r\n\n`, status: 400 },
  { name: 'bare CR inside a value', input: `GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n`, status: 400 },
  { name: 'bare CR at end of a field line', input: `GET / HTTP/1.1\r\nHost: h\r\nX: a\r\r\n\r\n`, status: 400 },
  { name: 'bare CR before request line', input: `\rGET / HTTP/1.1\r\n${H}\r\n`, status: 400, llhttp: 'stricter' },
  { name: 'bare LF before request line', input: `\nGET / HTTP/1.1\r\n${H}\r\n`, status: 400, llhttp: 'stricter' },
  // Found by the differential test against raw llhttp (test/http/differential.test.ts):
  { name: 'request line without HTTP-version (HTTP/0.9 form)', input: `GET /a\r\n${H}\r\n`, status: 400, llhttp: 'other-status' },
  { name: 'asterisk-form with more than the asterisk', input: `OPTIONS *a HTTP/1.1\r\n${H}\r\n`, status: 400, llhttp: 'stricter' },
  { name: 'chunk extension with an empty name', input: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1;=b\r\na\r\n0\r\n\r\n`, status: 400, llhttp: 'stricter' },
  // --- rejected: fields ---
  { name: 'whitespace before colon', input: get('/', 'X : a\r\n'), status: 400 },
  { name: 'obs-fold', input: get('/', 'X: a\r\n  b\r\n'), status: 400 },
  { name: 'obs-fold on the first field', input: `GET / HTTP/1.1\r\n X: a\r\n${H}\r\n`, status: 400 },
  { name: 'empty field name', input: get('/', ': a\r\n'), status: 400 },
  { name: 'field without colon', input: get('/', 'X\r\n'), status: 400 },
  { name: 'non-token in field name', input: get('/', 'X(y): a\r\n'), status: 400 },
  { name: 'NUL in value', input: get('/', 'X: a\x00b\r\n'), status: 400 },
  { name: 'CTL in value', input: get('/', 'X: a\x01b\r\n'), status: 400 },
  { name: 'DEL in value', input: get('/', 'X: a\x7fb\r\n'), status: 400 },
  // --- rejected: Host ---
  { name: 'HTTP/1.1 without Host', input: 'GET / HTTP/1.1\r\n\r\n', status: 400 },
  { name: 'HTTP/1.1 with two Host fields', input: get('/', 'Host: i\r\n'), status: 400 },
  { name: 'HTTP/1.0 with two Host fields', input: 'GET / HTTP/1.0\r\nHost: h\r\nHost: h\r\n\r\n', status: 400 },
  // RFC 9112 §3.2: an invalid Host value gets 400 (Host = uri-host [ ":" port ]).
  ...['a b', 'a/b?c', 'user@evil:80', 'evil:99999x', '\xff\xfe', 'a%zz', '[::1', '[]', 'a:b:c'].map((host) => ({
    name: `invalid Host ${JSON.stringify(host)}`,
    input: `GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
    status: 400,
  })),
  // RFC 9110 §4.2.1: an http URI with an empty host is invalid; §4.2.4: userinfo is an error.
  { name: 'absolute-form with an empty host', input: 'GET http:///docs HTTP/1.1\r\nHost: h\r\n\r\n', status: 400 },
  { name: 'absolute-form with userinfo', input: 'GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n', status: 400 },
  // --- rejected: Content-Length ---
  { name: 'non-numeric Content-Length', input: `POST / HTTP/1.1\r\n${H}Content-Length: abc\r\n\r\n`, status: 400 },
  { name: 'signed Content-Length', input: `POST / HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\nhello`, status: 400 },
  { name: 'negative Content-Length', input: `POST / HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n`, status: 400 },
  { name: 'empty Content-Length', input: `POST / HTTP/1.1\r\n${H}Content-Length: \r\n\r\n`, status: 400 },
  { name: 'differing Content-Length list', input: `POST / HTTP/1.1\r\n${H}Content-Length: 5, 6\r\n\r\nhello`, status: 400 },
  { name: 'differing Content-Length fields', input: `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello`, status: 400 },
  { name: 'Content-Length with inner space', input: `POST / HTTP/1.1\r\n${H}Content-Length: 1 2\r\n\r\n`, status: 400 },
  // --- rejected: Transfer-Encoding ---
  { name: 'unknown transfer coding', input: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\n`, status: 501 },
  { name: 'chunked not last', input: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n`, status: 501, llhttp: 'other-status' },
  { name: 'chunked twice', input: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, chunked\r\n\r\n`, status: 400 },
  // Found by the raw differential test: both were lenient where llhttp is not, in framing fields.
  { name: 'empty element in Transfer-Encoding', input: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked,\r\n\r\n0\r\n\r\n`, status: 400 },
  { name: 'tab after Content-Length digits', input: `POST / HTTP/1.1\r\n${H}Content-Length: 5\t\r\n\r\nhello`, status: 400 },
  { name: 'tab after chunked', input: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n`, status: 400 },
  { name: 'empty Transfer-Encoding', input: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: \r\n\r\n`, status: 400, llhttp: 'other-status' },
  { name: 'Content-Length and Transfer-Encoding', input: `POST / HTTP/1.1\r\n${H}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, status: 400 },
  { name: 'Transfer-Encoding on HTTP/1.0', input: 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', status: 400, llhttp: 'stricter' },
  // --- rejected: chunked framing ---
  { name: 'chunk size not hex', input: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nx\r\n`, status: 400 },
  { name: 'chunk size missing', input: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n\r\n`, status: 400 },
  { name: 'space after chunk size without extension', input: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1 \r\na\r\n0\r\n\r\n`, status: 400 },
  { name: 'bad chunk extension char', input: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1;a\x01\r\na\r\n0\r\n\r\n`, status: 400 },
  { name: 'unterminated quoted extension', input: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1;a="b\r\na\r\n0\r\n\r\n`, status: 400 },
  { name: 'chunk data longer than its size', input: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n`, status: 400 },
  { name: 'bare LF after chunk size', input: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1\na\r\n0\r\n\r\n`, status: 400 },
  { name: 'bare LF after chunk data', input: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n1\r\na\n0\r\n\r\n`, status: 400 },
  { name: 'obs-fold in trailer', input: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\nA: b\r\n c\r\n\r\n`, status: 400 },
  { name: 'malformed trailer name', input: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\nA b: c\r\n\r\n`, status: 400 },
  { name: 'NUL in trailer value', input: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\nA: \x00\r\n\r\n`, status: 400 },
  // --- rejected: limits ---
  { name: 'request line over the limit', input: `GET /${'a'.repeat(15)} HTTP/1.1\r\n${H}\r\n`, limits: { maxRequestLine: 28 }, status: 414 },
  { name: 'request line over the limit, no CRLF yet (early 414)', input: `GET /${'a'.repeat(40)}`, limits: { maxRequestLine: 28 }, status: 414 },
  { name: 'head over the limit', input: get('/', 'X: 12345\r\n'), limits: { maxHeadBytes: get('/', 'X: 12345\r\n').length - 1 }, status: 431 },
  { name: 'head over the limit, no end yet (early 431)', input: `GET / HTTP/1.1\r\n${H}X: ${'v'.repeat(100)}`, limits: { maxHeadBytes: 64 }, status: 431 },
  { name: 'too many fields', input: get('/', 'A: 1\r\nB: 2\r\nC: 3\r\n'), limits: { maxHeaders: 3 }, status: 431 },
  { name: 'too many fields, no end yet (early 431)', input: `GET / HTTP/1.1\r\n${H}A: 1\r\nB: 2\r\nC: 3\r\n`, limits: { maxHeaders: 3 }, status: 431 },
  { name: 'declared body over the limit', input: `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\n`, limits: { maxBodyBytes: 4 }, status: 413 },
  { name: 'chunked body over the limit', input: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n`, limits: { maxBodyBytes: 4 }, status: 413 },
  { name: 'chunk size overflow', input: `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffffffff\r\n`, status: 413, llhttp: 'other-status' },
  { name: 'huge Content-Length', input: `POST / HTTP/1.1\r\n${H}Content-Length: 99999999999999999999999\r\n\r\n`, status: 413, llhttp: 'other-status' },
];

// Differential tests: our parser against llhttp on llhttp's own terms.
//
// The reference is the RAW llhttp adapter (createRawLlhttpParser): llhttp alone, with none of
// our Host, authority, version, transfer-coding or limit rules layered on, and no limits at
// all (the generated inputs stay far below ours, checked below, so our limits never decide).
// Its rejections carry the status a server would send for llhttp's error code
// (llhttpErrorStatus), or -1 where the code maps to none.
//
// Each generated input is fed to our parser whole AND split at points fast-check chooses;
// both must give the identical outcome. Then ours is compared with llhttp:
// - both accept: the same messages (method, target, version, fields, body, derived fields);
// - both reject: the same status, unless a named STATUS class explains the difference;
// - we reject, llhttp accepts: a named OURS_STRICTER class must recognise the message we
//   rejected (only that message's bytes are looked at, found by feeding byte by byte);
// - we accept, llhttp rejects: a named RFC_MANDATED class (leniency an RFC requires, with its
//   section), or a named KNOWN_BUG class (a parser bug reported to be fixed in parser.ts).
// Every class has a vector of its own, checked on both parsers.
//
// The serving adapter (createLlhttpParser, `--parser llhttp`) keeps our rules; the vector
// table below checks it against the expected outcomes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createLlhttpParser, createRawLlhttpParser, llhttpErrorStatus } from '../../src/http/llhttp-parser.js';
import { createMuxdParser } from '../../src/http/parser.js';
import { DEFAULT_PARSER_LIMITS, type ParserFactory } from '../../src/http/types.js';
import { checkVector, limitsOf, runPieces, VECTORS, type Message } from './parser-vectors.js';

// --- the vector table through the serving adapter -------------------------------------------

describe('llhttp serving adapter: the named vectors', () => {
  for (const v of VECTORS) {
    const input = Buffer.from(v.input, 'latin1');
    if (v.llhttp === undefined) {
      it(`${v.name} (agrees)`, () => checkVector(createLlhttpParser, v));
    } else if (v.llhttp === 'stricter') {
      it(`${v.name} (we are stricter: llhttp accepts)`, () => {
        const run = runPieces(createLlhttpParser, limitsOf(v), [input]);
        assert.equal(run.status, null, 'llhttp accepts it');
        assert.ok(v.status !== undefined, 'and ours rejects it (checked in parser.test.ts)');
      });
    } else if (v.llhttp === 'llhttp-stricter') {
      it(`${v.name} (llhttp is stricter: it rejects)`, () => {
        const run = runPieces(createLlhttpParser, limitsOf(v), [input]);
        assert.equal(run.status, 400);
      });
    } else {
      it(`${v.name} (both reject, other status)`, () => {
        const run = runPieces(createLlhttpParser, limitsOf(v), [input]);
        assert.notEqual(run.status, null);
        assert.notEqual(run.status, v.status);
      });
    }
  }
});

// --- running one input ----------------------------------------------------------------------

interface Side {
  /** null: accepted (possibly waiting for more); else the status (-1: llhttp code maps to none). */
  status: number | null;
  messages: Message[];
  /** Accepted so far, inside a head (no onHead yet for it). */
  inHead: boolean;
  /** Accepted so far, inside a body (onHead fired, onComplete not yet). */
  inBody: boolean;
  /** llhttp's own error name, on the reference side. */
  code: string | null;
}

function side(factory: ParserFactory, pieces: Buffer[]): Side {
  const run = runPieces(factory, DEFAULT_PARSER_LIMITS, pieces);
  const parser = run.parser as ReturnType<ParserFactory> & { llhttpFailure?: { name: string } | null };
  const out: Side = {
    status: run.status,
    messages: run.messages.map((m) => ({ head: { ...m.head }, body: m.body })),
    inHead: run.status === null && run.parser.inHead,
    inBody: run.status === null && run.parser.inBody,
    code: parser.llhttpFailure?.name ?? null,
  };
  if (run.status === null) for (let i = 0; i < pieces.length; i++) assert.equal(run.returned[i], pieces[i]!.length, 'every piece consumed');
  run.parser.destroy();
  return out;
}

function splitAt(input: Buffer, points: number[]): Buffer[] {
  const cuts = [...new Set(points.map((p) => p % (input.length + 1)))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let prev = 0;
  for (const c of cuts) {
    pieces.push(input.subarray(prev, c));
    prev = c;
  }
  pieces.push(input.subarray(prev));
  return pieces;
}

/**
 * Where a rejection happened: fed one byte at a time, the parser refuses at some offset; the
 * message it was parsing starts after the last complete message. Returns that message's bytes
 * up to the refusal, and whether its head was still being parsed (no onHead yet).
 */
function rejectedRegion(factory: ParserFactory, input: Buffer): { text: string; inHead: boolean; rest: string } {
  const bytes: Buffer[] = [];
  for (let i = 0; i < input.length; i++) bytes.push(input.subarray(i, i + 1));
  const run = runPieces(factory, DEFAULT_PARSER_LIMITS, bytes);
  const at = run.returned.length; // bytes fed when it refused
  let start = 0;
  let inHead = true;
  for (const e of run.events) {
    if (e.kind === 'complete') {
      start = e.at;
      inHead = true;
    } else if (e.kind === 'head') inHead = false;
  }
  run.parser.destroy();
  return { text: input.toString('latin1', start, at), inHead, rest: input.toString('latin1', start) };
}

// --- named classes --------------------------------------------------------------------------

/** The part of a message the classes look at: its head, split into lines. */
interface Head {
  requestLine: string;
  method: string;
  target: string;
  version: string;
  fields: string[];
}

function headOf(region: string): Head {
  const text = region.replace(/^[\r\n]+/, '');
  const end = text.indexOf('\r\n\r\n');
  const lines = (end === -1 ? text : text.slice(0, end)).split('\r\n');
  const requestLine = lines[0]!;
  const parts = requestLine.split(' ');
  return { requestLine, method: parts[0] ?? '', target: parts[1] ?? '', version: parts[parts.length - 1] ?? '', fields: lines.slice(1) };
}

const fieldsNamed = (h: Head, name: string): string[] => h.fields.filter((f) => f.toLowerCase().startsWith(`${name}:`));
const valueOf = (f: string): string => f.slice(f.indexOf(':') + 1);

interface Region {
  /** The bytes of the message concerned, from its first byte up to where it was refused. */
  text: string;
  /** The refusal came while its head was being parsed. */
  inHead: boolean;
  /** Its head, read from its first byte on (a refusal may come before the head ends). */
  head: Head;
  /** Our status (null: we accepted). */
  status: number | null;
}

interface Klass {
  /** The RFC section that makes our side of the difference right. */
  rfc: string;
  /** An input of our own that shows the difference. */
  vector: string;
  applies(r: Region): boolean;
}

/** We reject, llhttp accepts. The region is the message WE refused. */
const OURS_STRICTER: Record<string, Klass> = {
  // llhttp leaves Host to its user; a server MUST answer 400 (missing on 1.1, or repeated).
  'Host missing or repeated': {
    rfc: 'RFC 9112 §3.2',
    vector: 'GET / HTTP/1.1\r\n\r\n',
    applies: (r) => r.inHead && (fieldsNamed(r.head, 'host').length > 1 || (r.head.version === 'HTTP/1.1' && fieldsNamed(r.head, 'host').length === 0)),
  },
  'invalid Host value': {
    rfc: 'RFC 9112 §3.2, RFC 3986 §3.2.2',
    vector: 'GET / HTTP/1.1\r\nHost: a b\r\n\r\n',
    applies: (r) => r.inHead && fieldsNamed(r.head, 'host').some((f) => !/^[ \t]*[A-Za-z0-9.-]*(:[0-9]*)?[ \t]*$/.test(valueOf(f))),
  },
  // llhttp accepts any x.y version; we speak 1.0 and 1.1 only.
  'HTTP version other than 1.x': {
    rfc: 'RFC 9110 §15.6.6 (505)',
    vector: 'GET / HTTP/2.0\r\nHost: h\r\n\r\n',
    applies: (r) => r.inHead && /^HTTP\/\d\.\d$/.test(r.head.version) && !/^HTTP\/1\.[01]$/.test(r.head.version),
  },
  // llhttp takes "GET /x" with no version as HTTP/0.9 (no headers, no body); we speak 1.x only.
  'request line without HTTP-version (HTTP/0.9)': {
    rfc: 'RFC 9112 §3',
    vector: 'GET /a\r\nHost: h\r\n\r\n',
    applies: (r) => r.inHead && r.head.requestLine.split(' ').length < 3,
  },
  // llhttp refuses "chunked," but takes ",chunked"; we refuse every empty element of the list
  // that decides the framing, so no two parsers can read the body differently.
  'empty element in the Transfer-Encoding list': {
    rfc: 'RFC 9112 §6.3, §11.2',
    vector: 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n',
    applies: (r) => r.inHead && fieldsNamed(r.head, 'transfer-encoding').some((f) => valueOf(f).split(',').some((e) => e.trim() === '')),
  },
  'Transfer-Encoding on HTTP/1.0': {
    rfc: 'RFC 9112 §6.1',
    vector: 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    applies: (r) => r.inHead && r.head.version === 'HTTP/1.0' && fieldsNamed(r.head, 'transfer-encoding').length > 0,
  },
  'fragment in target': {
    rfc: 'RFC 9112 §3.2',
    vector: 'GET /#a HTTP/1.1\r\nHost: h\r\n\r\n',
    applies: (r) => r.inHead && r.head.target.includes('#'),
  },
  // asterisk-form is a lone "*", and only for OPTIONS (llhttp takes "*aa", and "*" for GET).
  'asterisk-form other than a lone * for OPTIONS': {
    rfc: 'RFC 9112 §3.2.4',
    vector: 'GET * HTTP/1.1\r\nHost: h\r\n\r\n',
    applies: (r) => r.inHead && r.head.target.startsWith('*') && (r.head.method !== 'OPTIONS' || r.head.target !== '*'),
  },
  // Exactly one SP between the request-line parts (llhttp skips extra spaces).
  'extra space in request line': {
    rfc: 'RFC 9112 §3',
    vector: 'GET  / HTTP/1.1\r\nHost: h\r\n\r\n',
    applies: (r) => r.inHead && (r.head.requestLine.includes('  ') || r.head.requestLine.startsWith(' ')),
  },
  // Only in the refused message's head bytes: a bare CR or LF there (llhttp takes a bare LF
  // before the request line, and some bare CRs in values).
  'bare CR or LF in the head': {
    rfc: 'RFC 9112 §2.2',
    vector: '\nGET / HTTP/1.1\r\nHost: h\r\n\r\n',
    applies: (r) => r.inHead && /(^|[^\r])\n|\r(?!\n)/.test(r.text.slice(0, headEnd(r.text))),
  },
  // chunk-ext-name is a token, chunk-ext-val a token or quoted-string; llhttp lets through
  // some malformed ones (an empty name). Only the chunk-size line we refused is looked at.
  'malformed chunk extension': {
    rfc: 'RFC 9112 §7.1.1',
    vector: 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;=b\r\na\r\n0\r\n\r\n',
    applies: (r) => !r.inHead && /(^|\r\n)[0-9A-Fa-f]+[ \t]*;[^\r\n]*\r?$/.test(r.text.slice(headEnd(r.text))),
  },
  // Raw llhttp has no limits; ours refuse a declared or decoded body over --max-body (413),
  // and a head or request line over its limit (431/414). Generated heads stay far below
  // (checked below), so only a declared size (a flipped Content-Length or chunk-size digit)
  // gets here.
  'over one of our limits': {
    rfc: 'RFC 9110 §15.5.14, RFC 9112 §3 (414), RFC 6585 §5 (431)',
    vector: 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999\r\n\r\n',
    applies: (r) => r.status === 413 || r.status === 414 || r.status === 431,
  },
  // An absolute-form with an empty host or userinfo (llhttp accepts both).
  'absolute-form authority': {
    rfc: 'RFC 9110 §4.2.1, §4.2.4',
    vector: 'GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n',
    applies: (r) => r.inHead && /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*@|[/?#]|$)/.test(r.head.target),
  },
};

/** Where the head of a region ends (its blank line), or its length when it has none yet. */
function headEnd(text: string): number {
  let start = 0;
  while (text[start] === '\r' || text[start] === '\n') start++;
  const end = text.indexOf('\r\n\r\n', start);
  return end === -1 ? text.length : end + 4;
}

/** We accept, llhttp rejects, because an RFC requires us to. The region is the message llhttp refused. */
const RFC_MANDATED: Record<string, Klass> = {
  // method = token; a server answers an unknown method 501 (§15.6.2), which it cannot do if
  // the parser refuses it with 400 as llhttp does (it knows a fixed list).
  'extension method': {
    rfc: 'RFC 9110 §9.1, §15.6.2',
    vector: 'FOO / HTTP/1.1\r\nHost: h\r\n\r\n',
    applies: (r) => /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(r.head.method) && !KNOWN_METHODS.has(r.head.method),
  },
  // absolute-form = absolute-URI, which needs no "//authority"; a server MUST accept it.
  'absolute-form without //authority': {
    rfc: 'RFC 9112 §3.2.2, RFC 3986 §4.3',
    vector: 'GET a:b HTTP/1.1\r\nHost: h\r\n\r\n',
    applies: (r) => /^[A-Za-z][A-Za-z0-9+.-]*:(?!\/\/)/.test(r.head.target),
  },
  // chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ), and a recipient
  // MUST parse and remove BWS; llhttp refuses a space after the chunk size or around ";" and
  // "=". Framing-adjacent, but the size itself is unambiguous: a space after it can only be
  // followed by an extension (ours refuses "1 " without one: see parser-vectors.ts).
  'BWS in a chunk extension': {
    rfc: 'RFC 9112 §7.1.1, RFC 9110 §5.6.3',
    vector: 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1 ; a = b\r\na\r\n0\r\n\r\n',
    applies: (r) => !r.inHead && /(^|\r\n)[0-9A-Fa-f]+[^\r\n]*[ \t]$/.test(r.text.slice(headEnd(r.text))),
  },
};

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE']);

/**
 * We accept, llhttp rejects, and no RFC requires us to: bugs in src/http/parser.ts, reported
 * to be fixed there (each makes us more lenient than llhttp in a message-framing field, which
 * is what request smuggling feeds on). When the parser is fixed, its vector test below fails:
 * delete the class then.
 */
const KNOWN_BUG: Record<string, Klass> = {
  // None open. Fixed, now vectors in parser-vectors.ts: an empty element in the
  // Transfer-Encoding list, and a trailing HTAB in Content-Length or Transfer-Encoding.
};

/** Both reject, with different statuses. The region is the message we refused. */
const STATUS: Record<string, Klass & { ours: number; llhttp: number }> = {
  // "chunked" not final: RFC 9112 §6.3 says 400, §6.1 says a coding we do not understand
  // SHOULD get 501; we answer 501 (like nginx), llhttp's code maps to 400.
  'unknown transfer coding: 501, not 400': {
    rfc: 'RFC 9112 §6.1',
    ours: 501,
    llhttp: 400,
    vector: 'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n',
    applies: (r) => r.inHead && fieldsNamed(r.head, 'transfer-encoding').length > 0,
  },
  // We check the version before llhttp's later complaint about the same request line.
  'unsupported version found first: 505, not 400': {
    rfc: 'RFC 9110 §15.6.6',
    ours: 505,
    llhttp: 400,
    vector: 'GET / HTTP/2.0\r\nHost: h\r\nX y: z\r\n\r\n',
    applies: (r) => r.inHead && /^HTTP\/\d\.\d$/.test(r.head.version) && !/^HTTP\/1\.[01]$/.test(r.head.version),
  },
};

/**
 * Both accept, heads differ in keepAlive only: llhttp does not treat HTAB as OWS inside the
 * Connection list ("Keep-Alive\t, TE"); RFC 9110 §5.6.1 says it is, as we do. Not a leniency:
 * both accept the same bytes; only the persistence decision differs.
 */
const TABBED_CONNECTION = {
  name: 'HTAB inside the Connection list (llhttp misreads keepAlive)',
  rfc: 'RFC 9110 §5.6.1, §5.6.3',
  vector: 'GET / HTTP/1.0\r\nConnection: keep-alive\t, TE\r\n\r\n',
};

// --- the comparison -------------------------------------------------------------------------

const seen = new Map<string, number>();
const bump = (name: string): void => {
  seen.set(name, (seen.get(name) ?? 0) + 1);
};

function matching(classes: Record<string, Klass>, region: { text: string; inHead: boolean; rest: string }, status: number | null): string[] {
  const r: Region = { text: region.text, inHead: region.inHead, head: headOf(region.rest), status };
  return Object.keys(classes).filter((name) => classes[name]!.applies(r));
}

function compare(text: string, splits: number[] = []): void {
  const input = Buffer.from(text, 'latin1');
  const show = JSON.stringify(text);
  // Ours, whole and split: the same outcome whichever way the bytes arrive.
  const ours = side(createMuxdParser, [input]);
  if (splits.length > 0) {
    const split = side(createMuxdParser, splitAt(input, splits));
    assert.deepEqual(split, ours, `ours split at ${JSON.stringify(splits.map((p) => p % (input.length + 1)))} differs from whole for ${show}`);
  }
  const ref = side(createRawLlhttpParser, [input]);
  // "Accepts" means: took every byte without refusing. A message still in its body counts as
  // accepted (its head was), one still in its head does not count yet.
  const oursOk = ours.status === null;
  const refOk = ref.status === null;

  if (oursOk && refOk) {
    // llhttp's validating pass can accept a partial head that we hold, or the reverse, only
    // at the very end: compare the completed messages, then the waiting state.
    assert.equal(ours.messages.length, ref.messages.length, `message count for ${show}`);
    const tabbed = /^connection:[^\r]*\t/im.test(text);
    if (tabbed) bump(TABBED_CONNECTION.name);
    for (let i = 0; i < ours.messages.length; i++) {
      const mine = ours.messages[i]!.head;
      const theirs = { ...ref.messages[i]!.head };
      if (tabbed) theirs.keepAlive = mine.keepAlive;
      assert.deepEqual(mine, theirs, `head ${i} of ${show}`);
      assert.equal(ours.messages[i]!.body, ref.messages[i]!.body, `body ${i} of ${show}`);
    }
    assert.equal(ours.inBody, ref.inBody, `waiting in a body for ${show}`);
    bump('both accept, same messages');
    return;
  }

  if (!oursOk && !refOk) {
    // Messages before the refused one must agree as well.
    const done = Math.min(ours.messages.length, ref.messages.length);
    for (let i = 0; i < done; i++) {
      if (i === ref.messages.length - 1 && ref.code === 'HPE_INVALID_TRANSFER_ENCODING') break; // llhttp refuses after onHead
      assert.deepEqual(ours.messages[i]!.head, ref.messages[i]!.head, `head ${i} before both refuse ${show}`);
    }
    if (ref.status === -1) {
      bump(`both reject, llhttp code maps to no status: ${ref.code}`);
      return;
    }
    if (ours.status === ref.status) {
      bump('both reject, same status');
      return;
    }
    const region = rejectedRegion(createMuxdParser, input);
    const named = matching(STATUS, region, ours.status).filter((n) => STATUS[n]!.ours === ours.status && STATUS[n]!.llhttp === ref.status);
    // Both refuse, for different reasons in one message: the one we found first decides our
    // status; that is a stricter-than-llhttp reason of ours when llhttp would accept it alone.
    const stricter = named.length > 0 ? [] : matching(OURS_STRICTER, region, ours.status);
    // A known bug of ours (we take the head, llhttp does not) shows up here when the body that
    // follows is then refused by us for another reason.
    const bugs = named.length + stricter.length > 0 ? [] : matching(KNOWN_BUG, region, ours.status);
    assert.ok(
      named.length + stricter.length + bugs.length > 0,
      `both reject, statuses differ: ours ${ours.status}, llhttp ${ref.status} (${ref.code}) for ${show}`,
    );
    for (const n of named) bump(`status: ${n}`);
    for (const n of stricter) bump(`status (we refuse first): ${n}`);
    for (const n of bugs) bump(`status (KNOWN BUG): ${n}`);
    return;
  }

  if (!oursOk) {
    // We reject, llhttp accepts (or holds an incomplete message): a stricter rule of ours.
    const region = rejectedRegion(createMuxdParser, input);
    const named = matching(OURS_STRICTER, region, ours.status);
    assert.ok(named.length > 0, `unexplained: ours ${ours.status}, llhttp accepts (${ref.messages.length} msgs) for ${show}; we refused in ${JSON.stringify(region.text)}`);
    for (const n of named) bump(`ours stricter: ${n}`);
    return;
  }

  // We accept, llhttp rejects.
  if (ours.inHead && ours.messages.length === ref.messages.length) {
    // We have not judged the refused message yet: we validate a head once its blank line is in,
    // llhttp as the bytes come. Not a leniency: we have not accepted it. Check that we refuse
    // it once it ends.
    const ended = side(createMuxdParser, [input, Buffer.from('\r\n\r\n')]);
    if (ended.status !== null && ended.messages.length === ref.messages.length) {
      bump('llhttp refuses earlier; ours refuses once the head ends');
      return;
    }
  }
  const region = rejectedRegion(createRawLlhttpParser, input);
  const mandated = matching(RFC_MANDATED, region, ours.status);
  const bugs = matching(KNOWN_BUG, region, ours.status);
  assert.ok(
    mandated.length + bugs.length > 0,
    `ours MORE LENIENT: ours accepts, llhttp ${ref.status} (${ref.code}) for ${show}; llhttp refused in ${JSON.stringify(region.text)}`,
  );
  for (const n of mandated) bump(`RFC-mandated: ${n}`);
  for (const n of bugs) bump(`KNOWN BUG: ${n}`);
}

// --- generated requests ---------------------------------------------------------------------

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'];
const NAMES = ['Accept', 'accept-encoding', 'User-Agent', 'X-Trace', 'If-None-Match', 'Range', 'Cookie', 'x-a.b_c~d'];

const pathChar = fc.constantFrom(...'abcxyz0189-._~!$&\'()*+,;=:@/%?'.split(''));
const target = fc.array(pathChar, { maxLength: 12 }).map((cs) => `/${cs.join('')}`);
const valueChar = fc.constantFrom(...'abc XYZ019"(),/:;<=>?@[]{}\t'.split(''));
const value = fc.array(valueChar, { maxLength: 16 }).map((cs) => cs.join(''));
const field = fc.tuple(fc.constantFrom(...NAMES), value).map(([n, v]) => `${n}: ${v}\r\n`);
const bodyText = fc.array(fc.constantFrom(...'abc\r\n0;'.split('')), { maxLength: 20 }).map((cs) => cs.join(''));

const request = fc
  .record({
    method: fc.constantFrom(...METHODS),
    target,
    minor: fc.constantFrom(0, 1),
    fields: fc.array(field, { maxLength: 5 }),
    hostAt: fc.nat(5),
    connection: fc.constantFrom('', 'Connection: close\r\n', 'Connection: keep-alive\r\n', 'Connection: Keep-Alive, TE\r\n'),
    body: fc.oneof(fc.constant(null), fc.record({ chunks: fc.array(bodyText, { maxLength: 3 }), chunked: fc.boolean(), ext: fc.constantFrom('', ';a=b', ';q="x y"', ' ;a') })),
  })
  .map((r) => {
    const fields = [...r.fields];
    if (r.minor === 1 || r.hostAt % 2 === 0) fields.splice(Math.min(r.hostAt, fields.length), 0, 'Host: example.com\r\n');
    fields.push(r.connection);
    let body = '';
    if (r.body !== null) {
      if (r.body.chunked && r.minor === 1) {
        fields.push('Transfer-Encoding: chunked\r\n');
        const ext = r.body.ext;
        body = r.body.chunks.filter((c) => c.length > 0).map((c) => `${c.length.toString(16)}${ext}\r\n${c}\r\n`).join('') + '0\r\n\r\n';
      } else {
        const text = r.body.chunks.join('');
        fields.push(`Content-Length: ${text.length}\r\n`);
        body = text;
      }
    }
    return `${r.method} ${r.target} HTTP/1.${r.minor}\r\n${fields.join('')}\r\n${body}`;
  });

const pipeline = fc.array(request, { minLength: 1, maxLength: 3 }).map((rs) => ({ text: rs.join(''), count: rs.length }));

const NASTY = ['\r', '\n', '\x00', ' ', '\t', ':', '\x7f', '\xe9', '#', ',', '\x01'];
/** Values for the framing fields, where a difference is a smuggling risk. */
const FRAMING = [
  'Content-Length: 5, 5',
  'Content-Length: 05',
  'Content-Length: +5',
  'Content-Length:  5 ',
  'Content-Length: 5\t',
  'Content-Length:\t5',
  'Transfer-Encoding: chunked, chunked',
  'Transfer-Encoding: gzip, chunked',
  'Transfer-Encoding: Chunked',
  'Transfer-Encoding:  chunked ',
  'Transfer-Encoding: identity',
  'Transfer-Encoding: xchunked',
  'Transfer-Encoding: chunked\t',
  'Transfer-Encoding: chunked ,',
  'Transfer-Encoding: ,chunked',
];

/** One mutation of a valid request; each is a way real attacks and bugs look. */
const mutated = fc
  .tuple(request, fc.nat(), fc.nat(), fc.constantFrom(...NASTY), fc.nat(9), fc.constantFrom(...FRAMING))
  .map(([text, at, at2, nasty, kind, framing]) => {
    const i = at % (text.length + 1);
    const j = at2 % (text.length + 1);
    switch (kind) {
      case 0: // flip one byte
        return text.slice(0, i) + String.fromCharCode((text.charCodeAt(i) ^ (1 << (j % 8))) & 0xff) + text.slice(i + 1);
      case 1: // insert a nasty byte
        return text.slice(0, i) + nasty + text.slice(i);
      case 2: // delete a byte
        return text.slice(0, i) + text.slice(i + 1);
      case 3: {
        // duplicate a field line
        const lines = text.split('\r\n');
        const k = 1 + (i % Math.max(1, lines.indexOf('') - 1));
        if (lines[k] !== undefined && lines[k] !== '') lines.splice(k, 0, lines[k]!);
        return lines.join('\r\n');
      }
      case 4: // CL and TE together
        return text.replace('\r\n', '\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n');
      case 5: // another version
        return text.replace(/HTTP\/1\.[01]/, `HTTP/${j % 10}.${i % 10}`);
      case 6: // remove Host
        return text.replace('Host: example.com\r\n', '');
      case 7: // bare LF for CRLF somewhere
        return text.slice(0, i) + text.slice(i).replace('\r\n', '\n');
      case 8: // an odd framing field, replacing the real one or added
        return /^(content-length|transfer-encoding):.*$/im.test(text)
          ? text.replace(/^(content-length|transfer-encoding):.*$/im, framing)
          : text.replace('\r\n', `\r\n${framing}\r\n`);
      default: // a second Host
        return text.replace('\r\n', '\r\nHost: other\r\n');
    }
  });

const splits = fc.array(fc.nat(), { minLength: 1, maxLength: 6 });

// Fixed seeds: CI sees the same inputs every run; change a seed to explore (and pin what it finds
// as a vector). The counts keep the file well under 30 s on a loaded 2-core box.
// DIFF_SEED / DIFF_RUNS override them for exploration (not in CI).
const SEED_VALID = Number(process.env['DIFF_SEED'] ?? 0x6d757864);
const SEED_MUTATED = Number(process.env['DIFF_SEED'] ?? 0x6c6c6874);
const MUTATED_RUNS = Number(process.env['DIFF_RUNS'] ?? 3000);

describe('differential: muxd vs raw llhttp', () => {
  it('generated inputs stay below our limits (so no limit of ours decides a comparison)', () => {
    fc.assert(
      fc.property(mutated, (text) => {
        assert.ok(text.length < DEFAULT_PARSER_LIMITS.maxRequestLine && text.length < DEFAULT_PARSER_LIMITS.maxBodyBytes);
        assert.ok(text.split('\n').length < DEFAULT_PARSER_LIMITS.maxHeaders);
      }),
      { numRuns: 200, seed: SEED_MUTATED },
    );
  });

  it('agree on generated valid requests (pipelined, with bodies), fed whole and split', () => {
    fc.assert(
      fc.property(pipeline, splits, ({ text, count }, points) => {
        const ours = side(createMuxdParser, [Buffer.from(text, 'latin1')]);
        // Generated 1.1 requests always carry one Host; 1.0 ones at most one: all valid.
        assert.equal(ours.status, null, `ours rejects ${JSON.stringify(text)}: ${ours.status}`);
        assert.equal(ours.messages.length, count);
        compare(text, points);
      }),
      { numRuns: 400, seed: SEED_VALID },
    );
  });

  it('agree on mutated requests, fed whole and split, except in named classes', (t) => {
    seen.clear();
    fc.assert(
      fc.property(mutated, splits, (text, points) => compare(text, points)),
      { numRuns: MUTATED_RUNS, seed: SEED_MUTATED },
    );
    t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries([...seen].sort((a, b) => b[1] - a[1])))}`);
    // The mutations must exercise every side of the comparison.
    assert.ok((seen.get('both accept, same messages') ?? 0) > 300);
    assert.ok((seen.get('both reject, same status') ?? 0) > 300);
    assert.ok([...seen.keys()].some((k) => k.startsWith('ours stricter:')));
  });

  it('llhttp error codes map to the status a server sends', () => {
    assert.equal(llhttpErrorStatus('HPE_INVALID_VERSION', 'Invalid HTTP version'), 505);
    assert.equal(llhttpErrorStatus('HPE_INVALID_VERSION', 'Expected dot'), 400);
    assert.equal(llhttpErrorStatus('HPE_INVALID_METHOD', 'Invalid method encountered'), 400);
    assert.equal(llhttpErrorStatus('HPE_INVALID_TRANSFER_ENCODING', ''), 400);
    assert.equal(llhttpErrorStatus('HPE_HEADER_OVERFLOW', ''), 431);
    assert.equal(llhttpErrorStatus('HPE_PAUSED_UPGRADE', ''), null);
    assert.equal(llhttpErrorStatus('HPE_CLOSED_CONNECTION', ''), null);
  });
});

// --- every named class, on its own vector ---------------------------------------------------

function outcomeOf(factory: ParserFactory, text: string): Side {
  return side(factory, [Buffer.from(text, 'latin1')]);
}

describe('differential: the named classes, each on its own vector', () => {
  for (const [name, k] of Object.entries(OURS_STRICTER)) {
    it(`ours stricter: ${name} (${k.rfc})`, () => {
      assert.notEqual(outcomeOf(createMuxdParser, k.vector).status, null, 'ours rejects');
      const ref = outcomeOf(createRawLlhttpParser, k.vector);
      assert.equal(ref.status, null, `llhttp accepts (${ref.code})`);
      const region = rejectedRegion(createMuxdParser, Buffer.from(k.vector, 'latin1'));
      const status = outcomeOf(createMuxdParser, k.vector).status;
      assert.ok(k.applies({ text: region.text, inHead: region.inHead, head: headOf(region.rest), status }), 'the class recognises its vector');
      compare(k.vector);
    });
  }

  for (const [name, k] of Object.entries(STATUS)) {
    it(`status: ${name} (${k.rfc})`, () => {
      assert.equal(outcomeOf(createMuxdParser, k.vector).status, k.ours);
      assert.equal(outcomeOf(createRawLlhttpParser, k.vector).status, k.llhttp);
      compare(k.vector);
    });
  }

  for (const [name, k] of Object.entries(RFC_MANDATED)) {
    it(`RFC-mandated leniency: ${name} (${k.rfc})`, () => {
      assert.equal(outcomeOf(createMuxdParser, k.vector).status, null, 'ours accepts');
      assert.notEqual(outcomeOf(createRawLlhttpParser, k.vector).status, null, 'llhttp rejects');
      compare(k.vector);
    });
  }

  for (const [name, k] of Object.entries(KNOWN_BUG)) {
    it(`KNOWN BUG in parser.ts, to fix: ${name}`, () => {
      // When this fails because ours now rejects: the bug is fixed, delete the class.
      assert.equal(outcomeOf(createMuxdParser, k.vector).status, null, 'ours (still) accepts: the bug');
      assert.notEqual(outcomeOf(createRawLlhttpParser, k.vector).status, null, 'llhttp rejects');
      compare(k.vector);
    });
  }

  it(`both accept: ${TABBED_CONNECTION.name} (${TABBED_CONNECTION.rfc})`, () => {
    const ours = outcomeOf(createMuxdParser, TABBED_CONNECTION.vector);
    const ref = outcomeOf(createRawLlhttpParser, TABBED_CONNECTION.vector);
    assert.equal(ours.messages[0]?.head.keepAlive, true);
    assert.equal(ref.messages[0]?.head.keepAlive, false);
    compare(TABBED_CONNECTION.vector);
  });

  it('no class lets us accept what llhttp rejects, except the RFC-mandated ones and the known bugs', () => {
    // The only leniency classes are listed here, each with its RFC section (or "none" for a bug).
    assert.deepEqual(Object.keys(RFC_MANDATED).sort(), ['BWS in a chunk extension', 'absolute-form without //authority', 'extension method']);
    for (const k of Object.values(RFC_MANDATED)) assert.match(k.rfc, /^RFC \d+ §/);
    for (const k of Object.values(KNOWN_BUG)) assert.match(k.rfc, /^none/);
    // The stricter and status classes never accept: their vectors are refused by ours.
    for (const k of [...Object.values(OURS_STRICTER), ...Object.values(STATUS)]) assert.notEqual(outcomeOf(createMuxdParser, k.vector).status, null);
  });

  it('the bare-CR/LF excuse looks only at the refused head, not at a body', () => {
    // A body with bare LFs is fine; a disagreement elsewhere in that request is not excused by it.
    const text = 'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\na\nb';
    const region = rejectedRegion(createMuxdParser, Buffer.from(text + 'GET / HTTP/1.1\r\n\r\n', 'latin1'));
    assert.equal(region.text, 'GET / HTTP/1.1\r\n\r\n');
    assert.equal(OURS_STRICTER['bare CR or LF in the head']!.applies({ ...region, head: headOf(region.rest), status: 400 }), false);
  });
});

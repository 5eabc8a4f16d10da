// Our HTTP/1.1 request parser: every named vector three ways (whole, one byte at a time,
// with trailing bytes left unconsumed), then the behaviours a table cannot express.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMuxdParser } from '../../src/http/parser.js';
import { DEFAULT_PARSER_LIMITS } from '../../src/http/types.js';
import { checkVector, runPieces, VECTORS } from './parser-vectors.js';

describe('muxd parser: vectors', () => {
  for (const v of VECTORS) {
    it(v.name, () => checkVector(createMuxdParser, v));
  }
});

describe('muxd parser: behaviour', () => {
  const get = Buffer.from('GET / HTTP/1.1\r\nHost: h\r\n\r\n');

  it('an incomplete head or body is not an error', () => {
    const events: string[] = [];
    const p = createMuxdParser(DEFAULT_PARSER_LIMITS, {
      onHead: () => events.push('head'),
      onBody: (b) => events.push(`body:${b.toString()}`),
      onComplete: () => events.push('complete'),
    });
    assert.equal(p.inHead, false);
    const part1 = Buffer.from('POST / HTTP/1.1\r\nHost: h\r\nCont');
    assert.equal(p.execute(part1), part1.length);
    assert.equal(p.inHead, true);
    assert.equal(p.error, null);
    const part2 = Buffer.from('ent-Length: 4\r\n\r\nab');
    assert.equal(p.execute(part2), part2.length);
    assert.equal(p.inHead, false);
    assert.equal(p.inBody, true);
    assert.deepEqual(events, ['head', 'body:ab']);
    assert.equal(p.execute(Buffer.from('cd')), 2);
    assert.equal(p.inBody, false);
    assert.deepEqual(events, ['head', 'body:ab', 'body:cd', 'complete']);
  });

  it('a leading CR alone counts as a head in progress (head timeout applies)', () => {
    const p = createMuxdParser(DEFAULT_PARSER_LIMITS, { onHead() {}, onBody() {}, onComplete() {} });
    assert.equal(p.execute(Buffer.from('\r')), 1);
    assert.equal(p.inHead, true);
  });

  it('leading empty lines count as a head in progress until the request that follows them is whole', () => {
    const p = createMuxdParser(DEFAULT_PARSER_LIMITS, { onHead() {}, onBody() {}, onComplete() {} });
    assert.equal(p.execute(Buffer.from('\r\n\r\n')), 4);
    assert.equal(p.inHead, true, 'blank lines alone must not let a client idle past the head deadline');
    const req = Buffer.from('GET / HTTP/1.1\r\nHost: h\r\n\r\n');
    assert.equal(p.execute(req), req.length);
    assert.equal(p.inHead, false);
  });

  it('pause() in onHead returns right after the head; resume() continues with the body', () => {
    const input = Buffer.from('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc');
    const headLen = input.length - 3;
    let body = '';
    let completes = 0;
    const p = createMuxdParser(DEFAULT_PARSER_LIMITS, {
      onHead: () => p.pause(),
      onBody: (b) => (body += b.toString()),
      onComplete: () => completes++,
    });
    assert.equal(p.execute(input), headLen);
    assert.equal(body, '');
    p.resume();
    assert.equal(p.execute(input.subarray(headLen)), 3);
    assert.equal(body, 'abc');
    assert.equal(completes, 1);
  });

  it('pause() in onHead of a bodiless request still completes it (no byte lies between)', () => {
    const input = Buffer.concat([get, get]);
    let completes = 0;
    const p = createMuxdParser(DEFAULT_PARSER_LIMITS, { onHead: () => p.pause(), onBody() {}, onComplete: () => completes++ });
    assert.equal(p.execute(input), get.length);
    assert.equal(completes, 1);
    p.resume();
    assert.equal(p.execute(input.subarray(get.length)), get.length);
    assert.equal(completes, 2);
  });

  it('pause() in onBody stops inside a chunked body and resumes there', () => {
    const input = Buffer.from('POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n');
    const pieces: string[] = [];
    let completes = 0;
    const p = createMuxdParser(DEFAULT_PARSER_LIMITS, {
      onHead() {},
      onBody: (b) => {
        pieces.push(b.toString());
        p.pause();
      },
      onComplete: () => completes++,
    });
    let offset = 0;
    let rounds = 0;
    while (offset < input.length) {
      const n = p.execute(input.subarray(offset));
      assert.ok(n >= 0);
      offset += n;
      p.resume();
      assert.ok(++rounds < 10);
    }
    assert.deepEqual(pieces, ['ab', 'cd']);
    assert.equal(completes, 1);
    assert.equal(rounds, 3);
  });

  it('pause() in onComplete bounds pipelined work to one request per execute', () => {
    const input = Buffer.concat([get, get, get]);
    let heads = 0;
    const p = createMuxdParser(DEFAULT_PARSER_LIMITS, { onHead: () => heads++, onBody() {}, onComplete: () => p.pause() });
    assert.equal(p.execute(input), get.length);
    assert.equal(heads, 1);
    p.resume();
    assert.equal(p.execute(input.subarray(get.length)), get.length);
    assert.equal(heads, 2);
  });

  it('body pieces are views of the input, not copies', () => {
    const input = Buffer.from('POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc');
    let seen: Buffer | null = null;
    const p = createMuxdParser(DEFAULT_PARSER_LIMITS, { onHead() {}, onBody: (b) => (seen = b), onComplete() {} });
    p.execute(input);
    assert.ok(seen !== null);
    assert.equal((seen as Buffer).buffer, input.buffer);
  });

  it('after an error the parser refuses everything', () => {
    const p = createMuxdParser(DEFAULT_PARSER_LIMITS, { onHead() {}, onBody() {}, onComplete() {} });
    assert.equal(p.execute(Buffer.from('GET / HTTP/1.1\r\n\r\n')), -1);
    assert.equal(p.error?.status, 400);
    assert.equal(p.execute(get), -1);
  });

  it('a 16 KiB head fed one byte at a time parses (the scan resumes, never restarts)', () => {
    const fields: string[] = [];
    for (let i = 0; i < 400; i++) fields.push(`X-Field-${i}: ${'v'.repeat(20)}\r\n`);
    const head = `GET / HTTP/1.1\r\nHost: h\r\n${fields.join('')}\r\n`;
    assert.ok(head.length > 12 * 1024 && head.length <= 16 * 1024);
    const bytes = Buffer.from(head);
    const pieces: Buffer[] = [];
    for (let i = 0; i < bytes.length; i++) pieces.push(bytes.subarray(i, i + 1));
    const run = runPieces(createMuxdParser, { ...DEFAULT_PARSER_LIMITS, maxHeaders: 1000 }, pieces);
    assert.equal(run.status, null);
    assert.equal(run.messages.length, 1);
    assert.equal(run.messages[0]!.head.headers.length, 2 * 401);
    assert.equal(run.messages[0]!.head.headers.at(-1), 'v'.repeat(20));
  });

  it('interns known methods and field names', () => {
    const heads: { method: string; headers: string[] }[] = [];
    const p = createMuxdParser(DEFAULT_PARSER_LIMITS, { onHead: (h) => heads.push(h), onBody() {}, onComplete() {} });
    p.execute(Buffer.from('GET / HTTP/1.1\r\nHOST: h\r\nIf-Modified-Since: x\r\n\r\n'));
    assert.equal(heads[0]!.method, 'GET');
    assert.deepEqual(heads[0]!.headers, ['host', 'h', 'if-modified-since', 'x']);
  });
});

// Valid requests split at every byte position (and some at two) must parse exactly as when
// they arrive whole, for our parser and for the llhttp reference adapter.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLlhttpParser } from '../../src/http/llhttp-parser.js';
import { createMuxdParser } from '../../src/http/parser.js';
import { DEFAULT_PARSER_LIMITS, type ParserFactory } from '../../src/http/types.js';
import { runPieces } from './parser-vectors.js';

const CASES: { name: string; input: string }[] = [
  { name: 'GET with leading empty line', input: '\r\nGET /index.html?q=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: */*\r\nX-Latin: caf\xe9\r\n\r\n' },
  { name: 'Content-Length body', input: 'POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello world' },
  {
    name: 'chunked with extensions and trailers',
    input: 'POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n1;q="x\\"y"\r\n \r\n5\r\nworld\r\n0\r\nExpires: never\r\n\r\n',
  },
  {
    name: 'pipelined GET, POST, chunked POST, HTTP/1.0',
    input:
      'GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nxy' +
      'POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n',
  },
];

interface Outcome {
  status: number | null;
  messages: { head: unknown; body: string }[];
}

function outcome(factory: ParserFactory, pieces: Buffer[]): Outcome {
  const run = runPieces(factory, DEFAULT_PARSER_LIMITS, pieces);
  for (let i = 0; i < pieces.length; i++) assert.equal(run.returned[i], pieces[i]!.length, `piece ${i} fully consumed`);
  run.parser.destroy();
  return { status: run.status, messages: run.messages.map((m) => ({ head: { ...m.head }, body: m.body })) };
}

const PARSERS: [string, ParserFactory][] = [
  ['muxd', createMuxdParser],
  ['llhttp', createLlhttpParser],
];

for (const [parserName, factory] of PARSERS) {
  describe(`${parserName} parser: split at every byte`, () => {
    for (const c of CASES) {
      const input = Buffer.from(c.input, 'latin1');
      const whole = outcome(factory, [input]);

      it(`${c.name}: whole parses`, () => {
        assert.equal(whole.status, null);
        assert.ok(whole.messages.length >= 1);
      });

      it(`${c.name}: two pieces, every split point`, () => {
        for (let i = 1; i < input.length; i++) {
          const got = outcome(factory, [input.subarray(0, i), input.subarray(i)]);
          assert.deepEqual(got, whole, `split at ${i}`);
        }
      });

      it(`${c.name}: three pieces`, () => {
        const step = parserName === 'muxd' ? 3 : 11;
        for (let i = 1; i < input.length; i++) {
          for (let j = i + 1; j < input.length; j += step) {
            const got = outcome(factory, [input.subarray(0, i), input.subarray(i, j), input.subarray(j)]);
            assert.deepEqual(got, whole, `split at ${i} and ${j}`);
          }
        }
      });
    }
  });
}

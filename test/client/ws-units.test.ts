// The client's own WebSocket pieces, without sockets: the response-head reader (whole, split at
// every byte, with the first WebSocket bytes behind it) and the masked message a frame is sent as.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { ResponseHeadReader, WsTransport, type HeadResult } from '../../src/client/ws.js';
import { encodeFrame } from '../../src/wire/frame.js';
import { WsReceiver } from '../../src/ws/receiver.js';

const HEAD =
  'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: mx1\r\n\r\n';
const HEADERS = [
  ['upgrade', 'websocket'],
  ['connection', 'Upgrade'],
  ['sec-websocket-accept', 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='],
  ['sec-websocket-protocol', 'mx1'],
];

/**
 * Feeds the pieces until the reader decides; a head's `rest` then also gets the pieces not fed
 * (a driver hands those straight to the WebSocket receiver), so it is every byte after the head.
 */
function feed(pieces: Buffer[], max?: number): HeadResult {
  const r = new ResponseHeadReader(max);
  let last: HeadResult = { kind: 'more' };
  for (let i = 0; i < pieces.length; i++) {
    last = r.push(pieces[i]!);
    if (last.kind === 'head') return { ...last, rest: Buffer.concat([last.rest, ...pieces.slice(i + 1)]) };
    if (last.kind !== 'more') return last;
  }
  return last;
}

test('response head: whole, split at every byte, and with the first WebSocket bytes behind it', () => {
  const trailing = Buffer.from([0x82, 0x00, 0x89, 0x01, 0x41]);
  for (const extra of [Buffer.alloc(0), trailing]) {
    const bytes = Buffer.concat([Buffer.from(HEAD, 'latin1'), extra]);
    const splits: Buffer[][] = [[bytes]];
    for (let i = 1; i < bytes.length; i++) splits.push([bytes.subarray(0, i), bytes.subarray(i)]);
    // A byte at a time, too.
    splits.push([...bytes].map((b) => Buffer.from([b])));
    for (const pieces of splits) {
      const r = feed(pieces);
      assert.equal(r.kind, 'head', `split ${pieces.map((p) => p.length).join('+')}`);
      if (r.kind !== 'head') continue;
      assert.equal(r.head.status, 101);
      assert.deepEqual(r.head.headers, HEADERS);
      // Bytes after the blank line are the WebSocket's: never lost, never read as head.
      assert.deepEqual(r.rest, extra);
    }
  }
});

test('response head: bare LF line ends, a status without a reason, refusals', () => {
  const lf = feed([Buffer.from('HTTP/1.1 403\nContent-Length: 3\n\nno\n')]);
  assert.ok(lf.kind === 'head' && lf.head.status === 403 && lf.rest.toString() === 'no\n');
  const bad: [string, RegExp][] = [
    ['SSH-2.0-OpenSSH\r\n\r\n', /not an HTTP\/1.1 response/],
    ['HTTP/1.1 101 OK\r\n folded: x\r\n\r\n', /obsolete line folding/],
    ['HTTP/1.1 101 OK\r\nno colon\r\n\r\n', /malformed header line/],
    ['HTTP/1.1 101 OK\r\nbad name: x\r\n\r\n', /malformed header line/],
    ['HTTP/2 101\r\n\r\n', /not an HTTP\/1.1 response/],
  ];
  for (const [text, re] of bad) {
    const r = feed([Buffer.from(text, 'latin1')]);
    assert.ok(r.kind === 'bad' && re.test(r.reason), `${JSON.stringify(text)}: ${JSON.stringify(r)}`);
  }
});

test('response head: more than the limit without a blank line is refused, whatever the split', () => {
  const long = Buffer.from('HTTP/1.1 101 OK\r\n' + 'X-Pad: ' + 'a'.repeat(300) + '\r\n', 'latin1');
  assert.deepEqual(feed([long], 256), { kind: 'bad', reason: 'response head longer than 256 bytes' });
  assert.deepEqual(feed([...long].map((b) => Buffer.from([b])), 256), { kind: 'bad', reason: 'response head longer than 256 bytes' });
  // At the limit exactly, it is read.
  const exact = Buffer.from('HTTP/1.1 101 OK\r\n\r\n');
  assert.equal(feed([exact], exact.length - 2).kind, 'head');
});

test('send: one masked binary message per MX/1 frame, whatever the part lengths (mask key rotation)', () => {
  const written: Buffer[] = [];
  const fake = { write: (b: Buffer) => (written.push(b), true), setNoDelay: () => fake } as unknown as Socket;
  let counter = 0;
  const t = new WsTransport(fake, Buffer.alloc(0), 'test', {
    maxFrame: 1 << 20,
    closeTimeoutMs: 1000,
    random: (b) => b.fill(++counter * 37),
  });
  const server = new WsReceiver({ role: 'server', maxMessage: 1 << 21 });
  for (const parts of [
    encodeFrame(0x01, 7, Buffer.alloc(0)),
    encodeFrame(0x01, 8, randomBytes(5)),
    encodeFrame(0x01, 9, randomBytes(125)),
    encodeFrame(0x01, 10, randomBytes(70_000)),
    // Parts whose offsets are not multiples of 4: the key must be rotated for each.
    [randomBytes(5), randomBytes(7), randomBytes(33), randomBytes(2)],
  ]) {
    written.length = 0;
    t.send(parts);
    assert.equal(written.length, 1, 'one write per frame');
    const msg = written[0]!;
    assert.equal(msg[0], 0x82, 'FIN + binary');
    assert.ok((msg[1]! & 0x80) !== 0, 'masked');
    server.push(Buffer.from(msg));
    const e = server.next();
    assert.equal(e?.kind, 'message');
    assert.deepEqual(e.kind === 'message' && e.data, Buffer.concat(parts));
    assert.equal(server.next(), null);
  }
});

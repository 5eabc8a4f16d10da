// WsServerConnection: events in, actions out, time passed in (no socket, no timer). A table of
// byte streams and the actions they must give, each fed whole and split at every byte, then
// the close handshake and keepalive timing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ClientFrameEncoder } from '../../src/ws/sender.js';
import { WsServerConnection, type WsAction } from '../../src/ws/connection.js';
import { WsReceiver, type WsEvent } from '../../src/ws/receiver.js';
import { encodeFrame, encodeHeader } from '../../src/wire/frame.js';
import { decodeError } from '../../src/wire/payloads.js';
import { ErrorCode, Type } from '../../src/wire/protocol.js';
import { frame, closeBody } from './build.js';

const MAX = 64;
const mx = (type: number, id: number, payload = ''): Buffer => Buffer.concat(encodeFrame(type, id, Buffer.from(payload)));
const bin = (b: Buffer): Buffer => frame({ opcode: 0x2, payload: b });

/** Reads what the connection wrote, as a browser would: server frames through a client-role receiver. */
type Out =
  | { kind: 'frame'; type: number; id: number; payload: string }
  | { kind: 'sent'; event: string }
  | { kind: 'end' };

function describeSent(e: WsEvent): string {
  switch (e.kind) {
    case 'message': {
      // Our own messages are MX/1 frames: show ERRORs by code.
      const type = e.data[3]!;
      if (type === Type.ERROR) return `mx ERROR ${decodeError(e.data.subarray(12)).code}`;
      return `mx 0x${type.toString(16)}`;
    }
    case 'ping':
    case 'pong':
      return `${e.kind} ${e.payload.toString()}`;
    case 'close':
      return `close ${e.code ?? 'none'}`;
    case 'fail':
      return `INVALID server bytes: ${e.reason}`;
  }
}

function collect(c: WsServerConnection, out: Out[], client: WsReceiver): void {
  for (let a: WsAction | null = c.poll(); a !== null; a = c.poll()) {
    if (a.kind === 'frame') out.push({ kind: 'frame', type: a.type, id: a.id, payload: a.payload.toString() });
    else if (a.kind === 'end') out.push({ kind: 'end' });
    else {
      client.push(Buffer.concat(a.data));
      for (let e = client.next(); e !== null; e = client.next()) out.push({ kind: 'sent', event: describeSent(e) });
    }
  }
}

function run(pieces: Buffer[]): Out[] {
  const c = new WsServerConnection({ maxPayload: MAX, pingIntervalMs: 0, now: 0 });
  const client = new WsReceiver({ role: 'client', maxMessage: 1 << 16 });
  const out: Out[] = [];
  for (const p of pieces) {
    c.receive(Buffer.from(p), 1);
    collect(c, out, client);
  }
  return out;
}

const sent = (event: string): Out => ({ kind: 'sent', event });
const END: Out = { kind: 'end' };

const CASES: { name: string; input: Buffer; want: Out[] }[] = [
  { name: 'one MX/1 PING per message', input: Buffer.concat([bin(mx(Type.PING, 1)), bin(mx(Type.SAY, 2, 'hi'))]), want: [{ kind: 'frame', type: Type.PING, id: 1, payload: '' }, { kind: 'frame', type: Type.SAY, id: 2, payload: 'hi' }] },
  { name: 'a fragmented MX/1 frame is one frame', input: Buffer.concat([frame({ opcode: 2, payload: mx(Type.SAY, 3, 'split').subarray(0, 5), fin: false }), frame({ opcode: 0, payload: mx(Type.SAY, 3, 'split').subarray(5) })]), want: [{ kind: 'frame', type: Type.SAY, id: 3, payload: 'split' }] },
  { name: 'ping answered with the same payload, also between fragments', input: Buffer.concat([frame({ opcode: 2, payload: mx(Type.PING, 4).subarray(0, 3), fin: false }), frame({ opcode: 9, payload: 'p' }), frame({ opcode: 0, payload: mx(Type.PING, 4).subarray(3) })]), want: [sent('pong p'), { kind: 'frame', type: Type.PING, id: 4, payload: '' }] },
  { name: 'unsolicited pong: nothing', input: frame({ opcode: 0xa, payload: 'x' }), want: [] },
  { name: 'peer close echoed with its code, then end', input: frame({ opcode: 8, payload: closeBody(1000, 'bye') }), want: [sent('close 1000'), END] },
  { name: 'empty peer close echoed empty', input: frame({ opcode: 8 }), want: [sent('close none'), END] },
  { name: 'message shorter than its MX/1 header says: ERROR 1 then close 1002', input: bin(mx(Type.SAY, 5, 'abc').subarray(0, 13)), want: [sent('mx ERROR 1'), sent('close 1002'), END] },
  { name: 'message longer than its MX/1 header says: ERROR 1 then close 1002', input: bin(Buffer.concat([mx(Type.PING, 6), Buffer.from('x')])), want: [sent('mx ERROR 1'), sent('close 1002'), END] },
  { name: 'MX/1 length over --max-frame: ERROR 2 then close 1002', input: bin(encodeHeader(Type.SAY, 7, MAX + 1)), want: [sent('mx ERROR 2'), sent('close 1002'), END] },
  { name: 'bad magic: ERROR 1 then close 1002, later frames unread', input: Buffer.concat([bin(Buffer.from('GET / HTTP/1.1\r\n')), bin(mx(Type.PING, 8))]), want: [sent('mx ERROR 1'), sent('close 1002'), END] },
  { name: 'WebSocket message over --max-frame + 12 (a whole frame over the limit): close 1009', input: bin(Buffer.concat([encodeHeader(Type.SAY, 7, MAX + 1), Buffer.alloc(MAX + 1)])), want: [sent('close 1009'), END] },
  { name: 'text: close 1003', input: frame({ opcode: 1, payload: 'hello' }), want: [sent('close 1003'), END] },
  { name: 'unmasked frame: close 1002', input: frame({ opcode: 2, payload: mx(Type.PING, 1), mask: null }), want: [sent('close 1002'), END] },
  { name: 'close reason not UTF-8: close 1007', input: frame({ opcode: 8, payload: closeBody(1000, Buffer.from([0xc0, 0xaf])) }), want: [sent('close 1007'), END] },
];

for (const c of CASES) {
  test(`ws connection: ${c.name}, whole and split at every byte`, () => {
    assert.deepEqual(run([c.input]), c.want, 'whole');
    for (let i = 1; i < c.input.length; i++) assert.deepEqual(run([c.input.subarray(0, i), c.input.subarray(i)]), c.want, `split at ${i}`);
  });
}

test('ws connection: MX/1 ERROR for a bad message carries id 0 and the fatal codes', () => {
  const c = new WsServerConnection({ maxPayload: MAX, pingIntervalMs: 0, now: 0 });
  c.receive(bin(Buffer.from('short')), 0);
  const w = c.poll();
  assert.ok(w !== null && w.kind === 'write');
  const bytes = Buffer.concat(w.data);
  const client = new WsReceiver({ role: 'client', maxMessage: 1000 });
  client.push(bytes);
  const e = client.next();
  assert.ok(e !== null && e.kind === 'message');
  assert.equal(e.data.readUInt32BE(4), 0, 'id 0');
  assert.equal(decodeError(e.data.subarray(12)).code, ErrorCode.BAD_MAGIC_OR_VERSION);
});

test('ws connection: encodeFrame is one binary message [header, ...parts] without copying, null after a close', () => {
  const c = new WsServerConnection({ maxPayload: MAX, pingIntervalMs: 0, now: 0 });
  const parts = encodeFrame(Type.PING_OK, 9, Buffer.from('pong'));
  const out = c.encodeFrame(parts);
  assert.ok(out !== null);
  assert.equal(out.length, 3);
  assert.equal(out[1], parts[0]);
  assert.equal(out[2], parts[1]);
  assert.equal(out[0]!.toString('hex'), '8210');
  c.close(1001, 'server is shutting down', 5);
  assert.equal(c.encodeFrame(parts), null);
});

test('ws connection: graceful close: our 1001, then the peer\'s close ends it; messages after our close are dropped', () => {
  const c = new WsServerConnection({ maxPayload: MAX, pingIntervalMs: 0, now: 0 });
  const client = new WsReceiver({ role: 'client', maxMessage: 1000 });
  const out: Out[] = [];
  c.close(1001, 'server is shutting down', 10);
  collect(c, out, client);
  assert.deepEqual(out, [sent('close 1001')]);
  assert.equal(c.state, 'closing');
  assert.equal(c.nextDeadline(), 10 + 2000);
  c.receive(Buffer.concat([bin(mx(Type.PING, 1)), frame({ opcode: 9, payload: 'late' }), frame({ opcode: 8, payload: closeBody(1001) })]), 20);
  collect(c, out, client);
  assert.deepEqual(out, [sent('close 1001'), END], 'no frame, no pong, no second close');
  assert.equal(c.state, 'closed');
  assert.equal(c.nextDeadline(), null);
});

test('ws connection: graceful close without an answer ends at the close timeout', () => {
  const c = new WsServerConnection({ maxPayload: MAX, pingIntervalMs: 0, closeTimeoutMs: 500, now: 0 });
  c.close(1001, 'bye', 100);
  assert.equal(c.poll()?.kind, 'write');
  c.onTimer(599);
  assert.equal(c.poll(), null);
  c.onTimer(600);
  assert.deepEqual(c.poll()?.kind, 'end');
});

test('ws connection: keepalive pings every interval and closes a peer silent for two', () => {
  const client = new WsReceiver({ role: 'client', maxMessage: 1000 });
  const c = new WsServerConnection({ maxPayload: MAX, pingIntervalMs: 30_000, now: 1000 });
  const out: Out[] = [];
  assert.equal(c.nextDeadline(), 31_000);
  c.onTimer(31_000);
  collect(c, out, client);
  assert.deepEqual(out, [sent('ping ')]);
  assert.equal(c.nextDeadline(), 61_000, 'the idle deadline (1000 + 2 x 30 s) and the next ping coincide');
  c.receive(frame({ opcode: 0xa }), 40_000); // the pong: the peer is alive
  assert.equal(c.nextDeadline(), 61_000);
  c.onTimer(61_000);
  collect(c, out, client);
  assert.deepEqual(out, [sent('ping '), sent('ping ')]);
  assert.equal(c.nextDeadline(), 91_000);
  c.onTimer(100_000); // nothing since 40 s: 2 intervals passed at 100 s
  collect(c, out, client);
  assert.deepEqual(out, [sent('ping '), sent('ping '), sent('close 1001'), END]);
});

test('ws connection: interval 0 means no pings and no idle close; peerEnded ends', () => {
  const c = new WsServerConnection({ maxPayload: MAX, pingIntervalMs: 0, now: 0 });
  assert.equal(c.nextDeadline(), null);
  c.onTimer(1e12);
  assert.equal(c.poll(), null);
  c.peerEnded();
  assert.equal(c.poll()?.kind, 'end');
  c.peerEnded();
  assert.equal(c.poll(), null, 'one end only');
});

test('ws connection property: random and mutated byte streams never throw, stay within the limit, end once', () => {
  const enc = new ClientFrameEncoder((b) => b.fill(0x5a));
  const valid = Buffer.concat([
    enc.binary(mx(Type.PING, 1)),
    ...enc.fragments(mx(Type.SAY, 2, 'fragmented say'), 5),
    enc.ping(Buffer.from('p')),
    enc.binary(mx(Type.JOIN, 3, 'ada')),
    enc.close(1000, 'done'),
  ]);
  fc.assert(
    fc.property(
      fc.oneof(
        fc.array(fc.uint8Array({ maxLength: 100 }), { maxLength: 12 }).map((cs) => cs.map((c) => Buffer.from(c))),
        fc.tuple(fc.array(fc.record({ at: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }), { maxLength: 5 }), fc.array(fc.nat(), { maxLength: 5 })).map(([flips, cuts]) => {
          const s = Buffer.from(valid);
          for (const f of flips) s[f.at % s.length] = f.v;
          const points = [...new Set(cuts.map((c) => c % (s.length + 1)))].sort((a, b) => a - b);
          const out: Buffer[] = [];
          let at = 0;
          for (const p of points) {
            out.push(s.subarray(at, p));
            at = p;
          }
          out.push(s.subarray(at));
          return out;
        }),
      ),
      (chunks) => {
        const c = new WsServerConnection({ maxPayload: MAX, pingIntervalMs: 1000, now: 0 });
        let ends = 0;
        let t = 0;
        for (const chunk of chunks) {
          c.receive(Buffer.from(chunk), (t += 100));
          c.onTimer(t);
          for (let a = c.poll(); a !== null; a = c.poll()) {
            if (a.kind === 'end') ends++;
            if (a.kind === 'frame') assert.ok(a.payload.length <= MAX);
          }
          assert.ok(c.retained <= MAX + 12 + 14 + 125, `retained ${c.retained}`);
        }
        assert.ok(ends <= 1);
        assert.equal(ends === 1, c.state === 'closed');
      },
    ),
    { numRuns: 1000 },
  );
});

test('ws connection: frames are decoded as they are polled, so a driver that stops polling leaves them buffered', () => {
  const c = new WsServerConnection({ maxPayload: MAX, pingIntervalMs: 0, now: 0 });
  const three = Buffer.concat([bin(mx(Type.PING, 1)), bin(mx(Type.PING, 2)), bin(mx(Type.PING, 3))]);
  c.receive(three, 0);
  assert.equal(c.retained, three.length, 'nothing decoded yet');
  const a = c.poll();
  assert.ok(a !== null && a.kind === 'frame' && a.id === 1);
  assert.equal(c.retained, (three.length / 3) * 2);
  const b = c.poll();
  assert.ok(b !== null && b.kind === 'frame' && b.id === 2);
  const d = c.poll();
  assert.ok(d !== null && d.kind === 'frame' && d.id === 3);
  assert.equal(c.poll(), null);
  assert.equal(c.retained, 0);
});

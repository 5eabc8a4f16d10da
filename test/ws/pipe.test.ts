// WsPipe, the WebSocket driver, on a fake socket: the MX/1 output stream written in any cut
// (whole, split at every byte, a header apart from its payload, several frames at once) leaves
// as exactly one unfragmented binary message per frame, payloads not copied; control frames
// never land inside a message; 'data' carries one whole frame; pause/resume, end and the timer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { WsPipe } from '../../src/ws/pipe.js';
import { WsReceiver, type WsEvent } from '../../src/ws/receiver.js';
import { encodeFrame } from '../../src/wire/frame.js';
import { Type } from '../../src/wire/protocol.js';
import { setTestClock } from '../../src/loop/clock.js';
import { frame, pattern, closeBody } from './build.js';

/** Just enough of a net.Socket: records writes (and which callbacks ran), cork counts, pause state. */
class FakeSocket extends EventEmitter {
  written: Buffer[] = [];
  pending: { buf: Buffer; cb?: (err?: Error | null) => void }[] = [];
  corked = 0;
  paused = true;
  destroyed = false;
  writableEnded = false;
  writableLength = 0;
  writableHighWaterMark = 16384;
  writableNeedDrain = false;
  remoteAddress = '127.0.0.1';
  write(buf: Uint8Array, cb?: (err?: Error | null) => void): boolean {
    assert.ok(!this.writableEnded, 'write after end');
    const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    this.written.push(b);
    this.pending.push({ buf: b, cb });
    return true;
  }
  /** The "kernel" takes everything: callbacks run in order. */
  flush(): void {
    const p = this.pending;
    this.pending = [];
    for (const w of p) w.cb?.();
  }
  cork(): void {
    this.corked++;
  }
  uncork(): void {
    this.corked--;
  }
  end(): this {
    this.writableEnded = true;
    return this;
  }
  destroy(): this {
    this.destroyed = true;
    return this;
  }
  pause(): this {
    this.paused = true;
    return this;
  }
  resume(): this {
    this.paused = false;
    return this;
  }
  isPaused(): boolean {
    return this.paused;
  }
  setKeepAlive(): this {
    return this;
  }
}

function make(opts: { ping?: number } = {}): { sock: FakeSocket; pipe: WsPipe; data: Buffer[] } {
  const sock = new FakeSocket();
  const pipe = new WsPipe(sock as never, { maxPayload: 1 << 20, pingIntervalMs: opts.ping ?? 0 });
  const data: Buffer[] = [];
  pipe.on('data', (c: Buffer) => data.push(c));
  pipe.start(Buffer.alloc(0));
  return { sock, pipe, data };
}

/** Everything the server wrote, read back as a client reads it. */
function events(written: Buffer[]): WsEvent[] {
  const r = new WsReceiver({ role: 'client', maxMessage: 1 << 24 });
  r.push(Buffer.concat(written));
  const out: WsEvent[] = [];
  for (let e = r.next(); e !== null; e = r.next()) out.push(e);
  assert.equal(r.buffered, 0, 'no half frame left over');
  return out;
}

const mx = (type: number, id: number, payload?: Buffer): Buffer => Buffer.concat(encodeFrame(type, id, payload));

// A stream of frames of many sizes, zero-length ones included.
const FRAMES = [mx(Type.PING_OK, 1), mx(Type.MESSAGE, 0, pattern(5, 1)), mx(Type.STATS_OK, 2, pattern(300, 2)), mx(Type.PING_OK, 3), mx(Type.GET_OK, 4, pattern(70_000, 3)), mx(Type.SAY_OK, 5, pattern(1, 4))];
const STREAM = Buffer.concat(FRAMES);

function assertMessages(written: Buffer[]): void {
  const ev = events(written);
  assert.equal(ev.length, FRAMES.length);
  ev.forEach((e, i) => {
    assert.equal(e.kind, 'message');
    assert.ok(e.kind === 'message' && e.data.equals(FRAMES[i]!), `message ${i} is frame ${i}`);
  });
}

test('the output stream whole: one binary message per MX/1 frame, and the callback runs with the last piece', () => {
  const { sock, pipe } = make();
  let done = 0;
  pipe.write(STREAM, () => done++);
  assertMessages(sock.written);
  assert.equal(done, 0, 'not before the socket took the bytes');
  sock.flush();
  assert.equal(done, 1);
  // Payloads are views of what was written, not copies.
  assert.ok(sock.written.some((w) => w.buffer === STREAM.buffer && w.length > 70_000));
});

test('the output stream split at every byte into two writes, and dribbled a byte at a time', () => {
  for (let cut = 0; cut <= STREAM.length; cut += cut < 400 ? 1 : 997) {
    const { sock, pipe } = make();
    let done = 0;
    pipe.write(STREAM.subarray(0, cut), () => done++);
    pipe.write(STREAM.subarray(cut), () => done++);
    assertMessages(sock.written);
    sock.flush();
    assert.equal(done, 2, `cut ${cut}`);
  }
  const { sock, pipe } = make();
  const head = STREAM.subarray(0, 400);
  for (let i = 0; i < head.length; i++) pipe.write(head.subarray(i, i + 1));
  pipe.write(STREAM.subarray(400));
  assertMessages(sock.written);
});

test('a header written apart from its payload (the Outbox\'s writev of a big frame)', () => {
  const { sock, pipe } = make();
  const big = pattern(100_000, 9);
  const header = mx(Type.GET_OK, 1, big).subarray(0, 12);
  pipe.write(header);
  pipe.write(big.subarray(0, 40_000));
  pipe.write(big.subarray(40_000));
  const ev = events(sock.written);
  assert.equal(ev.length, 1);
  assert.ok(ev[0]!.kind === 'message' && ev[0]!.data.equals(Buffer.concat([header, big])));
  assert.ok(sock.written.some((w) => w.buffer === big.buffer), 'payload not copied');
});

test('a ping answered while a message is half written: the pong waits for the message end; only the newest pong', () => {
  const { sock, pipe } = make();
  const f = mx(Type.GET_OK, 1, pattern(1000, 5));
  pipe.write(f.subarray(0, 500));
  sock.emit('data', Buffer.concat([frame({ opcode: 9, payload: 'a' }), frame({ opcode: 9, payload: 'b' })]));
  assert.equal(events(sock.written.concat([f.subarray(500)])).length, 1, 'nothing between the halves');
  pipe.write(f.subarray(500));
  const ev = events(sock.written);
  assert.deepEqual(ev.map((e) => e.kind), ['message', 'pong']);
  assert.ok(ev[1]!.kind === 'pong' && ev[1]!.payload.toString() === 'b');
  // At a boundary a ping is answered at once.
  sock.emit('data', frame({ opcode: 9, payload: 'c' }));
  assert.deepEqual(events(sock.written).map((e) => e.kind), ['message', 'pong', 'pong']);
});

test("'data' is one whole MX/1 frame per message; paused, messages wait in the codec; resume delivers them in order", () => {
  const { sock, pipe, data } = make();
  const a = mx(Type.PING, 1, Buffer.from('one'));
  const b = mx(Type.SAY, 2, Buffer.from('two'));
  sock.emit('data', Buffer.concat([frame({ opcode: 2, payload: a }), frame({ opcode: 2, payload: b.subarray(0, 4), fin: false }), frame({ opcode: 0, payload: b.subarray(4) })]));
  assert.deepEqual(data, [a, b]);
  pipe.pause();
  sock.emit('data', frame({ opcode: 2, payload: a }));
  assert.equal(data.length, 2);
  assert.equal(sock.paused, false, 'little retained: the socket is still read');
  // Past the paused read limit the socket itself is paused.
  sock.emit('data', frame({ opcode: 2, payload: mx(Type.PING, 3, pattern(70_000)) }));
  assert.equal(sock.paused, true);
  pipe.resume();
  assert.equal(data.length, 4);
  assert.equal(sock.paused, false);
});

test('end() sends close 1000 (1001 after goingAway) and ends the socket once the peer echoes it', () => {
  for (const away of [false, true]) {
    const { sock, pipe } = make();
    let ended = 0;
    pipe.on('end', () => ended++);
    if (away) pipe.goingAway();
    pipe.end();
    assert.ok(pipe.writableEnded);
    const ev = events(sock.written);
    assert.equal(ev.length, 1);
    assert.ok(ev[0]!.kind === 'close' && ev[0]!.code === (away ? 1001 : 1000));
    assert.equal(sock.writableEnded, false, 'waits for the peer close');
    // MX/1 output after our close frame is dropped whole.
    pipe.write(mx(Type.PING_OK, 1));
    assert.equal(events(sock.written).length, 1);
    sock.emit('data', frame({ opcode: 8, payload: closeBody(1000) }));
    assert.equal(sock.writableEnded, true);
    assert.equal(ended, 1);
  }
});

test('a peer close in the middle of our message: the echo and the end wait for the message end', () => {
  const { sock, pipe } = make();
  const f = mx(Type.GET_OK, 1, pattern(1000, 6));
  pipe.write(f.subarray(0, 100));
  sock.emit('data', frame({ opcode: 8, payload: closeBody(1000) }));
  assert.equal(sock.writableEnded, false);
  pipe.write(f.subarray(100));
  const ev = events(sock.written);
  assert.deepEqual(ev.map((e) => e.kind), ['message', 'close']);
  assert.equal(sock.writableEnded, true);
});

test('the timer: a ping every interval, the idle close after two silent ones (injected clock)', () => {
  const t0 = 1_000_000;
  setTestClock(t0);
  try {
    const { sock, pipe } = make({ ping: 1000 });
    assert.equal(pipe.deadline, t0 + 1000);
    pipe.onDeadline(t0 + 1000);
    assert.deepEqual(events(sock.written).map((e) => e.kind), ['ping']);
    // Any bytes count as life: an unsolicited pong at t0+1500 moves the idle close to t0+3500.
    setTestClock(t0 + 1500);
    sock.emit('data', frame({ opcode: 10 }));
    pipe.onDeadline(t0 + 2000);
    assert.deepEqual(events(sock.written).map((e) => e.kind), ['ping', 'ping']);
    assert.equal(pipe.deadline, t0 + 3000);
    pipe.onDeadline(t0 + 3000);
    assert.equal(pipe.deadline, t0 + 3500);
    pipe.onDeadline(t0 + 3500);
    const ev = events(sock.written);
    assert.ok(ev.at(-1)!.kind === 'close' && (ev.at(-1) as { code: number }).code === 1001);
    assert.equal(sock.writableEnded, true);
  } finally {
    setTestClock(null);
  }
});

test('after the close handshake the socket is read on (the FIN is seen) and a peer that never ends its side is cut after 2 s', () => {
  const t0 = 2_000_000;
  setTestClock(t0);
  try {
    const { sock, pipe } = make();
    sock.emit('data', frame({ opcode: 8, payload: closeBody(1000) }));
    assert.equal(sock.writableEnded, true);
    assert.equal(sock.paused, false, 'still reading: the peer FIN must arrive');
    // Bytes after the close are counted, never held.
    sock.emit('data', Buffer.alloc(100_000));
    assert.equal(pipe.retained, 0);
    assert.equal(pipe.deadline, t0 + 2000);
    pipe.onDeadline(t0 + 1999);
    assert.equal(sock.destroyed, false);
    pipe.onDeadline(t0 + 2000);
    assert.equal(sock.destroyed, true);
  } finally {
    setTestClock(null);
  }
});

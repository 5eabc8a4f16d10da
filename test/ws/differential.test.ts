// Differential tests against the `ws` package, the peer users would otherwise pick: frames made
// by its own sender in client mode decode identically here, and a real `ws` client completes our
// handshake and talks to a loopback server built from our sans-IO pieces (the test owns the
// socket; the codec does not); and a fast-check fuzz compares our receiver with ws's on mutated
// and random streams. Skipped when `ws` is not installed (it is not yet a devDependency).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { WsReceiver, type WsEvent } from '../../src/ws/receiver.js';
import fc from 'fast-check';
import { ClientFrameEncoder, encodeBinary, encodeClose, encodePing, encodePong } from '../../src/ws/sender.js';
import { decideUpgrade, refusalResponse } from '../../src/ws/handshake.js';
import { pattern } from './build.js';

interface FrameOptions {
  fin: boolean;
  mask: boolean;
  opcode: number;
  readOnly: boolean;
  rsv1: boolean;
  generateMask?: (mask: Buffer) => void;
}
interface WsClient {
  readonly protocol: string;
  readonly extensions: string;
  on(event: 'open', cb: () => void): void;
  on(event: 'message', cb: (data: Buffer, isBinary: boolean) => void): void;
  on(event: 'pong' | 'ping', cb: (data: Buffer) => void): void;
  on(event: 'close', cb: (code: number, reason: Buffer) => void): void;
  on(event: 'error', cb: (err: Error) => void): void;
  on(event: 'unexpected-response', cb: (req: unknown, res: { statusCode: number }) => void): void;
  send(data: Buffer | string, options?: { fin?: boolean; binary?: boolean }): void;
  ping(data?: Buffer): void;
  close(code?: number, reason?: string): void;
}
interface WsModule {
  Sender: { frame(data: Buffer, options: FrameOptions): Buffer[] };
  WebSocket: new (url: string, protocols?: string | string[], options?: { headers?: Record<string, string>; origin?: string; perMessageDeflate?: boolean }) => WsClient;
}

async function loadWs(): Promise<WsModule | null> {
  const name = 'ws';
  try {
    const mod: unknown = await import(name);
    const m = mod as { default?: unknown } & WsModule;
    return (m.Sender !== undefined ? m : (m.default as WsModule)) ?? null;
  } catch {
    return null;
  }
}

// ws is a devDependency: a missing one is a broken install, and these tests fail rather than skip.
const loaded = await loadWs();
if (loaded === null) throw new Error('the ws package (a devDependency) is not installed: run npm install');
const ws: WsModule = loaded;

function drain(r: WsReceiver): WsEvent[] {
  const out: WsEvent[] = [];
  for (let e = r.next(); e !== null; e = r.next()) {
    if (e.kind === 'message') out.push({ kind: 'message', data: Buffer.from(e.data) });
    else if (e.kind === 'ping' || e.kind === 'pong') out.push({ kind: e.kind, payload: Buffer.from(e.payload) });
    else out.push(e);
  }
  return out;
}

test('ws differential: frames from ws\'s own sender (client mode) decode identically, whole and at every 7th split', () => {
  const W = ws;
  const f = (opcode: number, data: Buffer, fin = true): Buffer =>
    Buffer.concat(W.Sender.frame(Buffer.from(data), { fin, mask: true, opcode, readOnly: true, rsv1: false }));
  const close = (code: number, reason: string): Buffer => {
    const b = Buffer.alloc(2 + Buffer.byteLength(reason));
    b.writeUInt16BE(code, 0);
    b.write(reason, 2);
    return f(0x8, b);
  };
  const parts: Buffer[] = [];
  const want: WsEvent[] = [];
  for (const n of [0, 1, 125, 126, 127, 65535, 65536, 100_000]) {
    const p = pattern(n, n + 3);
    parts.push(f(0x2, p));
    want.push({ kind: 'message', data: p });
  }
  parts.push(f(0x2, Buffer.from('frag'), false), f(0x9, Buffer.from('between')), f(0x0, Buffer.from('ment'), false), f(0x0, Buffer.from('!'), true));
  want.push({ kind: 'ping', payload: Buffer.from('between') }, { kind: 'message', data: Buffer.from('fragment!') });
  parts.push(f(0xa, Buffer.from('pong')), f(0x9, pattern(125)));
  want.push({ kind: 'pong', payload: Buffer.from('pong') }, { kind: 'ping', payload: pattern(125) });
  parts.push(close(4000, 'κόσμε done'));
  want.push({ kind: 'close', code: 4000, reason: 'κόσμε done' });
  const stream = Buffer.concat(parts);

  const whole = new WsReceiver({ role: 'server', maxMessage: 200_000 });
  whole.push(Buffer.from(stream));
  assert.deepEqual(drain(whole), want);
  for (let cut = 1; cut < stream.length; cut += cut < 300 ? 1 : 7919) {
    const r = new WsReceiver({ role: 'server', maxMessage: 200_000 });
    r.push(Buffer.from(stream.subarray(0, cut)));
    const got = drain(r);
    r.push(Buffer.from(stream.subarray(cut)));
    got.push(...drain(r));
    assert.deepEqual(got, want, `split at ${cut}`);
  }
});

test('ws differential: ws\'s sender with RSV1 (a compressed frame) and a text frame are refused', () => {
  const W = ws;
  const r = new WsReceiver({ role: 'server', maxMessage: 1000 });
  r.push(Buffer.concat(W.Sender.frame(Buffer.from('x'), { fin: true, mask: true, opcode: 0x2, readOnly: true, rsv1: true })));
  assert.deepEqual(drain(r).map((e) => (e.kind === 'fail' ? e.code : e.kind)), [1002]);
  const t = new WsReceiver({ role: 'server', maxMessage: 1000 });
  t.push(Buffer.concat(W.Sender.frame(Buffer.from('hello'), { fin: true, mask: true, opcode: 0x1, readOnly: true, rsv1: false })));
  assert.deepEqual(drain(t).map((e) => (e.kind === 'fail' ? e.code : e.kind)), [1003]);
});

/**
 * A loopback echo server made of our pieces: reads the head, asks decideUpgrade, then feeds the
 * receiver and answers through the sender. Bytes behind the head are the first WebSocket bytes.
 */
async function echoServer(allowedOrigins: readonly string[] | '*' = []): Promise<{ url: string; events: WsEvent[]; close(): Promise<void> }> {
  const events: WsEvent[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    let head = Buffer.alloc(0);
    let rx: WsReceiver | null = null;
    sock.on('data', (chunk: Buffer) => {
      if (rx === null) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = head.subarray(0, end).toString('latin1').split('\r\n');
        const [method, , version] = lines[0]!.split(' ');
        const headers = lines.slice(1).map((l): [string, string] => {
          const i = l.indexOf(':');
          return [l.slice(0, i).toLowerCase(), l.slice(i + 1).trim()];
        });
        const host = headers.find(([n]) => n === 'host')?.[1] ?? null;
        const d = decideUpgrade({ method: method!, versionMinor: version === 'HTTP/1.0' ? 0 : 1, headers, scheme: 'http', host, allowedOrigins });
        if (!d.accept) {
          sock.end(refusalResponse(d));
          return;
        }
        sock.write(d.head);
        rx = new WsReceiver({ role: 'server', maxMessage: 1 << 20 });
        sock.write(encodePing(Buffer.from('server-ping')));
        chunk = head.subarray(end + 4);
      }
      rx.push(chunk);
      for (let e = rx.next(); e !== null; e = rx.next()) {
        events.push(e.kind === 'message' ? { kind: 'message', data: Buffer.from(e.data) } : e.kind === 'ping' || e.kind === 'pong' ? { kind: e.kind, payload: Buffer.from(e.payload) } : e);
        if (e.kind === 'message') sock.write(Buffer.concat(encodeBinary(e.data)));
        else if (e.kind === 'ping') sock.write(encodePong(e.payload));
        else if (e.kind === 'close') sock.end(e.code === null ? encodeClose() : encodeClose(e.code, e.reason));
        else if (e.kind === 'fail') sock.end(encodeClose(e.code, e.reason));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `ws://127.0.0.1:${port}/.well-known/muxd/mx`,
    events,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

test('ws differential: a real ws client completes our handshake (mx1, no deflate) and round-trips messages, pings and the close', { timeout: 20_000 }, async () => {
  const W = ws;
  const srv = await echoServer();
  try {
    const client = new W.WebSocket(srv.url, ['chat', 'mx1'], { perMessageDeflate: true });
    const echoed: Buffer[] = [];
    const pongs: string[] = [];
    const big = randomBytes(200_000);
    let serverPingSeen = false;
    const closed = new Promise<{ code: number; reason: string }>((resolve, reject) => {
      client.on('error', reject);
      client.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    client.on('ping', (d) => {
      if (d.toString() === 'server-ping') serverPingSeen = true;
    });
    client.on('pong', (d) => pongs.push(d.toString()));
    client.on('message', (data, isBinary) => {
      assert.ok(isBinary);
      echoed.push(Buffer.from(data));
      if (echoed.length === 3) client.close(1000, 'bye');
    });
    await new Promise<void>((resolve) => client.on('open', resolve));
    assert.equal(client.protocol, 'mx1');
    assert.equal(client.extensions, '', 'permessage-deflate declined');
    client.send(Buffer.from('one'));
    client.ping(Buffer.from('client-ping'));
    client.send(Buffer.from('frag'), { fin: false });
    client.send(Buffer.from('ment'), { fin: true });
    client.send(big);
    const { code, reason } = await closed;
    assert.equal(code, 1000);
    assert.equal(reason, 'bye');
    assert.deepEqual(echoed.map((b) => b.length), [3, 8, big.length]);
    assert.equal(echoed[0]!.toString(), 'one');
    assert.equal(echoed[1]!.toString(), 'fragment');
    assert.ok(echoed[2]!.equals(big));
    assert.deepEqual(pongs, ['client-ping']);
    assert.ok(serverPingSeen, 'ws answered our ping');
    assert.deepEqual(srv.events.filter((e) => e.kind === 'pong').map((e) => (e.kind === 'pong' ? e.payload.toString() : '')), ['server-ping']);
    assert.deepEqual(srv.events[srv.events.length - 1], { kind: 'close', code: 1000, reason: 'bye' });
  } finally {
    await srv.close();
  }
});

test('ws differential: a ws client that sends text gets close 1003; a foreign Origin gets 403', { timeout: 20_000 }, async () => {
  const W = ws;
  const srv = await echoServer();
  try {
    const client = new W.WebSocket(srv.url);
    const closed = new Promise<number>((resolve, reject) => {
      client.on('error', reject);
      client.on('close', (code) => resolve(code));
    });
    await new Promise<void>((resolve) => client.on('open', resolve));
    client.send('text is not MX/1');
    assert.equal(await closed, 1003);

    const foreign = new W.WebSocket(srv.url, [], { origin: 'https://evil.example' });
    const status = await new Promise<number>((resolve, reject) => {
      foreign.on('unexpected-response', (_req, res) => resolve(res.statusCode));
      foreign.on('open', () => reject(new Error('opened')));
      foreign.on('error', () => {});
    });
    assert.equal(status, 403);
  } finally {
    await srv.close();
  }
});

// ------------------------------------------------------------------ fuzz against ws's receiver

interface WsReceiverStream {
  on(event: 'message', cb: (data: Buffer, isBinary: boolean) => void): void;
  on(event: 'ping' | 'pong', cb: (data: Buffer) => void): void;
  on(event: 'conclude', cb: (code: number, reason: Buffer) => void): void;
  on(event: 'error', cb: (err: Error) => void): void;
  on(event: 'close', cb: () => void): void;
  write(chunk: Buffer): boolean;
  end(): void;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
}
type ReceiverCtor = new (options: { isServer: boolean; maxPayload: number; binaryType: string }) => WsReceiverStream;

type Seen =
  | { kind: 'message'; data: Buffer }
  | { kind: 'text' }
  | { kind: 'ping' | 'pong'; payload: Buffer }
  | { kind: 'close'; code: number | null; reason: string }
  | { kind: 'fail'; code: number; message?: string };

async function theirs(chunks: Buffer[], max: number): Promise<Seen[]> {
  const Receiver = (ws as unknown as { Receiver: ReceiverCtor }).Receiver;
  const r = new Receiver({ isServer: true, maxPayload: max, binaryType: 'nodebuffer' });
  const seen: Seen[] = [];
  let over = false;
  r.on('message', (data, isBinary) => seen.push(isBinary ? { kind: 'message', data: Buffer.from(data) } : { kind: 'text' }));
  r.on('ping', (d) => seen.push({ kind: 'ping', payload: Buffer.from(d) }));
  r.on('pong', (d) => seen.push({ kind: 'pong', payload: Buffer.from(d) }));
  r.on('conclude', (code, reason) => {
    over = true;
    seen.push({ kind: 'close', code: code === 1005 ? null : code, reason: reason.toString() });
  });
  const closed = new Promise<void>((resolve) => r.on('close', resolve));
  r.on('error', (err) => {
    over = true;
    const sym = Object.getOwnPropertySymbols(err).find((s) => s.description === 'status-code');
    const code = sym === undefined ? -1 : (err as unknown as Record<symbol, number>)[sym]!;
    seen.push({ kind: 'fail', code, message: err.message });
  });
  for (const c of chunks) {
    if (over || r.destroyed || r.writableEnded) break;
    r.write(Buffer.from(c));
  }
  if (!r.destroyed && !r.writableEnded) r.end();
  await closed;
  return seen;
}

function ours(chunks: Buffer[], max: number): Seen[] {
  const r = new WsReceiver({ role: 'server', maxMessage: max });
  const seen: Seen[] = [];
  for (const c of chunks) {
    r.push(Buffer.from(c));
    for (const e of drain(r)) seen.push(e.kind === 'fail' ? { kind: 'fail', code: e.code } : e);
  }
  return seen;
}

/**
 * Equal event by event, except where this endpoint differs from ws by design: a text frame is
 * 1003 here (ws takes text), and a 64-bit length with the top bit set is 1002 here (RFC 6455
 * §5.2 says that bit must be 0) where ws reports 1009; the comparison stops at either.
 */
function sameOutcome(a: Seen[], b: Seen[]): number {
  let matched = 0;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x?.kind === 'fail' && x.code === 1003) return matched;
    if (x?.kind === 'fail' && x.code === 1002 && y?.kind === 'fail' && y.code === 1009 && /2\^53/.test(y.message ?? '')) return matched;
    if (y?.kind === 'fail') {
      assert.ok(x?.kind === 'fail', `event ${i}: ws failed (${y.code}: ${y.message}), we gave ${JSON.stringify(x)}`);
      assert.equal(x.code, y.code, `event ${i}: close code (ws: ${y.message})`);
      return matched + 1;
    }
    assert.deepEqual(x, y, `event ${i}`);
    matched++;
  }
  return matched;
}

test('ws differential: mutated and random streams give the same events and close codes as ws\'s receiver', { timeout: 120_000 }, async () => {
  const max = 300;
  let runs = 0;
  let compared = 0;
  let deep = 0;
  const opArb = fc.oneof(
    fc.record({ op: fc.constant('bin' as const), payload: fc.uint8Array({ maxLength: 320 }), frag: fc.integer({ min: 1, max: 400 }) }),
    fc.record({ op: fc.constantFrom('ping' as const, 'pong' as const), payload: fc.uint8Array({ maxLength: 125 }) }),
    fc.record({ op: fc.constant('close' as const), code: fc.integer({ min: 0, max: 5100 }), reason: fc.uint8Array({ maxLength: 20 }) }),
  );
  const streamArb = fc.oneof(
    fc.tuple(fc.array(opArb, { minLength: 1, maxLength: 6 }), fc.integer(), fc.array(fc.record({ at: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }), { maxLength: 3 })).map(([ops, seed, flips]) => {
      let x = seed >>> 0;
      const enc = new ClientFrameEncoder((b) => {
        for (let i = 0; i < b.length; i++) b[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
      });
      const frames: Buffer[] = [];
      for (const o of ops) {
        if (o.op === 'bin') frames.push(...enc.fragments(o.payload, o.frag));
        else if (o.op === 'close') {
          const p = Buffer.alloc(2 + o.reason.length);
          p.writeUInt16BE(o.code, 0);
          p.set(o.reason, 2);
          frames.push(enc.frame(0x8, p));
        } else frames.push(enc.frame(o.op === 'ping' ? 0x9 : 0xa, o.payload));
      }
      const s = Buffer.concat(frames);
      for (const f of flips) s[f.at % s.length] = f.v;
      return s;
    }),
    fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u)),
  );
  await fc.assert(
    fc.asyncProperty(streamArb, fc.array(fc.nat(), { maxLength: 4 }), async (stream, cuts) => {
      const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
      const chunks: Buffer[] = [];
      let at = 0;
      for (const p of points) {
        chunks.push(stream.subarray(at, p));
        at = p;
      }
      chunks.push(stream.subarray(at));
      const nonEmpty = chunks.filter((c) => c.length > 0);
      const matched = sameOutcome(ours(nonEmpty, max), await theirs(nonEmpty, max));
      runs++;
      if (matched > 0) compared++;
      if (matched > 1) deep++;
    }),
    { numRuns: 1500 },
  );
  // Not vacuous: most runs compare at least one event, many compare several.
  assert.ok(compared > runs / 2, `${compared} of ${runs} runs compared an event`);
  assert.ok(deep > runs / 5, `${deep} of ${runs} runs compared two events or more`);
});

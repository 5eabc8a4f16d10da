// The client library over WebSocket (ws://, wss://) and TLS, against the real MX/1 core behind
// the bridges of ./bridges.ts (a `ws` package server, a node:tls terminator): every method as over
// TCP, certificate verification, servername and ALPN, pings answered, the closing handshake, and
// the server's close codes (1001 going away, 1009 too big) as close and error events.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { connect, LocalCode, MuxError, WsCloseError, type ConnectOptions, type MuxClient } from '../../src/client/index.js';
import { ErrorCode } from '../../src/wire/protocol.js';
import { collector } from '../helpers/collector.js';
import { testCerts } from '../helpers/tls-certs.js';
import { waitFor, within } from '../helpers/wait.js';
import { startBridged, startWsBridge, WS_PATH, type Bridged, type TlsBridge, type WsBridge } from './bridges.js';
import { ADMIN_TOKEN, type RealServer } from './real-server.js';

let real: RealServer;
let wsb: WsBridge;
let wssb: WsBridge;
let tlsb: TlsBridge;
let bridged: Bridged;
const clients: MuxClient[] = [];

before(async () => {
  bridged = await startBridged();
  ({ real, wsb, wssb, tlsb } = bridged);
});
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await bridged.stop();
});

const KINDS: Record<string, () => ConnectOptions> = {
  'ws://': () => ({ url: wsb.url }),
  'wss://': () => ({ url: wssb.url, tls: { ca: testCerts().ca } }),
  tls: () => ({ port: tlsb.port, tls: { ca: testCerts().ca } }),
};

async function open(opts: ConnectOptions): Promise<MuxClient> {
  const c = await connect({ timeoutMs: 5000, ...opts });
  clients.push(c);
  return c;
}

function next(c: MuxClient, event: string): Promise<unknown[]> {
  return within(new Promise((resolve) => c.once(event, (...args: unknown[]) => resolve(args))), 5000, `the ${event} event`);
}

/** A client over the ws bridge, its first ping answered, with its error events and its close watched; `at` is its bridge socket's index. */
async function watchedWsClient(): Promise<{ at: number; c: MuxClient; errors: unknown[]; closed: Promise<unknown[]> }> {
  const at = wsb.sockets.length;
  const c = await open({ url: wsb.url });
  await c.ping();
  const errors: unknown[] = [];
  c.on('error', (e) => errors.push(e));
  return { at, c, errors, closed: next(c, 'close') };
}

for (const [kind, opts] of Object.entries(KINDS)) {
  describe(`client over ${kind}: every method as over TCP`, () => {
    test('ping (empty, 1 KiB, 200 KiB pipelined) and stats', async () => {
      const c = await open(opts());
      assert.deepEqual(await c.ping(), Buffer.alloc(0));
      const small = randomBytes(1024);
      const big = randomBytes(200 * 1024);
      const [a, b] = await Promise.all([c.ping(small), c.ping(big)]);
      assert.deepEqual(a, small);
      assert.deepEqual(b, big);
      const stats = await c.stats();
      assert.equal(typeof stats.connections, 'object');
    });

    test('chat: join, pushes, say, names, announce, leave', async () => {
      const ann = await open(opts());
      const bob = await open(opts());
      const suffix = kind.replace(/\W/g, '');
      assert.deepEqual(await ann.join(`ann${suffix}`), [`ann${suffix}`]);
      const joined = next(ann, 'userJoined');
      assert.deepEqual([...(await bob.join(`bob${suffix}`))].sort(), [`ann${suffix}`, `bob${suffix}`]);
      assert.deepEqual(await joined, [`bob${suffix}`]);
      const msg = next(ann, 'message');
      await bob.say('hello 张三');
      assert.deepEqual(await msg, [`bob${suffix}`, 'hello 张三']);
      await assert.rejects(bob.join('x'), (e: unknown) => e instanceof MuxError && e.code === ErrorCode.ALREADY_JOINED);
      const heard = Promise.all([next(ann, 'announcement'), next(bob, 'announcement')]);
      await ann.announce(ADMIN_TOKEN, `restart ${kind}`);
      assert.deepEqual(await heard, [[`restart ${kind}`], [`restart ${kind}`]]);
      await assert.rejects(ann.announce('wrong', 'x'), (e: unknown) => e instanceof MuxError && e.code === ErrorCode.FORBIDDEN);
      const left = next(ann, 'userLeft');
      await bob.leave();
      assert.deepEqual(await left, [`bob${suffix}`]);
      assert.deepEqual(await ann.names(), [`ann${suffix}`]);
      await ann.leave();
    });

    test('put, list, get whole and from an offset (3 MiB: many messages, backpressure both ways)', async () => {
      const c = await open(opts());
      const data = randomBytes(3 * 1024 * 1024 + 5);
      const name = `blob-${kind.replace(/\W/g, '')}.bin`;
      const digest = createHash('sha256').update(data).digest();
      assert.deepEqual(await c.put(name, data), { size: data.length, sha256: digest });
      assert.ok((await c.list()).some((e) => e.name === name && e.size === data.length));
      const whole = collector();
      assert.deepEqual(await c.get(name, whole), { size: data.length, sha256: digest });
      assert.ok(whole.data().equals(data));
      const tail = collector();
      await c.get(name, tail, { offset: data.length - 1000 });
      assert.ok(tail.data().equals(data.subarray(data.length - 1000)));
      await assert.rejects(c.get('missing.bin', collector()), (e: unknown) => e instanceof MuxError && e.code === ErrorCode.NOT_FOUND);
    });

    test('a slow download sink pauses the transport, and the rest arrives once it drains', async () => {
      const c = await open(opts());
      const data = randomBytes(2 * 1024 * 1024);
      await c.put(`slow-${kind.replace(/\W/g, '')}.bin`, data);
      const chunks: Buffer[] = [];
      const sink = new Writable({
        highWaterMark: 16 * 1024,
        write(chunk: Buffer, _enc, cb) {
          chunks.push(Buffer.from(chunk));
          setTimeout(cb, 1);
        },
      });
      await c.get(`slow-${kind.replace(/\W/g, '')}.bin`, sink);
      assert.ok(Buffer.concat(chunks).equals(data));
      assert.deepEqual(await c.ping(Buffer.from('after')), Buffer.from('after'));
    });

    test('close() ends the connection; later requests reject with CLOSED', async () => {
      const c = await open(opts());
      const closed = next(c, 'close');
      await c.close();
      assert.deepEqual(await closed, [false]);
      await assert.rejects(c.ping(), (e: unknown) => e instanceof MuxError && e.code === LocalCode.CLOSED);
    });
  });
}

describe('WebSocket specifics (ws bridge)', () => {
  test('the handshake selects mx1; close() sends close 1000 and the server sees it', async () => {
    const before = wsb.sockets.length;
    const c = await open({ url: wsb.url });
    await c.ping();
    assert.equal(wsb.protocols[before], 'mx1');
    await c.close();
    await waitFor(() => wsb.closes[before], { what: 'the bridge to see the client close' });
    assert.equal(wsb.closes[before]!.code, 1000);
  });

  test('pings from the server are answered with pongs carrying the same payload, between requests', async () => {
    const before = wsb.sockets.length;
    const c = await open({ url: wsb.url });
    await c.ping();
    const ws = wsb.sockets[before]!;
    ws.ping(Buffer.from('are you there'));
    ws.ping();
    await waitFor(() => wsb.pongs[before]!.length === 2 || undefined, { what: 'two pongs' });
    assert.deepEqual(wsb.pongs[before], [Buffer.from('are you there'), Buffer.alloc(0)]);
    assert.deepEqual(await c.ping(Buffer.from('x')), Buffer.from('x'));
  });

  test('a server closing with 1001 (going away): close event without error, pending requests rejected with the code', async () => {
    const { at: before, c, errors, closed } = await watchedWsClient();
    // A request the server will never answer (the bridge closes first): it must be rejected with the close.
    const pending = c.get('never', new Writable({ write: (_c, _e, cb) => cb() }));
    wsb.sockets[before]!.close(1001, 'server shutting down');
    await assert.rejects(pending, (e: unknown) => e instanceof WsCloseError && e.closeCode === 1001 && e.code === LocalCode.CLOSED && /1001 \(going away\): server shutting down/.test(e.message));
    assert.deepEqual(await closed, [false]);
    assert.deepEqual(errors, []);
    // The client echoed the code (RFC 6455 §5.5.1).
    await waitFor(() => wsb.closes[before], { what: 'the close echo' });
    assert.equal(wsb.closes[before]!.code, 1001);
    await assert.rejects(c.ping(), (e: unknown) => e instanceof WsCloseError && e.closeCode === 1001);
  });

  test('a message over the server limit: close 1009 is an error event and rejects the request', async () => {
    const small = await startWsBridge(real.port, { maxPayload: 1024 });
    try {
      const c = await open({ url: small.url });
      assert.deepEqual(await c.ping(Buffer.alloc(100)), Buffer.alloc(100));
      const errors: unknown[] = [];
      c.on('error', (e) => errors.push(e));
      const closed = next(c, 'close');
      await assert.rejects(c.ping(Buffer.alloc(2000)), (e: unknown) => e instanceof WsCloseError && e.closeCode === 1009 && /message too big/.test(e.message));
      assert.deepEqual(await closed, [true]);
      assert.equal(errors.length, 1);
      assert.ok(errors[0] instanceof WsCloseError && errors[0].closeCode === 1009);
    } finally {
      await small.stop();
    }
  });

  test('a message that is not exactly one MX/1 frame: ERROR 1, and the client closes with 1002', async () => {
    const { at: before, errors, closed } = await watchedWsClient();
    const frame = Buffer.concat([Buffer.from([0x4d, 0x58, 1, 0x81, 0, 0, 0, 9, 0, 0, 0, 0])]);
    wsb.sockets[before]!.send(Buffer.concat([frame, frame]), { binary: true });
    assert.deepEqual(await closed, [true]);
    assert.ok(errors[0] instanceof MuxError && errors[0].code === ErrorCode.BAD_MAGIC_OR_VERSION, String(errors[0]));
    await waitFor(() => wsb.closes[before], { what: 'the client close' });
    assert.equal(wsb.closes[before]!.code, 1002);
  });

  test('a text message from the server: the client closes with 1003', async () => {
    const before = wsb.sockets.length;
    const c = await open({ url: wsb.url });
    await c.ping();
    c.on('error', () => {});
    const closed = next(c, 'close');
    wsb.sockets[before]!.send('hello');
    assert.deepEqual(await closed, [true]);
    await waitFor(() => wsb.closes[before], { what: 'the client close' });
    assert.equal(wsb.closes[before]!.code, 1003);
    await assert.rejects(c.ping(), (e: unknown) => e instanceof MuxError && e.code === LocalCode.PROTOCOL && /text/.test(e.message));
  });

  test('a refused handshake (wrong path) rejects with PROTOCOL and the status', async () => {
    await assert.rejects(
      connect({ url: `ws://127.0.0.1:${wsb.port}/nope`, timeoutMs: 5000 }),
      (e: unknown) => e instanceof MuxError && e.code === LocalCode.PROTOCOL && /answered 400, not 101/.test(e.message),
    );
  });

  test('bad urls are LOCAL errors before anything is opened', async () => {
    for (const url of ['http://127.0.0.1/', 'not a url', `ws://u:p@127.0.0.1:1${WS_PATH}`, `ws://127.0.0.1:1${WS_PATH}#x`]) {
      await assert.rejects(connect({ url }), (e: unknown) => e instanceof MuxError && e.code === LocalCode.LOCAL, url);
    }
    await assert.rejects(connect({ url: wsb.url, tls: true }), (e: unknown) => e instanceof MuxError && e.code === LocalCode.LOCAL && /wss:\/\//.test(e.message));
  });
});

describe('TLS specifics', () => {
  const tlsErr = (re: RegExp) => (e: unknown): boolean => e instanceof MuxError && e.code === LocalCode.TLS && re.test(e.message);

  test('certificates are verified by default: no CA, or the wrong CA, is a clear TLS error', async () => {
    await assert.rejects(connect({ port: tlsb.port, tls: true, timeoutMs: 5000 }), tlsErr(/could not be verified .*pass that CA \(ca, CLI --ca FILE\)/));
    await assert.rejects(connect({ port: tlsb.port, tls: { ca: testCerts().otherCa }, timeoutMs: 5000 }), tlsErr(/could not be verified.*not signed by the CA given/));
    await assert.rejects(connect({ url: wssb.url, timeoutMs: 5000 }), tlsErr(/could not be verified/));
  });

  test('rejectUnauthorized: false accepts an unverifiable certificate', async () => {
    const c = await open({ port: tlsb.port, tls: { rejectUnauthorized: false } });
    assert.deepEqual(await c.ping(Buffer.from('ok')), Buffer.from('ok'));
  });

  test('servername: sent as SNI and checked against the certificate; ALPN mx1 is offered', async () => {
    const before = tlsb.handshakes.length;
    const byName = await open({ host: 'localhost', port: tlsb.port, tls: { ca: testCerts().ca } });
    await byName.ping();
    const byIp = await open({ host: '127.0.0.1', port: tlsb.port, tls: { ca: testCerts().ca, servername: 'localhost' } });
    await byIp.ping();
    const plainIp = await open({ host: '127.0.0.1', port: tlsb.port, tls: { ca: testCerts().ca } });
    await plainIp.ping();
    assert.deepEqual(tlsb.handshakes.slice(before), [
      { servername: 'localhost', alpn: 'mx1' },
      { servername: 'localhost', alpn: 'mx1' },
      // An IP literal is never sent as SNI (RFC 6066 §3), yet the certificate's IP SAN is checked.
      { servername: false, alpn: 'mx1' },
    ]);
    await assert.rejects(
      connect({ port: tlsb.port, tls: { ca: testCerts().ca, servername: 'elsewhere.example' }, timeoutMs: 5000 }),
      tlsErr(/not valid for the name asked for.*--servername/),
    );
  });

  test('TLS to a plaintext port fails as a TLS handshake error', async () => {
    await assert.rejects(connect({ port: real.port, tls: { ca: testCerts().ca }, timeoutMs: 5000 }), tlsErr(/TLS handshake with .* failed/));
  });
});

// The client side of the handshake (src/ws/client-handshake.ts): its request passes our own
// server decision, its checks refuse every bad 101, and against a `ws` server (when installed)
// the client pieces of the codec complete a handshake and an echo over a real socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { randomFillSync } from 'node:crypto';
import { checkServerHandshake, clientHandshake, type ClientHandshake } from '../../src/ws/client-handshake.js';
import { acceptKey, decideUpgrade } from '../../src/ws/handshake.js';
import { WsReceiver } from '../../src/ws/receiver.js';
import { ClientFrameEncoder } from '../../src/ws/sender.js';

const fixed = (b: Uint8Array): void => {
  // The RFC 6455 §1.3 sample nonce "the sample nonce".
  b.set(Buffer.from('the sample nonce'));
};

function parseHead(head: string): { first: string; headers: [string, string][] } {
  const lines = head.split('\r\n\r\n')[0]!.split('\r\n');
  return {
    first: lines[0]!,
    headers: lines.slice(1).map((l): [string, string] => {
      const i = l.indexOf(':');
      return [l.slice(0, i).toLowerCase(), l.slice(i + 1).trim()];
    }),
  };
}

test('ws client handshake: the request head, with the RFC 6455 §1.3 nonce', () => {
  const h = clientHandshake({ host: '127.0.0.1:8080', path: '/.well-known/muxd/mx', random: fixed });
  assert.equal(h.key, 'dGhlIHNhbXBsZSBub25jZQ==');
  assert.equal(
    h.head,
    'GET /.well-known/muxd/mx HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mx1\r\n\r\n',
  );
  const withOrigin = clientHandshake({ host: 'h', path: '/x', protocols: [], origin: 'http://h', random: fixed });
  assert.ok(withOrigin.head.includes('\r\nOrigin: http://h\r\n'));
  assert.ok(!withOrigin.head.includes('Sec-WebSocket-Protocol'));
  for (const bad of [{ host: 'a\r\nX: y' }, { path: 'no-slash' }, { path: '/a b' }, { protocols: ['a b'] }, { origin: 'http://h\r\n' }]) {
    assert.throws(() => clientHandshake({ host: 'h', path: '/', random: fixed, ...bad }), RangeError, JSON.stringify(bad));
  }
});

test('ws client handshake: our request passes our server decision, and its 101 passes our client check', () => {
  const h = clientHandshake({ host: '127.0.0.1:8080', path: '/.well-known/muxd/mx', random: randomFillSync });
  const req = parseHead(h.head);
  const d = decideUpgrade({ method: 'GET', versionMinor: 1, headers: req.headers, scheme: 'http', host: '127.0.0.1:8080', allowedOrigins: [] });
  assert.ok(d.accept);
  const res = parseHead(d.head);
  assert.equal(res.first, 'HTTP/1.1 101 Switching Protocols');
  assert.deepEqual(checkServerHandshake(101, res.headers, h), { ok: true, protocol: 'mx1' });
});

const SENT: ClientHandshake = { head: '', key: 'dGhlIHNhbXBsZSBub25jZQ==', protocols: ['mx1'] };
const GOOD: [string, string][] = [
  ['upgrade', 'websocket'],
  ['connection', 'Upgrade'],
  ['sec-websocket-accept', acceptKey(SENT.key)],
];
const RESPONSES: { name: string; status?: number; headers: [string, string][]; ok: boolean; protocol?: string | null }[] = [
  { name: 'a good 101 without subprotocol', headers: GOOD, ok: true, protocol: null },
  { name: 'a good 101 selecting mx1', headers: [...GOOD, ['sec-websocket-protocol', 'mx1']], ok: true, protocol: 'mx1' },
  { name: 'tokens in any case and lists', headers: [['upgrade', 'WebSocket'], ['connection', 'keep-alive, upgrade'], GOOD[2]!], ok: true },
  { name: 'a 200', status: 200, headers: GOOD, ok: false },
  { name: 'a 403', status: 403, headers: [], ok: false },
  { name: 'no Upgrade', headers: [GOOD[1]!, GOOD[2]!], ok: false },
  { name: 'no Connection', headers: [GOOD[0]!, GOOD[2]!], ok: false },
  { name: 'wrong accept', headers: [GOOD[0]!, GOOD[1]!, ['sec-websocket-accept', acceptKey('AAAAAAAAAAAAAAAAAAAAAA==')]], ok: false },
  { name: 'no accept', headers: [GOOD[0]!, GOOD[1]!], ok: false },
  { name: 'an extension we never offered', headers: [...GOOD, ['sec-websocket-extensions', 'permessage-deflate']], ok: false },
  { name: 'a subprotocol we never offered', headers: [...GOOD, ['sec-websocket-protocol', 'chat']], ok: false },
  { name: 'two subprotocols', headers: [...GOOD, ['sec-websocket-protocol', 'mx1'], ['sec-websocket-protocol', 'mx1']], ok: false },
];
for (const r of RESPONSES) {
  test(`ws client handshake check: ${r.name}`, () => {
    const got = checkServerHandshake(r.status ?? 101, r.headers, SENT);
    assert.equal(got.ok, r.ok, got.ok ? 'accepted' : got.reason);
    if (got.ok && r.protocol !== undefined) assert.equal(got.protocol, r.protocol);
  });
}

// ------------------------------------------------------------------ against a ws server

interface WsServer {
  on(event: 'connection', cb: (sock: { on(e: 'message', cb: (d: Buffer, isBinary: boolean) => void): void; send(d: Buffer): void; close(code: number, reason: string): void; protocol: string }) => void): void;
  on(event: 'listening', cb: () => void): void;
  address(): { port: number };
  close(cb?: () => void): void;
}
async function loadWsServer(): Promise<(new (o: { port: number; host: string; handleProtocols?: (p: Set<string>) => string | false }) => WsServer) | null> {
  const name = 'ws';
  try {
    const mod = (await import(name)) as unknown as { WebSocketServer?: unknown; default?: { WebSocketServer?: unknown } };
    return (mod.WebSocketServer ?? mod.default?.WebSocketServer ?? null) as (new (o: { port: number; host: string }) => WsServer) | null;
  } catch {
    return null;
  }
}
const WebSocketServer = await loadWsServer();

test('ws client pieces against a ws server: handshake, masked messages out, server frames in, close', { skip: WebSocketServer === null ? 'the ws package is not installed' : false, timeout: 20_000 }, async () => {
  const server = new WebSocketServer!({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((resolve) => server.on('listening', resolve));
  server.on('connection', (sock) => {
    sock.on('message', (d, isBinary) => {
      assert.ok(isBinary);
      if (d.toString() === 'bye') sock.close(4001, 'as you wish');
      else sock.send(Buffer.concat([Buffer.from('echo:'), d]));
    });
  });
  try {
    const port = server.address().port;
    const h = clientHandshake({ host: `127.0.0.1:${port}`, path: '/.well-known/muxd/mx', random: randomFillSync });
    const sock = connect(port, '127.0.0.1');
    sock.write(h.head);
    const enc = new ClientFrameEncoder(randomFillSync);
    const rx = new WsReceiver({ role: 'client', maxMessage: 1 << 20 });
    const got: string[] = [];
    const big = Buffer.alloc(100_000, 0x61);
    const done = new Promise<void>((resolve, reject) => {
      let head = Buffer.alloc(0);
      let open = false;
      sock.on('error', reject);
      sock.on('data', (chunk: Buffer) => {
        if (!open) {
          head = Buffer.concat([head, chunk]);
          const end = head.indexOf('\r\n\r\n');
          if (end < 0) return;
          const res = parseHead(head.toString('latin1', 0, end + 4));
          const status = Number(res.first.split(' ')[1]);
          const verdict = checkServerHandshake(status, res.headers, h);
          if (!verdict.ok) return reject(new Error(verdict.reason));
          got.push(`protocol ${verdict.protocol}`);
          open = true;
          sock.write(enc.binary(Buffer.from('one')));
          for (const f of enc.fragments(big, 30_000)) sock.write(f);
          sock.write(enc.binary(Buffer.from('bye')));
          chunk = head.subarray(end + 4);
        }
        rx.push(chunk);
        for (let e = rx.next(); e !== null; e = rx.next()) {
          if (e.kind === 'message') got.push(e.data.length > 100 ? `echo of ${e.data.length - 5} bytes` : e.data.toString());
          else if (e.kind === 'close') {
            got.push(`close ${e.code} ${e.reason}`);
            sock.end(enc.close(e.code ?? undefined));
            resolve();
          } else if (e.kind === 'fail') reject(new Error(`server bytes refused: ${e.reason}`));
        }
      });
    });
    await done;
    // ws selects the first offered protocol when it has no handleProtocols: mx1.
    assert.deepEqual(got, ['protocol mx1', 'echo:one', `echo of ${big.length} bytes`, 'close 4001 as you wish']);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

// MX/1 over WebSocket on serve()'s HTTP port, byte for byte on raw sockets: every refusal of the
// handshake (issue 15 item 1) and every close code (item 2), the first frame in the handshake's
// packet, pings between fragments, the close echo and 1001 at shutdown.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ACCEPT, RawWs, serveInProcess, upgradeRequest, type InProcess } from '../helpers/ws-raw.js';
import { closeBody, frame } from './build.js';
import { encodeFrame } from '../../src/wire/frame.js';
import { decodeError, decodeText } from '../../src/wire/payloads.js';
import { ErrorCode, Type } from '../../src/wire/protocol.js';
import type { WsEvent } from '../../src/ws/receiver.js';

let srv: InProcess;

before(async () => {
  srv = await serveInProcess(['--max-frame', '64KiB', '--admin-token', 'sesame']);
});
after(async () => {
  await srv?.stop();
});

const mx = (type: number, id: number, payload?: Buffer | string): Buffer =>
  Buffer.concat(encodeFrame(type, id, typeof payload === 'string' ? Buffer.from(payload) : payload));
const bin = (payload: Buffer): Buffer => frame({ opcode: 2, payload });

/** Sends `request` and returns the whole refusal response once the server closed. */
async function refusal(request: string, port = srv.httpPort): Promise<string> {
  const c = await RawWs.open(port, request);
  try {
    return await c.response();
  } finally {
    c.destroy();
  }
}

function assertRefusal(res: string, status: number, extra: RegExp[] = []): void {
  assert.match(res, new RegExp(`^HTTP/1\\.1 ${status} `), res);
  assert.match(res, /\r\nConnection: close\r\n/i, res);
  for (const r of extra) assert.match(res, r, res);
  const body = res.slice(res.indexOf('\r\n\r\n') + 4);
  assert.ok(body.length > 0 && body.length < 200, `a short body: ${JSON.stringify(body)}`);
  assert.doesNotMatch(res, /Sec-WebSocket-Accept/i);
}

// ---- refusals ---------------------------------------------------------------------------

test('refused: not GET is 405 with Allow: GET', async () => {
  assertRefusal(await refusal(upgradeRequest({ method: 'POST', headers: { 'Content-Length': '0' } })), 405, [/\r\nAllow: GET\r\n/]);
  assertRefusal(await refusal(upgradeRequest({ method: 'PUT' })), 405, [/\r\nAllow: GET\r\n/]);
});

test('refused: HTTP/1.0 is 400', async () => {
  assertRefusal(await refusal(upgradeRequest({ version: '1.0' })), 400);
});

test('refused: a request body (Content-Length > 0, or Transfer-Encoding) is 400', async () => {
  assertRefusal(await refusal(upgradeRequest({ headers: { 'Content-Length': '5' } }) + 'hello'), 400);
  assertRefusal(await refusal(upgradeRequest({ headers: { 'Transfer-Encoding': 'chunked' } }) + '0\r\n\r\n'), 400);
});

test('refused: no Connection upgrade token is 400', async () => {
  assertRefusal(await refusal(upgradeRequest({ headers: { Connection: 'keep-alive' } })), 400);
  assertRefusal(await refusal(upgradeRequest({ headers: { Connection: null } })), 400);
});

test('refused: a missing or malformed Sec-WebSocket-Key is 400', async () => {
  assertRefusal(await refusal(upgradeRequest({ headers: { 'Sec-WebSocket-Key': null } })), 400);
  // base64 of 15 and of 17 bytes, and not base64 at all.
  for (const key of ['AAAAAAAAAAAAAAAAAAAA', 'AAAAAAAAAAAAAAAAAAAAAAA=', 'not a key at all!!!!!==']) {
    assertRefusal(await refusal(upgradeRequest({ headers: { 'Sec-WebSocket-Key': key } })), 400);
  }
});

test('refused: Sec-WebSocket-Version other than 13 is 426 with Sec-WebSocket-Version: 13', async () => {
  assertRefusal(await refusal(upgradeRequest({ headers: { 'Sec-WebSocket-Version': '8' } })), 426, [/\r\nSec-WebSocket-Version: 13\r\n/]);
  assertRefusal(await refusal(upgradeRequest({ headers: { 'Sec-WebSocket-Version': null } })), 426, [/\r\nSec-WebSocket-Version: 13\r\n/]);
});

test('refused: a plain GET of the path is 426 with Upgrade: websocket', async () => {
  assertRefusal(await refusal('GET /.well-known/muxd/mx HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'), 426, [/\r\nUpgrade: websocket\r\n/]);
});

test('Origin: a foreign one is 403 (cross-site WebSocket hijacking); our own and none are upgraded', async () => {
  assertRefusal(await refusal(upgradeRequest({ headers: { Origin: 'https://evil.example' } })), 403);
  // Same host, other scheme or port: another origin.
  assertRefusal(await refusal(upgradeRequest({ headers: { Host: `127.0.0.1:${srv.httpPort}`, Origin: `https://127.0.0.1:${srv.httpPort}` } })), 403);
  assertRefusal(await refusal(upgradeRequest({ headers: { Host: `127.0.0.1:${srv.httpPort}`, Origin: `http://127.0.0.1:1` } })), 403);
  const own = await RawWs.upgraded(srv.httpPort, undefined, upgradeRequest({ headers: { Host: `127.0.0.1:${srv.httpPort}`, Origin: `http://127.0.0.1:${srv.httpPort}` } }));
  own.destroy();
  const none = await RawWs.upgraded(srv.httpPort);
  none.destroy();
});

test('--ws-origins: listed origins (or *) are allowed, others still refused', async () => {
  const listed = await serveInProcess(['--ws-origins', 'https://app.example, http://localhost:3000']);
  const any = await serveInProcess(['--ws-origins', '*']);
  try {
    for (const origin of ['https://app.example', 'https://APP.example:443', 'http://localhost:3000']) {
      (await RawWs.upgraded(listed.httpPort, undefined, upgradeRequest({ headers: { Origin: origin } }))).destroy();
    }
    assertRefusal(await refusal(upgradeRequest({ headers: { Origin: 'https://other.example' } }), listed.httpPort), 403);
    (await RawWs.upgraded(any.httpPort, undefined, upgradeRequest({ headers: { Origin: 'https://other.example' } }))).destroy();
  } finally {
    await listed.stop();
    await any.stop();
  }
});

test('the 101: Upgrade, Connection, Sec-WebSocket-Accept, mx1 when offered, never an extension', async () => {
  const c = await RawWs.upgraded(srv.httpPort, undefined, upgradeRequest({ headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits', 'Sec-WebSocket-Protocol': 'chat, mx1' } }));
  const head = await c.head();
  c.destroy();
  assert.match(head, /\r\nUpgrade: websocket\r\n/);
  assert.match(head, /\r\nConnection: Upgrade\r\n/);
  assert.match(head, new RegExp(`\\r\\nSec-WebSocket-Accept: ${ACCEPT.replace(/[+/=]/g, '\\$&')}\\r\\n`));
  assert.match(head, /\r\nSec-WebSocket-Protocol: mx1\r\n/);
  assert.doesNotMatch(head, /Sec-WebSocket-Extensions/i);
  const plain = await RawWs.upgraded(srv.httpPort, undefined, upgradeRequest({ headers: { 'Sec-WebSocket-Protocol': null } }));
  assert.doesNotMatch(await plain.head(), /Sec-WebSocket-Protocol/i);
  plain.destroy();
});

test('Upgrade: websocket on any other path is served as usual; a query on the ws path is the ws path', async () => {
  const c = await RawWs.open(srv.httpPort, upgradeRequest({ path: '/' }));
  const head = await c.head();
  c.destroy();
  assert.match(head, /^HTTP\/1\.1 200 /);
  const missing = await RawWs.open(srv.httpPort, upgradeRequest({ path: '/.well-known/muxd/mxx' }));
  assert.match(await missing.head(), /^HTTP\/1\.1 404 /);
  missing.destroy();
  (await RawWs.upgraded(srv.httpPort, undefined, upgradeRequest({ path: '/.well-known/muxd/mx?v=1' }))).destroy();
});

test('--ws-path moves the route; off removes it (the path is then an ordinary file path)', async () => {
  const moved = await serveInProcess(['--ws-path', '/mx']);
  const off = await serveInProcess(['--ws-path', 'off']);
  try {
    (await RawWs.upgraded(moved.httpPort, undefined, upgradeRequest({ path: '/mx' }))).destroy();
    const old = await RawWs.open(moved.httpPort, upgradeRequest());
    assert.match(await old.head(), /^HTTP\/1\.1 404 /);
    old.destroy();
    const gone = await RawWs.open(off.httpPort, upgradeRequest());
    assert.match(await gone.head(), /^HTTP\/1\.1 404 /);
    gone.destroy();
  } finally {
    await moved.stop();
    await off.stop();
  }
});

// ---- after the 101 ------------------------------------------------------------------------

test('the first frame in the same packet as the handshake is the first WebSocket frame', async () => {
  const c = await RawWs.upgraded(srv.httpPort, Buffer.concat([bin(mx(Type.PING, 9, 'early')), bin(mx(Type.PING, 10))]));
  try {
    const a = await c.event(0);
    const b = await c.event(1);
    assert.ok(a.kind === 'message' && a.data.equals(mx(Type.PING_OK, 9, 'early')));
    assert.ok(b.kind === 'message' && b.data.equals(mx(Type.PING_OK, 10)));
  } finally {
    c.destroy();
  }
});

/** Opens, sends `bytes`, returns the server's close and what came before it; checks the TCP end follows. */
async function closeFor(bytes: Buffer): Promise<{ code: number | null; reason: string; before: WsEvent[] }> {
  const c = await RawWs.upgraded(srv.httpPort);
  try {
    c.send(bytes);
    const close = await c.closeFrame();
    await c.waitEnded();
    return close;
  } finally {
    c.destroy();
  }
}

const CLOSE_CASES: { name: string; bytes: () => Buffer; code: number }[] = [
  { name: 'an unmasked client frame', bytes: () => frame({ opcode: 2, payload: mx(Type.PING, 1), mask: null }), code: 1002 },
  { name: 'an RSV bit (no extension was negotiated)', bytes: () => frame({ opcode: 2, payload: mx(Type.PING, 1), rsv: 4 }), code: 1002 },
  { name: 'a reserved data opcode', bytes: () => frame({ opcode: 3, payload: 'x' }), code: 1002 },
  { name: 'a reserved control opcode', bytes: () => frame({ opcode: 0xb }), code: 1002 },
  { name: 'a continuation with nothing to continue', bytes: () => frame({ opcode: 0, payload: mx(Type.PING, 1) }), code: 1002 },
  { name: 'a new data frame inside a fragmented message', bytes: () => Buffer.concat([frame({ opcode: 2, payload: 'ab', fin: false }), frame({ opcode: 2, payload: 'cd' })]), code: 1002 },
  { name: 'a control frame over 125 bytes', bytes: () => frame({ opcode: 9, payload: Buffer.alloc(126) }), code: 1002 },
  { name: 'a fragmented control frame', bytes: () => frame({ opcode: 9, payload: 'p', fin: false }), code: 1002 },
  { name: 'a close payload of 1 byte', bytes: () => frame({ opcode: 8, payload: Buffer.from([3]) }), code: 1002 },
  { name: 'close code 1005 (never sent)', bytes: () => frame({ opcode: 8, payload: closeBody(1005) }), code: 1002 },
  { name: 'close code 999', bytes: () => frame({ opcode: 8, payload: closeBody(999) }), code: 1002 },
  { name: 'close code 2000 (unassigned)', bytes: () => frame({ opcode: 8, payload: closeBody(2000) }), code: 1002 },
  { name: 'a text message (MX/1 is binary)', bytes: () => frame({ opcode: 1, payload: 'hello' }), code: 1003 },
  { name: 'invalid UTF-8 in a close reason', bytes: () => frame({ opcode: 8, payload: closeBody(1000, Buffer.from([0xc3, 0x28])) }), code: 1007 },
  // 64 KiB + 12 + 1, declared in the header, no payload sent: decided before any payload is buffered.
  { name: 'a message over --max-frame + 12, from its header alone', bytes: () => frame({ opcode: 2, declared: 64 * 1024 + 13 }), code: 1009 },
  { name: 'fragments adding up to over --max-frame + 12', bytes: () => Buffer.concat([frame({ opcode: 2, payload: Buffer.alloc(40_000), fin: false }), frame({ opcode: 0, declared: 40_000 })]), code: 1009 },
];

for (const c of CLOSE_CASES) {
  test(`close ${c.code}: ${c.name}`, async () => {
    const close = await closeFor(c.bytes());
    assert.equal(close.code, c.code, close.reason);
  });
}

test('a message that is not exactly one MX/1 frame: ERROR (id 0) then close 1002', async () => {
  const cases: { bytes: Buffer; error: number }[] = [
    { bytes: bin(Buffer.from([0x4d, 0x58, 1, 1, 0])), error: ErrorCode.BAD_MAGIC_OR_VERSION }, // shorter than a header
    { bytes: bin(Buffer.concat([mx(Type.PING, 1), Buffer.from('extra')])), error: ErrorCode.BAD_MAGIC_OR_VERSION }, // longer than its header says
    { bytes: bin(mx(Type.PING, 1, 'abc').subarray(0, 14)), error: ErrorCode.BAD_MAGIC_OR_VERSION }, // shorter than its header says
    { bytes: bin(Buffer.concat([mx(Type.PING, 1), mx(Type.PING, 2)])), error: ErrorCode.BAD_MAGIC_OR_VERSION }, // two frames
    { bytes: bin(Buffer.from('GET / HTTP/1.1\r\n\r\n')), error: ErrorCode.BAD_MAGIC_OR_VERSION }, // bad magic
  ];
  const big = mx(Type.PING, 1);
  big.writeUInt32BE(64 * 1024 + 1, 8); // a header asking for more than --max-frame
  cases.push({ bytes: bin(big), error: ErrorCode.FRAME_TOO_LARGE });
  for (const k of cases) {
    const close = await closeFor(k.bytes);
    assert.equal(close.code, 1002);
    assert.equal(close.before.length, 1, JSON.stringify(close.before.map((e) => e.kind)));
    const m = close.before[0]!;
    assert.ok(m.kind === 'message');
    assert.equal(m.data[3], Type.ERROR);
    assert.equal(m.data.readUInt32BE(4), 0, 'id 0');
    assert.equal(decodeError(m.data.subarray(12)).code, k.error);
  }
});

test('ping is answered by a pong with the same payload, also between the fragments of a message; pongs are ignored', async () => {
  const c = await RawWs.upgraded(srv.httpPort);
  try {
    const req = mx(Type.PING, 5, 'split');
    c.send(Buffer.concat([frame({ opcode: 10, payload: 'unsolicited' }), frame({ opcode: 9, payload: 'one' }), frame({ opcode: 2, payload: req.subarray(0, 7), fin: false }), frame({ opcode: 9, payload: 'two' }), frame({ opcode: 0, payload: req.subarray(7) })]));
    const e0 = await c.event(0);
    const e1 = await c.event(1);
    const e2 = await c.event(2);
    assert.ok(e0.kind === 'pong' && e0.payload.toString() === 'one');
    assert.ok(e1.kind === 'pong' && e1.payload.toString() === 'two');
    assert.ok(e2.kind === 'message' && e2.data.equals(mx(Type.PING_OK, 5, 'split')));
  } finally {
    c.destroy();
  }
});

test('a close is echoed with the peer\'s code, then the TCP connection ends; an empty close gets an empty one', async () => {
  const a = await closeFor(frame({ opcode: 8, payload: closeBody(4001, 'bye') }));
  assert.equal(a.code, 4001);
  const b = await closeFor(frame({ opcode: 8 }));
  assert.equal(b.code, null);
});

test('graceful shutdown: a WebSocket member gets the ANNOUNCEMENT, then close 1001, then the TCP end', async () => {
  const own = await serveInProcess();
  const c = await RawWs.upgraded(own.httpPort);
  try {
    c.send(bin(mx(Type.JOIN, 1, 'leaving')));
    const joined = await c.event(0);
    assert.ok(joined.kind === 'message' && joined.data[3] === Type.JOIN_OK);
    const stopped = own.running.shutdown(5000);
    const close = await c.closeFrame();
    assert.equal(close.code, 1001);
    const notice = close.before[1];
    assert.ok(notice?.kind === 'message' && notice.data[3] === Type.ANNOUNCEMENT, JSON.stringify(close.before.map((e) => e.kind)));
    assert.match(decodeText(notice.data.subarray(12)), /shutting down/);
    // The client answers the close, as a browser does; the server then ends the connection.
    c.send(frame({ opcode: 8, payload: closeBody(1001) }));
    await c.waitEnded();
    const report = await stopped;
    assert.equal(report.cut, 0);
  } finally {
    c.destroy();
    await own.stop();
  }
});

for (const parser of ['muxd', 'llhttp'] as const) {
  test(`--parser ${parser}: handshake, a first frame and FIN in one packet: 101, the reply, then the server ends too`, async () => {
    const own = parser === 'muxd' ? srv : await serveInProcess(['--parser', 'llhttp']);
    try {
      const c = await RawWs.open(own.httpPort, Buffer.concat([Buffer.from(upgradeRequest(), 'latin1'), bin(mx(Type.PING, 3, 'half'))]));
      c.socket.end();
      assert.match(await c.head(), /^HTTP\/1\.1 101 /);
      const e = await c.event(0);
      assert.ok(e.kind === 'message' && e.data.equals(mx(Type.PING_OK, 3, 'half')));
      await c.waitEnded();
      c.destroy();
      // The refusals are the same on either parser.
      assertRefusal(await refusal(upgradeRequest({ headers: { 'Sec-WebSocket-Version': '12' } }), own.httpPort), 426, [/\r\nSec-WebSocket-Version: 13\r\n/]);
    } finally {
      if (own !== srv) await own.stop();
    }
  });
}

test('the handshake is an HTTP request for every HTTP limit: --max-head (431), and upgraded connections count in --max-connections-per-ip (503)', async () => {
  const own = await serveInProcess(['--max-head', '2KiB', '--max-connections-per-ip', '2']);
  try {
    const big = await refusal(upgradeRequest({ headers: { 'X-Pad': 'a'.repeat(3000) } }), own.httpPort);
    assert.match(big, /^HTTP\/1\.1 431 /);
    const a = await RawWs.upgraded(own.httpPort);
    const b = await RawWs.upgraded(own.httpPort);
    const third = await RawWs.open(own.httpPort, upgradeRequest());
    assert.match(await third.response(), /^HTTP\/1\.1 503 /);
    for (const c of [a, b, third]) c.destroy();
  } finally {
    await own.stop();
  }
});

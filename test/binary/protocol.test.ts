// MX/1 server: every opcode's happy path and every error code on raw sockets.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { encodeFrame, encodeHeader } from '../../src/wire/frame.js';
import * as P from '../../src/wire/payloads.js';
import { ErrorCode, Type } from '../../src/wire/protocol.js';
import { RawClient, startTestServer, type TestServer } from './raw-client.js';
import { waitFor } from '../helpers/wait.js';
import { useTestClock } from '../helpers/test-clock.js';

let ts: TestServer;
before(async () => {
  ts = await startTestServer({ maxUpload: 1000 });
});
after(() => ts.stop());

const sha = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

test('PING echoes its payload with the same id; pipelined requests keep their ids', async () => {
  const c = await RawClient.connect(ts.port);
  c.send(Type.PING, 1, Buffer.from('one'));
  c.send(Type.PING, 2);
  c.send(Type.PING, 0xfffffffe, Buffer.from([0, 255]));
  const a = await c.next();
  const b = await c.next();
  const d = await c.next();
  assert.deepEqual([a.type, a.id, a.payload.toString()], [Type.PING_OK, 1, 'one']);
  assert.deepEqual([b.type, b.id, b.payload.length], [Type.PING_OK, 2, 0]);
  assert.deepEqual([d.type, d.id, [...d.payload]], [Type.PING_OK, 0xfffffffe, [0, 255]]);
  c.close();
});

test('STATS returns JSON with uptime, connections, counters, chat users and event-loop figures', async () => {
  const c = await RawClient.connect(ts.port);
  const f = await c.request(Type.STATS, 5);
  assert.equal(f.type, Type.STATS_OK);
  const s = JSON.parse(f.payload.toString()) as Record<string, unknown> & { connections: Record<string, number>; counters: Record<string, number>; eventLoop: { utilization: number } };
  assert.equal(typeof s.uptimeSeconds, 'number');
  assert.ok(s.connections.binary >= 1);
  assert.ok(s.counters['binary.frames'] >= 1);
  assert.equal(typeof s.chatUsers, 'number');
  assert.equal(typeof s.eventLoop.utilization, 'number');
  assert.equal((await c.expectError(Type.STATS, 6, Buffer.from('x'))).code, ErrorCode.MALFORMED);
  c.close();
});

test('error 3 for unknown and reply/push types; connection stays open', async () => {
  const c = await RawClient.connect(ts.port);
  for (const t of [0x00, 0x04, 0x81, 0x83, 0xc1, 0xff]) assert.equal((await c.expectError(t, 9)).code, ErrorCode.UNKNOWN_TYPE);
  assert.equal((await c.request(Type.PING, 10)).type, Type.PING_OK);
  c.close();
});

test('error 4 for short and malformed payloads; connection stays open', async () => {
  const c = await RawClient.connect(ts.port);
  assert.equal((await c.expectError(Type.PUT, 1, Buffer.alloc(10))).code, ErrorCode.MALFORMED);
  assert.equal((await c.expectError(Type.GET, 2, Buffer.alloc(3))).code, ErrorCode.MALFORMED);
  assert.equal((await c.expectError(Type.ANNOUNCE, 3, Buffer.from([0, 9, 1]))).code, ErrorCode.MALFORMED);
  assert.equal((await c.expectError(Type.JOIN, 4, Buffer.from([0xff, 0xfe]))).code, ErrorCode.MALFORMED);
  assert.equal((await c.expectError(Type.LIST, 5, Buffer.from('x'))).code, ErrorCode.MALFORMED);
  assert.equal((await c.request(Type.PING, 6)).type, Type.PING_OK);
  c.close();
});

test('error 1 on bad magic (e.g. an HTTP request), then the server closes', async () => {
  const c = await RawClient.connect(ts.port);
  c.writeRaw(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  const f = await c.next();
  assert.equal(f.type, Type.ERROR);
  assert.equal(f.id, 0);
  assert.equal(P.decodeError(f.payload).code, ErrorCode.BAD_MAGIC_OR_VERSION);
  await c.waitClose();
});

test('error 1 on a bad version', async () => {
  const c = await RawClient.connect(ts.port);
  const h = encodeHeader(Type.PING, 1, 0);
  h[2] = 9;
  c.writeRaw(h);
  assert.equal(P.decodeError((await c.next()).payload).code, ErrorCode.BAD_MAGIC_OR_VERSION);
  await c.waitClose();
});

test('error 2 on a frame over --max-frame, answered from the header alone, then close', async () => {
  const c = await RawClient.connect(ts.port);
  c.writeRaw(encodeHeader(Type.PING, 7, 0xffffffff));
  const f = await c.next();
  assert.equal(P.decodeError(f.payload).code, ErrorCode.FRAME_TOO_LARGE);
  await c.waitClose();
});

test('JOIN/NAMES/LEAVE replies and errors 10, 11, 12, 13', async () => {
  const a = await RawClient.connect(ts.port);
  const b = await RawClient.connect(ts.port);
  assert.equal((await a.expectError(Type.SAY, 1, Buffer.from('hi'))).code, ErrorCode.NOT_JOINED);
  assert.equal((await a.expectError(Type.LEAVE, 2)).code, ErrorCode.NOT_JOINED);
  for (const bad of ['', 'with space', 'x'.repeat(33), 'tab\t', 'server', 'ADMIN', 'a/b']) {
    assert.equal((await a.expectError(Type.JOIN, 3, Buffer.from(bad))).code, ErrorCode.INVALID_NAME, JSON.stringify(bad));
  }
  const ok = await a.request(Type.JOIN, 4, Buffer.from('alice'));
  assert.equal(ok.type, Type.JOIN_OK);
  assert.deepEqual(P.decodeNames(ok.payload), ['alice']);
  assert.equal((await a.expectError(Type.JOIN, 5, Buffer.from('other'))).code, ErrorCode.ALREADY_JOINED);
  assert.equal((await b.expectError(Type.JOIN, 1, Buffer.from('ALICE'))).code, ErrorCode.NAME_TAKEN);
  const names = await b.request(Type.NAMES, 2);
  assert.equal(names.type, Type.NAMES_OK);
  assert.deepEqual(P.decodeNames(names.payload), ['alice']);
  const left = await a.request(Type.LEAVE, 6);
  assert.equal(left.type, Type.LEAVE_OK);
  assert.equal(left.payload.length, 0);
  assert.deepEqual(P.decodeNames((await b.request(Type.JOIN, 3, Buffer.from('Alice'))).payload), ['Alice']);
  a.close();
  b.close();
});

test('SAY limits: empty and over 4096 bytes are malformed, 4096 is fine', async () => {
  const a = await RawClient.connect(ts.port);
  await a.request(Type.JOIN, 1, Buffer.from('sayer'));
  assert.equal((await a.expectError(Type.SAY, 2)).code, ErrorCode.MALFORMED);
  assert.equal((await a.expectError(Type.SAY, 3, Buffer.alloc(4097, 0x61))).code, ErrorCode.MALFORMED);
  assert.equal((await a.expectError(Type.SAY, 4, Buffer.from([0xc3]))).code, ErrorCode.MALFORMED);
  assert.equal((await a.request(Type.SAY, 5, Buffer.alloc(4096, 0x61))).type, Type.SAY_OK);
  a.close();
});

test('ANNOUNCE: bad token is 14, good token pushes to every joined user', async () => {
  const a = await RawClient.connect(ts.port);
  await a.request(Type.JOIN, 1, Buffer.from('listener1'));
  const admin = await RawClient.connect(ts.port);
  assert.equal((await admin.expectError(Type.ANNOUNCE, 1, P.encodeAnnounce('wrong', 'x'))).code, ErrorCode.FORBIDDEN);
  assert.equal((await admin.expectError(Type.ANNOUNCE, 2, P.encodeAnnounce('', 'x'))).code, ErrorCode.FORBIDDEN);
  const ok = await admin.request(Type.ANNOUNCE, 3, P.encodeAnnounce('sesame', 'maintenance at 5'));
  assert.equal(ok.type, Type.ANNOUNCE_OK);
  assert.equal(P.decodeText((await a.push(Type.ANNOUNCEMENT)).payload), 'maintenance at 5');
  assert.equal(ts.server.announce('from the operator'), 1);
  assert.equal(P.decodeText((await a.push(Type.ANNOUNCEMENT)).payload), 'from the operator');
  a.close();
  admin.close();
});

test('ANNOUNCE is always 14 when no token is configured', async () => {
  const t2 = await startTestServer({ adminToken: null });
  const c = await RawClient.connect(t2.port);
  assert.equal((await c.expectError(Type.ANNOUNCE, 1, P.encodeAnnounce('', 'x'))).code, ErrorCode.FORBIDDEN);
  assert.equal((await c.expectError(Type.ANNOUNCE, 2, P.encodeAnnounce('sesame', 'x'))).code, ErrorCode.FORBIDDEN);
  c.close();
  await t2.stop();
});

test('PUT/GET/LIST happy path and errors 20, 21, 22, 23, 24, 25', async () => {
  const c = await RawClient.connect(ts.port);
  const body = Buffer.from('hello, file');
  c.send(Type.PUT, 1, P.encodePut(body.length, sha(body), 'hello.txt'));
  c.send(Type.DATA, 1, body.subarray(0, 5));
  c.send(Type.DATA, 1, body.subarray(5));
  const put = await c.reply(1);
  assert.equal(put.type, Type.PUT_OK);
  assert.deepEqual(P.decodeFileInfo(put.payload), { size: body.length, sha256: sha(body) });

  const list = await c.request(Type.LIST, 2);
  assert.equal(list.type, Type.LIST_OK);
  assert.deepEqual(P.decodeList(list.payload), [{ size: body.length, name: 'hello.txt' }]);

  const got = await c.request(Type.GET, 3, P.encodeGet(0, 'hello.txt'));
  assert.equal(got.type, Type.GET_OK);
  assert.deepEqual(P.decodeFileInfo(got.payload), { size: body.length, sha256: sha(body) });
  const data = await c.next((f) => f.type === Type.DATA && f.id === 3);
  assert.equal(data.payload.toString(), 'hello, file');

  // Offset == size: GET_OK and no DATA.
  const end = await c.request(Type.GET, 4, P.encodeGet(body.length, 'hello.txt'));
  assert.equal(end.type, Type.GET_OK);

  assert.equal((await c.expectError(Type.GET, 5, P.encodeGet(body.length + 1, 'hello.txt'))).code, ErrorCode.OFFSET_BEYOND_END);
  assert.equal((await c.expectError(Type.GET, 6, P.encodeGet(0, 'missing.txt'))).code, ErrorCode.NOT_FOUND);
  for (const bad of ['', '.hidden', 'a/b', 'a\\b', 'nul\0', 'ctl\x07', 'x'.repeat(256)]) {
    assert.equal((await c.expectError(Type.PUT, 7, P.encodePut(1, sha(body), bad))).code, ErrorCode.BAD_FILE_NAME, JSON.stringify(bad));
    assert.equal((await c.expectError(Type.GET, 8, P.encodeGet(0, bad))).code, ErrorCode.BAD_FILE_NAME, JSON.stringify(bad));
  }
  assert.equal((await c.expectError(Type.PUT, 9, P.encodePut(1001, sha(body), 'big.bin'))).code, ErrorCode.FILE_TOO_LARGE);

  // 23: declared digest does not match the content; nothing becomes visible.
  c.send(Type.PUT, 10, P.encodePut(3, sha(Buffer.from('abc')), 'bad.txt'));
  c.send(Type.DATA, 10, Buffer.from('abd'));
  assert.equal(P.decodeError((await c.reply(10)).payload).code, ErrorCode.CHECKSUM_MISMATCH);
  assert.deepEqual(P.decodeList((await c.request(Type.LIST, 11)).payload).map((e) => e.name), ['hello.txt']);

  // 24: a second PUT or GET on an id with an upload open.
  c.send(Type.PUT, 12, P.encodePut(4, sha(Buffer.from('abcd')), 'slow.txt'));
  assert.equal((await c.expectError(Type.PUT, 12, P.encodePut(1, sha(body), 'x.txt'))).code, ErrorCode.ID_IN_USE);
  assert.equal((await c.expectError(Type.GET, 12, P.encodeGet(0, 'hello.txt'))).code, ErrorCode.ID_IN_USE);
  c.send(Type.DATA, 12, Buffer.from('abcd'));
  assert.equal((await c.reply(12)).type, Type.PUT_OK);

  // DATA beyond the declared size: 4 and the upload is gone.
  c.send(Type.PUT, 13, P.encodePut(2, sha(Buffer.from('ab')), 'over.txt'));
  c.send(Type.DATA, 13, Buffer.from('abc'));
  assert.equal(P.decodeError((await c.reply(13)).payload).code, ErrorCode.MALFORMED);
  // DATA for an id with no upload is discarded silently.
  c.send(Type.DATA, 99, Buffer.from('stray'));
  assert.equal((await c.request(Type.PING, 14)).type, Type.PING_OK);
  const names = P.decodeList((await c.request(Type.LIST, 15)).payload).map((e) => e.name);
  assert.deepEqual(names, ['hello.txt', 'slow.txt']);

  // Zero-byte file: PUT_OK without any DATA.
  const empty = await c.request(Type.PUT, 16, P.encodePut(0, sha(Buffer.alloc(0)), 'empty'));
  assert.equal(empty.type, Type.PUT_OK);
  c.close();
});

test('error 51 busy when the connection cap is reached; id 0 and the server ends the socket', async () => {
  const t2 = await startTestServer({ maxConnections: 1 });
  const first = await RawClient.connect(t2.port);
  const second = await RawClient.connect(t2.port);
  const f = await second.next();
  assert.equal(f.type, Type.ERROR);
  assert.equal(f.id, 0);
  assert.deepEqual(P.decodeError(f.payload), { code: ErrorCode.BUSY, message: 'busy: too many connections (limit 1)' });
  await second.waitClose();
  assert.equal((await first.request(Type.PING, 1)).type, Type.PING_OK);
  first.close();
  await t2.stop();
});

test('error 51 busy past --max-connections-per-ip; another address is still served', async () => {
  const t2 = await startTestServer({ maxConnectionsPerIp: 2 });
  const a = await RawClient.connect(t2.port);
  const b = await RawClient.connect(t2.port);
  assert.equal((await b.request(Type.PING, 1)).type, Type.PING_OK);
  const third = await RawClient.connect(t2.port);
  const f = await third.next();
  assert.equal(f.type, Type.ERROR);
  assert.deepEqual(P.decodeError(f.payload), { code: ErrorCode.BUSY, message: 'busy: too many connections from your address (limit 2)' });
  await third.waitClose();
  assert.equal(t2.metrics.counters['binary.refused.maxConnectionsPerIp'], 1);
  // 127.0.0.2 is another address (the whole of 127/8 is loopback on Linux).
  const other = await RawClient.connect(t2.port, '127.0.0.2');
  assert.equal((await other.request(Type.PING, 2)).type, Type.PING_OK);
  // A slot comes back when a connection closes.
  a.close();
  await waitFor(() => t2.metrics.open.binary === 2, { what: 'the closed connection to give its slot back', detail: () => `open ${t2.metrics.open.binary}` });
  const again = await RawClient.connect(t2.port);
  assert.equal((await again.request(Type.PING, 3)).type, Type.PING_OK);
  for (const c of [b, other, again]) c.close();
  await t2.stop();
});

test('idle connections are closed after the idle timeout', async () => {
  const clock = useTestClock();
  try {
    const t2 = await startTestServer({ idleTimeoutMs: 50 });
    const c = await RawClient.connect(t2.port);
    // The time passes on the test clock (a silent connection waits the 10 s hello timeout).
    await clock.advanceUntil(() => c.closed, { what: 'the server to close an idle connection' });
    await c.waitClose();
    assert.ok(c.closed);
    await t2.stop();
  } finally {
    clock.restore();
  }
});

test('hostile: a frame split into single bytes is decoded; trailing garbage after good frames still gets answers first', async () => {
  const c = await RawClient.connect(ts.port);
  const bytes = Buffer.concat([...encodeFrame(Type.PING, 21, Buffer.from('slow')), ...encodeFrame(Type.PING, 22)]);
  for (const b of bytes) c.writeRaw(Buffer.from([b]));
  assert.equal((await c.reply(21)).payload.toString(), 'slow');
  assert.equal((await c.reply(22)).type, Type.PING_OK);
  c.writeRaw(Buffer.concat([...encodeFrame(Type.PING, 23), Buffer.from('garbage!garbage!')]));
  assert.equal((await c.reply(23)).type, Type.PING_OK);
  assert.equal(P.decodeError((await c.next((f) => f.type === Type.ERROR)).payload).code, ErrorCode.BAD_MAGIC_OR_VERSION);
  await c.waitClose();
});

test('idle timeout spares a chat member that only listens', async () => {
  const clock = useTestClock();
  try {
    const t2 = await startTestServer({ idleTimeoutMs: 100 });
    const listener = await RawClient.connect(t2.port);
    assert.equal((await listener.request(Type.JOIN, 1, Buffer.from('quiet'))).type, Type.JOIN_OK);
    const idle = await RawClient.connect(t2.port);
    await clock.advanceUntil(() => idle.closed, { what: 'the server to close the idle connection' });
    await idle.waitClose();
    // Well past the timeout, swept at once: the member is still there.
    clock.advance(700);
    assert.equal(listener.closed, false);
    const talker = await RawClient.connect(t2.port);
    talker.send(Type.JOIN, 1, Buffer.from('talker'));
    talker.send(Type.SAY, 2, Buffer.from('still there?'));
    const msg = await listener.push(Type.MESSAGE);
    assert.deepEqual(P.decodeMessage(msg.payload), { from: 'talker', text: 'still there?' });
    // After LEAVE the connection is idle again and is closed.
    assert.equal((await listener.request(Type.LEAVE, 2)).type, Type.LEAVE_OK);
    await clock.advanceUntil(() => listener.closed, { what: 'the server to close the member after LEAVE' });
    await listener.waitClose();
    talker.close();
    await t2.stop();
  } finally {
    clock.restore();
  }
});

test('ANNOUNCE text is 1..4096 bytes, checked after the token', async () => {
  const c = await RawClient.connect(ts.port);
  assert.equal((await c.expectError(Type.ANNOUNCE, 1, P.encodeAnnounce('sesame', ''))).code, ErrorCode.MALFORMED);
  assert.equal((await c.expectError(Type.ANNOUNCE, 2, P.encodeAnnounce('sesame', 'x'.repeat(4097)))).code, ErrorCode.MALFORMED);
  assert.equal((await c.expectError(Type.ANNOUNCE, 3, P.encodeAnnounce('wrong', ''))).code, ErrorCode.FORBIDDEN);
  assert.equal((await c.request(Type.ANNOUNCE, 4, P.encodeAnnounce('sesame', 'y'.repeat(4096)))).type, Type.ANNOUNCE_OK);
  c.close();
});

test('ANNOUNCE with invalid UTF-8 text: a bad token is still 14 (token before text), a good one 4', async () => {
  const c = await RawClient.connect(ts.port);
  const withText = (token: string, text: Buffer): Buffer => Buffer.concat([P.encodeAnnounce(token, ''), text]);
  assert.equal((await c.expectError(Type.ANNOUNCE, 1, withText('bad', Buffer.from([0xff])))).code, ErrorCode.FORBIDDEN);
  assert.equal((await c.expectError(Type.ANNOUNCE, 2, withText('sesame', Buffer.from([0xff])))).code, ErrorCode.MALFORMED);
  // Too long and invalid: still the token first.
  assert.equal((await c.expectError(Type.ANNOUNCE, 3, withText('bad', Buffer.alloc(5000, 0xff)))).code, ErrorCode.FORBIDDEN);
  assert.equal((await c.expectError(Type.ANNOUNCE, 4, withText('sesame', Buffer.alloc(5000, 0xff)))).code, ErrorCode.MALFORMED);
  // A token field that cannot be read at all is 4.
  assert.equal((await c.expectError(Type.ANNOUNCE, 5, Buffer.from([0, 9, 0x61]))).code, ErrorCode.MALFORMED);
  assert.equal((await c.request(Type.ANNOUNCE, 6, P.encodeAnnounce('sesame', 'ok'))).type, Type.ANNOUNCE_OK);
  c.close();
});

test('STATS tells a client the limits it must respect', async () => {
  const c = await RawClient.connect(ts.port);
  // (this file's shared server runs with --max-upload 1000)
  const stats = JSON.parse((await c.request(Type.STATS, 1)).payload.toString('utf8')) as { limits: Record<string, number> };
  assert.deepEqual(stats.limits, { maxFrameBytes: 1024 * 1024, maxUploadBytes: 1000, maxSayBytes: 4096, maxOutputBytes: 1024 * 1024 });
  c.close();
});

test('LIST is sorted by the UTF-8 bytes of the names (code point order)', async () => {
  const t2 = await startTestServer();
  const c = await RawClient.connect(t2.port);
  // U+FF21 (fullwidth A) sorts after U+1F600 in UTF-16 code units but before it in code points.
  const names = ['b', 'B', '\u{1F600}.txt', '\uFF21.txt', '_x', 'é'];
  let id = 1;
  for (const name of names) {
    const data = Buffer.from(name);
    c.send(Type.PUT, id, P.encodePut(data.length, createHash('sha256').update(data).digest(), name));
    c.send(Type.DATA, id, data);
    assert.equal((await c.reply(id)).type, Type.PUT_OK);
    id++;
  }
  const listed = P.decodeList((await c.request(Type.LIST, id)).payload).map((e) => e.name);
  assert.deepEqual(listed, ['B', '_x', 'b', 'é', '\uFF21.txt', '\u{1F600}.txt']);
  c.close();
  await t2.stop();
});

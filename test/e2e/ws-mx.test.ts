// MX/1 over WebSocket against the real `muxd serve`, with the `ws` package as the client: the
// upgrade on the HTTP port, PING, and a WebSocket member and a TCP member in one room.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { startMuxd, runMuxd, type MuxdProcess } from '../helpers/muxd-process.js';
import { RawClient } from '../binary/raw-client.js';
import { WsMxClient } from '../helpers/ws-mx.js';
import { ErrorCode, Type } from '../../src/wire/protocol.js';
import * as P from '../../src/wire/payloads.js';

let tmp = '';
let muxd: MuxdProcess;

before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'muxd-ws-'));
  muxd = await startMuxd(['--files-dir', path.join(tmp, 'files'), '--udp-port', 'off', '--admin-token', 'sesame', '--upload-token', 'up-token']);
});

after(async () => {
  await muxd?.stop();
  await rm(tmp, { recursive: true, force: true });
});

test('ws: the upgrade selects mx1 and PING is answered with one message per frame', async () => {
  const c = await WsMxClient.connect(muxd.httpPort);
  try {
    assert.equal(c.ws.protocol, 'mx1');
    assert.equal(c.ws.extensions, '', 'no extension is ever accepted');
    const f = await c.request(Type.PING, 7, Buffer.from('hello'));
    assert.equal(f.type, Type.PING_OK);
    assert.equal(f.payload.toString(), 'hello');
    // Many requests at once: every reply is one message (the server's batches are cut at frame boundaries).
    for (let i = 100; i < 300; i++) c.send(Type.PING, i, Buffer.alloc(i % 50, i));
    for (let i = 100; i < 300; i++) {
      const r = await c.reply(i);
      assert.equal(r.type, Type.PING_OK);
      assert.deepEqual(r.payload, Buffer.alloc(i % 50, i));
    }
    assert.deepEqual(c.malformed, []);
  } finally {
    c.close();
  }
});

test('ws: a WebSocket member and a TCP member share the room; STATS counts connections.ws', async () => {
  const w = await WsMxClient.connect(muxd.httpPort);
  const t = await RawClient.connect(muxd.binaryPort);
  try {
    assert.deepEqual(P.decodeNames((await w.request(Type.JOIN, 1, Buffer.from('webby'))).payload), ['webby']);
    assert.deepEqual(P.decodeNames((await t.request(Type.JOIN, 1, Buffer.from('tcpy'))).payload), ['webby', 'tcpy']);
    assert.equal(P.decodeText((await w.push(Type.USER_JOINED)).payload), 'tcpy');
    assert.equal((await w.request(Type.SAY, 2, Buffer.from('from the browser'))).type, Type.SAY_OK);
    assert.deepEqual(P.decodeMessage((await t.push(Type.MESSAGE)).payload), { from: 'webby', text: 'from the browser' });
    assert.equal((await t.request(Type.SAY, 2, Buffer.from('from the terminal'))).type, Type.SAY_OK);
    assert.deepEqual(P.decodeMessage((await w.push(Type.MESSAGE)).payload), { from: 'tcpy', text: 'from the terminal' });
    const stats = JSON.parse((await w.request(Type.STATS, 3)).payload.toString()) as { connections: Record<string, number> };
    assert.equal(stats.connections.ws, 1);
    w.close();
    assert.equal(P.decodeText((await t.push(Type.USER_LEFT)).payload), 'webby');
  } finally {
    w.close();
    t.close();
  }
});

test('ws: STATS counts the WebSocket connection as ws only, and `muxd stats` shows it', async () => {
  const w = await WsMxClient.connect(muxd.httpPort);
  try {
    const stats = JSON.parse((await w.request(Type.STATS, 1)).payload.toString()) as { connections: Record<string, number>; acceptedConnections: Record<string, number> };
    assert.equal(stats.connections.ws, 1);
    assert.equal(stats.connections.http, 0, 'an upgraded connection is no longer an HTTP one');
    assert.ok(stats.acceptedConnections.ws! >= 1);
    const r = await runMuxd(['stats', '--port', String(muxd.binaryPort)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^connections +.*ws 1/m);
  } finally {
    w.close();
  }
});

test('ws: JOIN/SAY/LEAVE with pushes, NAMES, ANNOUNCE (admin token) to WebSocket and TCP members alike', async () => {
  const a = await WsMxClient.connect(muxd.httpPort);
  const b = await WsMxClient.connect(muxd.httpPort);
  const t = await RawClient.connect(muxd.binaryPort);
  try {
    await a.request(Type.JOIN, 1, Buffer.from('ann'));
    await b.request(Type.JOIN, 1, Buffer.from('bob'));
    await t.request(Type.JOIN, 1, Buffer.from('tim'));
    assert.equal(P.decodeText((await a.push(Type.USER_JOINED)).payload), 'bob');
    assert.equal(P.decodeText((await a.push(Type.USER_JOINED)).payload), 'tim');
    assert.equal(P.decodeText((await b.push(Type.USER_JOINED)).payload), 'tim');
    assert.equal((await b.expectError(Type.JOIN, 2, Buffer.from('ANN'))).code, ErrorCode.ALREADY_JOINED);
    assert.deepEqual(P.decodeNames((await b.request(Type.NAMES, 3)).payload).sort(), ['ann', 'bob', 'tim']);
    // A message with markup is bytes like any other.
    const xss = '<img src=x onerror=alert(1)>';
    await a.request(Type.SAY, 4, Buffer.from(xss));
    assert.deepEqual(P.decodeMessage((await b.push(Type.MESSAGE)).payload), { from: 'ann', text: xss });
    assert.deepEqual(P.decodeMessage((await t.push(Type.MESSAGE)).payload), { from: 'ann', text: xss });
    assert.equal((await a.expectError(Type.ANNOUNCE, 5, P.encodeAnnounce('wrong', 'no'))).code, ErrorCode.FORBIDDEN);
    assert.equal((await a.request(Type.ANNOUNCE, 6, P.encodeAnnounce('sesame', 'maintenance at noon'))).type, Type.ANNOUNCE_OK);
    for (const c of [a, b]) assert.equal(P.decodeText((await c.push(Type.ANNOUNCEMENT)).payload), 'maintenance at noon');
    assert.equal(P.decodeText((await t.push(Type.ANNOUNCEMENT)).payload), 'maintenance at noon');
    assert.equal((await b.request(Type.LEAVE, 7)).type, Type.LEAVE_OK);
    assert.equal(P.decodeText((await a.push(Type.USER_LEFT)).payload), 'bob');
    assert.equal(P.decodeText((await t.push(Type.USER_LEFT)).payload), 'bob');
    assert.deepEqual([a.malformed, b.malformed], [[], []]);
  } finally {
    a.close();
    b.close();
    t.close();
  }
});

test('ws: PUT needs AUTH with --upload-token; PUT/GET/LIST of a multi-frame file over WebSocket', async () => {
  const c = await WsMxClient.connect(muxd.httpPort);
  const sha = (b: Buffer): Buffer => createHash('sha256').update(b).digest();
  const body = randomBytes(3 * 1024 * 1024 + 17);
  try {
    const refused = await c.expectError(Type.PUT, 1, P.encodePut(body.length, sha(body), 'ws.bin'));
    assert.equal(refused.code, ErrorCode.FORBIDDEN);
    assert.equal((await c.request(Type.AUTH, 2, P.encodeStr16('up-token'))).type, Type.AUTH_OK);
    c.send(Type.PUT, 3, P.encodePut(body.length, sha(body), 'ws.bin'));
    for (let at = 0; at < body.length; at += 64 * 1024) c.send(Type.DATA, 3, body.subarray(at, at + 64 * 1024));
    const put = await c.reply(3);
    assert.equal(put.type, Type.PUT_OK, put.type === Type.ERROR ? P.decodeError(put.payload).message : '');
    const list = P.decodeList((await c.request(Type.LIST, 4)).payload);
    assert.ok(list.some((e) => e.name === 'ws.bin' && e.size === body.length), JSON.stringify(list));
    const get = await c.request(Type.GET, 5, P.encodeGet(0, 'ws.bin'));
    assert.equal(get.type, Type.GET_OK);
    assert.ok(P.decodeFileInfo(get.payload).sha256.equals(sha(body)));
    const parts: Buffer[] = [];
    for (let got = 0; got < body.length; ) {
      const f = await c.next((x) => x.type === Type.DATA && x.id === 5, 'DATA of the download');
      parts.push(f.payload);
      got += f.payload.length;
    }
    assert.ok(Buffer.concat(parts).equals(body));
    assert.deepEqual(c.malformed, []);
  } finally {
    c.close();
  }
});

for (const workers of ['1', '2']) {
  test(`ws: SIGTERM (--workers ${workers}): a WebSocket member gets the ANNOUNCEMENT, then close 1001, and the server exits 0`, async () => {
    const own = await startMuxd(['--files-dir', path.join(tmp, `files-term-${workers}`), '--udp-port', 'off', '--workers', workers]);
    const c = await WsMxClient.connect(own.httpPort);
    try {
      await c.request(Type.JOIN, 1, Buffer.from('until-the-end'));
      const exited = new Promise<number | null>((resolve) => own.proc.once('exit', (code) => resolve(code)));
      own.proc.kill('SIGTERM');
      assert.match(P.decodeText((await c.push(Type.ANNOUNCEMENT)).payload), /shutting down/);
      const close = await c.waitClose();
      assert.equal(close.code, 1001);
      assert.equal(await exited, 0);
    } finally {
      c.close();
      await own.stop();
    }
  });
}

// MX/1 over WebSocket against the real `muxd serve`, with the `ws` package as the client: the
// upgrade on the HTTP port, PING, and a WebSocket member and a TCP member in one room.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startMuxd, type MuxdProcess } from '../helpers/muxd-process.js';
import { RawClient } from '../binary/raw-client.js';
import { WsMxClient } from '../helpers/ws-mx.js';
import { Type } from '../../src/wire/protocol.js';
import * as P from '../../src/wire/payloads.js';

let tmp = '';
let muxd: MuxdProcess;

before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'muxd-ws-'));
  muxd = await startMuxd(['--files-dir', path.join(tmp, 'files'), '--udp-port', 'off', '--admin-token', 'sesame']);
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

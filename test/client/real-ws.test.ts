// The client library and the CLI against a real `muxd serve` WebSocket face (the HTTP port's
// /.well-known/muxd/mx): every method, a WebSocket member and a TCP member in one room, the CLI
// with --url, and the graceful shutdown seen by a WebSocket client (announcement, then close 1001).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect, MuxError, WsCloseError, type MuxClient } from '../../src/client/index.js';
import { ErrorCode } from '../../src/wire/protocol.js';
import { collector } from '../helpers/collector.js';
import { runMuxd, startMuxd, type MuxdProcess } from '../helpers/muxd-process.js';
import { waitFor, within } from '../helpers/wait.js';

const TOKEN = 'sesame';
let muxd: MuxdProcess;
let url: string;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'muxd-real-ws-'));
const clients: MuxClient[] = [];

before(async () => {
  muxd = await startMuxd(['--files-dir', path.join(tmp, 'files'), '--udp-port', 'off', '--admin-token', TOKEN]);
  url = `ws://127.0.0.1:${muxd.httpPort}/.well-known/muxd/mx`;
});
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await muxd.stop();
  rmSync(tmp, { recursive: true, force: true });
});

async function open(): Promise<MuxClient> {
  const c = await connect({ url, timeoutMs: 5000 });
  clients.push(c);
  return c;
}

function next(c: MuxClient, event: string): Promise<unknown[]> {
  return within(new Promise((resolve) => c.once(event, (...args: unknown[]) => resolve(args))), 5000, `the ${event} event`);
}

describe('client over the real WebSocket face of muxd serve', () => {
  test('ping, stats, put, list, get', async () => {
    const c = await open();
    const p = randomBytes(70_000);
    assert.deepEqual(await c.ping(p), p);
    assert.equal(typeof (await c.stats()).connections, 'object');
    const data = randomBytes(1_500_000);
    const sha256 = createHash('sha256').update(data).digest();
    assert.deepEqual(await c.put('real-ws.bin', data), { size: data.length, sha256 });
    assert.ok((await c.list()).some((e) => e.name === 'real-ws.bin'));
    const sink = collector();
    await c.get('real-ws.bin', sink);
    assert.ok(sink.data().equals(data));
  });

  test('a WebSocket member and a TCP member share the room, announcements included', async () => {
    const ws = await open();
    const tcp = await connect({ port: muxd.binaryPort, timeoutMs: 5000 });
    clients.push(tcp);
    await ws.join('wsada');
    const joined = next(ws, 'userJoined');
    assert.deepEqual([...(await tcp.join('tcpbob'))].sort(), ['tcpbob', 'wsada']);
    assert.deepEqual(await joined, ['tcpbob']);
    const msg = next(tcp, 'message');
    await ws.say('from the websocket');
    assert.deepEqual(await msg, ['wsada', 'from the websocket']);
    const heard = next(ws, 'announcement');
    await tcp.announce(TOKEN, 'hello all');
    assert.deepEqual(await heard, ['hello all']);
    await assert.rejects(ws.announce('wrong', 'x'), (e: unknown) => e instanceof MuxError && e.code === ErrorCode.FORBIDDEN);
    await ws.leave();
    await tcp.leave();
  });

  test('the CLI: ping and stats with --url', async () => {
    const r = await runMuxd(['ping', '--count', '2', '--interval', '0', '--url', url]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /2 pings transmitted, 2 received, 0% loss/);
    const s = await runMuxd(['stats', '--json', '--url', url]);
    assert.equal(s.code, 0, s.stderr);
  });
});

describe('graceful shutdown seen over WebSocket', () => {
  test('SIGTERM: the announcement, then close 1001 as a close event without error', async () => {
    const own = await startMuxd(['--files-dir', path.join(tmp, 'files2'), '--udp-port', 'off']);
    try {
      const c = await connect({ url: `ws://127.0.0.1:${own.httpPort}/.well-known/muxd/mx`, timeoutMs: 5000 });
      await c.join('leaver');
      const errors: unknown[] = [];
      c.on('error', (e) => errors.push(e));
      const announced = next(c, 'announcement');
      const closed = next(c, 'close');
      own.proc.kill('SIGTERM');
      await announced;
      assert.deepEqual(await closed, [false]);
      assert.deepEqual(errors, []);
      await assert.rejects(c.ping(), (e: unknown) => e instanceof WsCloseError && e.closeCode === 1001);
      await waitFor(() => own.proc.exitCode !== null || undefined, { what: 'muxd to exit' });
      assert.equal(own.proc.exitCode, 0);
    } finally {
      await own.stop();
    }
  });
});

// Time after the 101, on an injected clock (the sweeper and the drivers read the test clock, so
// nothing sleeps): the WebSocket ping interval and idle close, the MX/1 hello and idle timeouts,
// and the slow-reader drop by --max-output, all on serve()'s HTTP port.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RawWs, serveInProcess } from '../helpers/ws-raw.js';
import { useTestClock } from '../helpers/test-clock.js';
import { waitFor } from '../helpers/wait.js';
import { frame } from './build.js';
import { WsMxClient } from '../helpers/ws-mx.js';
import { encodeFrame } from '../../src/wire/frame.js';
import { Type } from '../../src/wire/protocol.js';
import * as P from '../../src/wire/payloads.js';

const mx = (type: number, id: number, payload?: Buffer): Buffer => Buffer.concat(encodeFrame(type, id, payload));
const bin = (payload: Buffer): Buffer => frame({ opcode: 2, payload });

test('--ws-ping-interval: a ping every interval; a peer that sends nothing for two intervals is closed 1001', async () => {
  const srv = await serveInProcess(['--ws-ping-interval', '1s']);
  const clock = useTestClock();
  try {
    const c = await RawWs.upgraded(srv.httpPort);
    c.send(bin(mx(Type.PING, 1)));
    await c.event(0, 'the PING_OK');
    const alive = clock.now();
    await clock.advanceUntil(() => c.events.some((e) => e.kind === 'ping'), { what: 'a ping', stepMs: 100, limitMs: 5000 });
    assert.ok(clock.now() - alive >= 900, `not before the interval: ${clock.now() - alive} ms`);
    // Answering (any bytes) keeps it open past two intervals from the start.
    c.send(frame({ opcode: 10 }));
    await waitFor(() => srv.running.metrics.snapshot().connections.ws === 1, { what: 'still connected' });
    const answered = clock.now();
    await clock.advanceUntil(() => c.events.some((e) => e.kind === 'close') || c.closed, { what: 'the idle close', stepMs: 100, limitMs: 10_000 });
    const close = await c.closeFrame();
    assert.equal(close.code, 1001);
    assert.ok(clock.now() - answered >= 1900, `idle close only after two silent intervals: ${clock.now() - answered} ms`);
    await c.waitEnded();
    c.destroy();
  } finally {
    clock.restore();
    await srv.stop();
  }
});

test('--ws-ping-interval 0: no pings and no idle close (the MX/1 idle timeout still applies to non-members)', async () => {
  const srv = await serveInProcess(['--ws-ping-interval', '0', '--binary-idle-timeout', '10m']);
  const clock = useTestClock();
  try {
    const c = await RawWs.upgraded(srv.httpPort);
    c.send(bin(mx(Type.PING, 1)));
    await c.event(0);
    // Nine and a half minutes, under the 10-minute MX/1 idle timeout.
    for (let i = 0; i < 19; i++) {
      clock.advance(30_000);
      await new Promise((r) => setTimeout(r, 2));
    }
    assert.deepEqual(c.events.map((e) => e.kind), ['message']);
    assert.equal(c.closed, false);
    c.destroy();
  } finally {
    clock.restore();
    await srv.stop();
  }
});

test('--binary-hello-timeout: an upgraded connection that sends no whole MX/1 frame in time is closed', async () => {
  const srv = await serveInProcess(['--binary-hello-timeout', '500ms', '--ws-ping-interval', '0']);
  const clock = useTestClock();
  try {
    const silent = await RawWs.upgraded(srv.httpPort);
    // Half an MX/1 frame: a fragment that never completes.
    const half = await RawWs.upgraded(srv.httpPort, frame({ opcode: 2, payload: mx(Type.PING, 1).subarray(0, 6), fin: false }));
    const greeted = await RawWs.upgraded(srv.httpPort, bin(mx(Type.PING, 1)));
    await greeted.event(0);
    await clock.advanceUntil(() => silent.closed && half.closed, { what: 'the hello timeout to close both', stepMs: 100, limitMs: 5000 });
    assert.equal(greeted.closed, false, 'a whole frame in time keeps it');
    assert.equal(srv.running.metrics.snapshot().counters['binary.helloTimeouts'], 2);
    greeted.destroy();
  } finally {
    clock.restore();
    await srv.stop();
  }
});

test('--binary-idle-timeout: an idle WebSocket that is not a chat member is closed; a member is not', async () => {
  const srv = await serveInProcess(['--binary-idle-timeout', '2s', '--ws-ping-interval', '0']);
  const clock = useTestClock();
  try {
    const idle = await RawWs.upgraded(srv.httpPort, bin(mx(Type.PING, 1)));
    const member = await RawWs.upgraded(srv.httpPort, bin(mx(Type.JOIN, 1, Buffer.from('stays'))));
    await idle.event(0);
    await member.event(0);
    const t0 = clock.now();
    await clock.advanceUntil(() => idle.closed, { what: 'the idle timeout', stepMs: 250, limitMs: 10_000 });
    assert.ok(clock.now() - t0 >= 1900);
    clock.advance(10_000);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(member.closed, false);
    member.destroy();
  } finally {
    clock.restore();
    await srv.stop();
  }
});

test('--max-output: a WebSocket member that stops reading is dropped by the same rule as TCP; the others see USER_LEFT', async () => {
  const srv = await serveInProcess(['--max-output', '64KiB']);
  try {
    const sleeper = await RawWs.upgraded(srv.httpPort, bin(mx(Type.JOIN, 1, Buffer.from('sleeper'))));
    await sleeper.event(0);
    sleeper.socket.pause(); // never reads again
    const talker = await WsMxClient.connect(srv.httpPort);
    const watcher = await WsMxClient.connect(srv.httpPort);
    await talker.request(Type.JOIN, 1, Buffer.from('talker'));
    await watcher.request(Type.JOIN, 1, Buffer.from('watcher'));
    const text = Buffer.alloc(4096, 0x7a);
    let dropped = false;
    const left = talker.next((f) => f.type === Type.USER_LEFT && P.decodeText(f.payload) === 'sleeper', 'sleeper leaving', 60_000).then(() => (dropped = true));
    let id = 10;
    // Up to 64 MiB of chat, in bursts small enough (64 KiB) that a member that does read (the
    // watcher, in this same process and so only reading between bursts) never holds more.
    for (let round = 0; round < 1024 && !dropped; round++) {
      const first = id;
      for (let k = 0; k < 16; k++) talker.send(Type.SAY, id++, text);
      for (let k = first; k < id; k++) await talker.reply(k);
      watcher.frames.splice(0, watcher.frames.length, ...watcher.frames.filter((f) => f.type !== Type.MESSAGE));
    }
    await left;
    assert.deepEqual(P.decodeNames((await talker.request(Type.NAMES, 2)).payload), ['talker', 'watcher']);
    assert.equal(srv.running.metrics.snapshot().counters['binary.slowConsumersDropped'], 1);
    for (const c of [talker, watcher]) c.close();
    sleeper.destroy();
  } finally {
    await srv.stop();
  }
});

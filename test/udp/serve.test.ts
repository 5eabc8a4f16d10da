// MX/1 over UDP in the real `muxd serve` process: a UDP member and a TCP member in one room,
// the CLI's --udp commands, STATS counting datagrams, and --udp-port off.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect, connectUdp } from '../../src/client/index.js';
import { runMuxd, startMuxd, type MuxdProcess } from '../helpers/muxd-process.js';

let server: MuxdProcess;
let udpPort: number;
let filesDir: string;

export function udpPortOf(output: string): number {
  const m = /muxd udp listening on [^\s]+:(\d+)/.exec(output);
  assert.ok(m, `no UDP ready line in:\n${output}`);
  return Number(m[1]);
}

before(async () => {
  filesDir = await mkdtemp(path.join(os.tmpdir(), 'muxd-udp-'));
  server = await startMuxd(['--files-dir', filesDir, '--admin-token', 'tok']);
  // The ready line comes after the TCP ones.
  const deadline = Date.now() + 5000;
  while (!/muxd udp listening/.test(server.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  udpPort = udpPortOf(server.output());
});

after(async () => {
  await server.stop();
  await rm(filesDir, { recursive: true, force: true });
});

test('a UDP member and a TCP member chat both ways in one room', async () => {
  const tcp = await connect({ port: server.binaryPort });
  const udp = await connectUdp({ port: udpPort });
  try {
    await tcp.join('tcpalice');
    const joined = once(tcp, 'userJoined');
    assert.deepEqual(await udp.join('udpbob'), ['tcpalice', 'udpbob']);
    assert.deepEqual(await joined, ['udpbob']);
    const toTcp = once(tcp, 'message');
    await udp.say('hello over UDP');
    assert.deepEqual(await toTcp, ['udpbob', 'hello over UDP']);
    const toUdp = once(udp, 'message');
    await tcp.say('hello over TCP');
    assert.deepEqual(await toUdp, ['tcpalice', 'hello over TCP']);
    const ann = once(udp, 'announcement');
    await tcp.announce('tok', 'news for everyone');
    assert.deepEqual(await ann, ['news for everyone']);
    assert.deepEqual(await udp.names(), ['tcpalice', 'udpbob']);
    const left = once(tcp, 'userLeft');
    await udp.leave();
    assert.deepEqual(await left, ['udpbob']);
  } finally {
    await udp.close();
    await tcp.close();
  }
});

test('a TCP client cannot take a UDP member\'s name', async () => {
  const udp = await connectUdp({ port: udpPort });
  const tcp = await connect({ port: server.binaryPort });
  try {
    await udp.join('carol');
    await assert.rejects(tcp.join('CAROL'), (err: Error & { code?: number }) => err.code === 11);
  } finally {
    await tcp.close();
    await udp.close();
  }
});

test('STATS over UDP counts datagrams in and out, and UDP members', async () => {
  const udp = await connectUdp({ port: udpPort });
  try {
    await udp.join('dave');
    const stats = (await udp.stats()) as { counters: Record<string, number>; gauges: Record<string, number>; limits: Record<string, number> };
    assert.ok(stats.counters['udp.datagramsIn']! >= 2);
    assert.ok(stats.counters['udp.datagramsOut']! >= 1);
    assert.equal(stats.gauges.udpMembers, 1);
    assert.equal(stats.limits.maxDatagramBytes, 65507);
  } finally {
    await udp.close();
  }
});

test('CLI: muxd ping --udp, muxd stats --udp, muxd chat --udp', async () => {
  const ping = await runMuxd(['ping', '--udp', '--port', String(udpPort), '--count', '2', '--interval', '0']);
  assert.equal(ping.code, 0, ping.stderr);
  assert.match(ping.stdout, /PING 127\.0\.0\.1:\d+ \(MX\/1 over UDP\): 56 bytes/);
  assert.match(ping.stdout, /2 pings transmitted, 2 received, 0% loss/);
  const stats = await runMuxd(['stats', '--udp', '--json', '--port', String(udpPort)]);
  assert.equal(stats.code, 0, stats.stderr);
  assert.ok((JSON.parse(stats.stdout) as { counters: Record<string, number> }).counters['udp.datagramsIn']! > 0);
  const human = await runMuxd(['stats', '--udp', '--port', String(udpPort)]);
  assert.match(human.stdout, /UDP datagrams +in \d+ · out \d+ · dropped \d+ · members \d+/);
  // Chat: a TCP member hears the piped lines of a UDP chat.
  const tcp = await connect({ port: server.binaryPort });
  try {
    await tcp.join('listener');
    const heard = once(tcp, 'message');
    const chat = await runMuxd(['chat', '--udp', '--port', String(udpPort), '--name', 'piper'], { input: 'piped over udp\n' });
    assert.equal(chat.code, 0, chat.stderr);
    assert.deepEqual(await heard, ['piper', 'piped over udp']);
    assert.match(chat.stdout, /joined as piper; present: listener, piper/);
  } finally {
    await tcp.close();
  }
  const bad = await runMuxd(['ping', '--udp', '--socket', '/tmp/x.sock']);
  assert.equal(bad.code, 2);
});

test('--udp-port off: no UDP face', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'muxd-udp-off-'));
  const off = await startMuxd(['--files-dir', dir, '--udp-port', 'off']);
  try {
    await new Promise((r) => setTimeout(r, 200));
    assert.doesNotMatch(off.output(), /muxd udp listening/);
  } finally {
    await off.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

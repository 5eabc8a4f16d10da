// --tcp-notsent-lowat end to end: `muxd serve` caps what the kernel queues for a reader that has
// stopped reading, on both faces (an HTTP GET and an MX/1 GET of an 8 MiB file), and
// `--tcp-notsent-lowat 0` leaves Linux's autotuned send buffer. The kernel's own figure is read
// from /proc/net/tcp (tx_queue: bytes sent but not acknowledged, plus bytes not yet sent).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startMuxd, type MuxdProcess } from '../helpers/muxd-process.js';
import { encodeFrame } from '../../src/wire/frame.js';
import { encodeGet } from '../../src/wire/payloads.js';
import { Type } from '../../src/wire/protocol.js';
import { unsentLimitProblem } from '../../src/loop/unsent-limit.js';

const skip = unsentLimitProblem() ?? false;
const SIZE = 8 * 1024 * 1024;

/** The tx_queue of the socket from localPort to remotePort in /proc/net/tcp, or null. */
async function txQueue(localPort: number, remotePort: number): Promise<number | null> {
  const hex = (p: number): string => p.toString(16).toUpperCase().padStart(4, '0');
  for (const line of (await readFile('/proc/net/tcp', 'latin1')).split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || !f[1]!.endsWith(`:${hex(localPort)}`) || !f[2]!.endsWith(`:${hex(remotePort)}`)) continue;
    return parseInt(f[4]!.split(':')[0]!, 16);
  }
  return null;
}

/** Sends `request`, reads 16 KiB, stops reading; returns the server socket's tx_queue once it stops growing. */
async function stalledReader(port: number, request: Buffer): Promise<number> {
  const sock = net.connect({ port, host: '127.0.0.1' });
  sock.on('error', () => undefined);
  let got = 0;
  sock.on('data', (c: Buffer) => {
    got += c.length;
    if (got >= 16 * 1024) sock.pause();
  });
  await new Promise((r) => sock.once('connect', r));
  sock.write(request);
  let last = -1;
  let now = 0;
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    now = (await txQueue(port, sock.localPort!)) ?? 0;
    if (now > 0 && now === last) break;
    last = now;
  }
  sock.destroy();
  return now;
}

describe('--tcp-notsent-lowat', { skip }, () => {
  let tmp = '';
  const servers: Record<'limited' | 'unlimited', MuxdProcess | null> = { limited: null, unlimited: null };

  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'muxd-lowat-'));
    await mkdir(path.join(tmp, 'site'));
    await mkdir(path.join(tmp, 'files'));
    const big = Buffer.alloc(SIZE, 0x62);
    await writeFile(path.join(tmp, 'site', 'big.bin'), big);
    await writeFile(path.join(tmp, 'files', 'big.bin'), big);
    const common = ['--root', path.join(tmp, 'site'), '--files-dir', path.join(tmp, 'files'), '--udp-port', 'off'];
    servers.limited = await startMuxd(common);
    servers.unlimited = await startMuxd([...common, '--tcp-notsent-lowat', '0']);
  });

  after(async () => {
    await servers.limited?.stop();
    await servers.unlimited?.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  const http = Buffer.from('GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n');
  const mx = Buffer.concat(encodeFrame(Type.GET, 1, encodeGet(0, 'big.bin')));

  for (const [face, request, portOf] of [
    ['HTTP GET', http, (p: MuxdProcess) => p.httpPort],
    ['MX/1 GET', mx, (p: MuxdProcess) => p.binaryPort],
  ] as const) {
    test(`${face}: a stalled reader leaves under 1 MiB queued in the kernel by default, several MiB with 0`, async () => {
      const limited = await stalledReader(portOf(servers.limited!), request);
      const unlimited = await stalledReader(portOf(servers.unlimited!), request);
      assert.ok(limited > 0 && limited < 1024 * 1024, `default 128 KiB: the kernel queued ${limited} bytes`);
      assert.ok(unlimited > 2 * limited, `--tcp-notsent-lowat 0: ${unlimited} bytes, default: ${limited}`);
    });
  }
});

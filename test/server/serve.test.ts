// serve() in this process, built from the listener table: which rows the options turn on, ready
// lines in table order (and as data), all or none when one listener cannot start.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { activeListeners } from '../../src/server/listeners.js';
import { parseServeOptions, type ServeOptions } from '../../src/server/options.js';
import { serve, StartupError } from '../../src/server/serve.js';
import { REPO_ROOT } from '../helpers/muxd-process.js';

let tmp = '';
before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'muxd-server-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function options(argv: string[]): ServeOptions {
  const o = parseServeOptions(['--root', path.join(REPO_ROOT, 'public'), '--files-dir', path.join(tmp, 'files'), ...argv], {});
  assert.notEqual(o, 'help');
  return o as ServeOptions;
}

async function freeTcpPort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

function canBindTcp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

test('the options choose the rows: TCP or a Unix socket per face, UDP unless off', () => {
  const rows = (argv: string[]): string[] => activeListeners(options(argv)).map((l) => `${l.row.face}/${l.row.transport} ${l.at.flag} ${JSON.stringify(l.at.endpoint)}`);
  assert.deepEqual(rows([]), [
    'http/tcp --http-port {"host":"127.0.0.1","port":8080}',
    'binary/tcp --binary-port {"host":"127.0.0.1","port":9000}',
    'binary/udp --udp-port {"host":"127.0.0.1","port":9000}',
  ]);
  assert.deepEqual(rows(['--http-socket', '/run/h.sock', '--binary-socket', '/run/b.sock', '--udp-port', 'off', '--host', '::1']), [
    'http/unix --http-socket {"path":"/run/h.sock"}',
    'binary/unix --binary-socket {"path":"/run/b.sock"}',
  ]);
  assert.deepEqual(rows(['--binary-port', '7000', '--udp-port', '7001', '--host', '0.0.0.0']).slice(1), [
    'binary/tcp --binary-port {"host":"0.0.0.0","port":7000}',
    'binary/udp --udp-port {"host":"0.0.0.0","port":7001}',
  ]);
});

test('every listener starts; ready lines print in table order once all are up, and come back as data', async () => {
  const lines: string[] = [];
  const running = await serve(options(['--http-port', '0', '--binary-port', '0']), (l) => lines.push(l));
  try {
    assert.deepEqual(
      running.started.map((s) => `${s.row.face}/${s.row.transport}`),
      ['http/tcp', 'binary/tcp', 'binary/udp'],
    );
    const [http, binary, udp] = running.started;
    assert.deepEqual(running.ready, [
      { name: 'http', display: `http://127.0.0.1:${http!.port}` },
      { name: 'binary', display: `127.0.0.1:${binary!.port}` },
      // Port 0 for both: UDP takes the number the kernel gave MX/1.
      { name: 'udp', display: `127.0.0.1:${binary!.port}` },
    ]);
    assert.equal(udp!.port, binary!.port);
    assert.deepEqual(lines, running.ready.map((r) => `muxd ${r.name} listening on ${r.display}`));
    assert.equal(running.listeners.length, 2, 'the stream listeners: what a drain waits for');
  } finally {
    const report = await running.shutdown(1000);
    assert.deepEqual(report, { draining: 0, cut: 0, leftAtTimeout: 0 });
  }
  assert.deepEqual(lines.slice(-2), ['muxd stopping: 0 connections draining', 'muxd stopped']);
});

test('printReady false: no ready line in the log, the same listeners in Running.ready', async () => {
  const lines: string[] = [];
  const running = await serve(options(['--http-port', '0', '--binary-port', '0', '--udp-port', 'off']), (l) => lines.push(l), { printReady: false });
  try {
    assert.deepEqual(lines, []);
    assert.deepEqual(
      running.ready.map((r) => r.name),
      ['http', 'binary'],
    );
  } finally {
    await running.close();
  }
});

test('Unix sockets for both faces: the ready lines show the paths', async () => {
  const httpSocket = path.join(tmp, 'h.sock');
  const binarySocket = path.join(tmp, 'b.sock');
  const lines: string[] = [];
  const running = await serve(options(['--http-socket', httpSocket, '--binary-socket', binarySocket, '--udp-port', 'off']), (l) => lines.push(l));
  try {
    assert.deepEqual(lines, [`muxd http listening on ${httpSocket}`, `muxd binary listening on ${binarySocket}`]);
  } finally {
    await running.shutdown(1000);
  }
});

test('all or none: a UDP port in use stops the start, names its flag, and leaves the TCP ports free', async () => {
  const blocker = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => blocker.bind(0, '127.0.0.1', resolve));
  const udpPort = blocker.address().port;
  const [httpPort, binaryPort] = [await freeTcpPort(), await freeTcpPort()];
  const lines: string[] = [];
  try {
    await assert.rejects(serve(options(['--http-port', String(httpPort), '--binary-port', String(binaryPort), '--udp-port', String(udpPort)]), (l) => lines.push(l)), (err: unknown) => {
      assert.ok(err instanceof StartupError);
      assert.deepEqual(err.problems, [`--udp-port ${udpPort}: 127.0.0.1:${udpPort} is already in use (another server running? choose another port with --udp-port)`]);
      return true;
    });
    assert.deepEqual(lines, [], 'a half-started server never looks ready');
    assert.ok(await canBindTcp(httpPort), 'the HTTP listener was closed');
    assert.ok(await canBindTcp(binaryPort), 'the MX/1 listener was closed');
  } finally {
    blocker.close();
  }
});

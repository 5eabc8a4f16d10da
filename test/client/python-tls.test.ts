// The Python client of docs/protocol.md over TLS (--tls --ca FILE, the standard ssl module):
// its whole self-check through the node:tls bridge to a real `muxd serve`, and a clear refusal
// without the CA. Skipped where python3 is missing, as test/e2e/python-client.test.ts is.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { REPO_ROOT, startMuxd, type MuxdProcess } from '../helpers/muxd-process.js';
import { testCerts } from '../helpers/tls-certs.js';
import { within } from '../helpers/wait.js';
import { startTlsBridge, type TlsBridge } from './bridges.js';

const CLIENT = 'docs/examples/mx1_client.py';
const probe = spawnSync('python3', ['--version'], { stdio: 'ignore' });
const skip = !probe.error && probe.status === 0 ? false : 'python3 is not on PATH';

let server: MuxdProcess | undefined;
let bridge: TlsBridge | undefined;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'muxd-pytls-'));

before(async () => {
  if (skip) return;
  server = await startMuxd(['--files-dir', path.join(tmp, 'files'), '--udp-port', 'off']);
  bridge = await startTlsBridge(server.binaryPort, testCerts());
});
after(async () => {
  await bridge?.stop();
  await server?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

function python(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawn('python3', [CLIENT, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return within(new Promise((resolve) => proc.once('close', (code) => resolve({ code, stdout, stderr }))), 50_000, `python3 ${args.join(' ')}`);
}

test('the Python client: --tls without the CA is refused with a clear message', { skip }, async () => {
  const r = await python(['--host', '127.0.0.1', '--port', String(bridge!.port), '--tls', '--selfcheck']);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /certificate not verified/);
  assert.match(r.stdout, /give its CA with --ca FILE/);
});

test('the Python client passes its self-check over TLS with --tls --ca FILE (ALPN mx1)', { skip, timeout: 60_000 }, async () => {
  const before = bridge!.handshakes.length;
  const r = await python(['--host', '127.0.0.1', '--port', String(bridge!.port), '--tls', '--ca', testCerts().caFile, '--selfcheck']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /all checks passed/);
  assert.ok(bridge!.handshakes.slice(before).every((h) => h.alpn === 'mx1'), JSON.stringify(bridge!.handshakes));
});

test('the Python client: --ca without --tls, or --tls with --udp, is a usage error', { skip }, async () => {
  for (const extra of [['--ca', 'x.pem'], ['--tls', '--udp']]) {
    const r = await python(['--host', '127.0.0.1', '--port', '1', ...extra]);
    assert.equal(r.code, 2, extra.join(' '));
  }
});

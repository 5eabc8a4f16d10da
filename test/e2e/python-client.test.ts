// Runs the standard-library Python MX/1 client (docs/examples/mx1_client.py, written from
// docs/protocol.md alone) against the real `muxd serve` process. If it passes, the protocol
// document was enough to build a working client.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT, startMuxd, type MuxdProcess } from '../helpers/muxd-process.js';

const CLIENT = 'docs/examples/mx1_client.py';

function hasPython3(): boolean {
  const probe = spawnSync('python3', ['--version'], { stdio: 'ignore' });
  return !probe.error && probe.status === 0;
}

function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    proc.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

const python = hasPython3();
const skip = python ? false : 'python3 is not on PATH: cannot run the Python MX/1 client';

let server: MuxdProcess | undefined;
let filesDir: string | undefined;

before(async () => {
  if (!python) return;
  filesDir = await mkdtemp(path.join(os.tmpdir(), 'muxd-pyclient-'));
  server = await startMuxd(['--files-dir', filesDir]);
});

after(async () => {
  await server?.stop();
  if (filesDir) await rm(filesDir, { recursive: true, force: true });
});

test('the Python client from docs/protocol.md passes its self-check against muxd', { skip, timeout: 60_000 }, async () => {
  assert.ok(server, 'server did not start');
  const args = [CLIENT, '--host', '127.0.0.1', '--port', String(server.binaryPort), '--selfcheck'];
  const result = await run('python3', args, REPO_ROOT, 50_000);
  assert.equal(
    result.code,
    0,
    `python3 ${args.join(' ')} exited with ${result.code}${result.signal ? ` (signal ${result.signal})` : ''}\n` +
      `--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}\n--- muxd output ---\n${server.output()}`,
  );
  assert.match(result.stdout, /all checks passed/);
});

test('the Python client passes its UDP self-check (docs/protocol.md §11) against muxd', { skip, timeout: 60_000 }, async () => {
  assert.ok(server, 'server did not start');
  const deadline = Date.now() + 5000;
  while (!/muxd udp listening/.test(server.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const m = /muxd udp listening on [^\s]+:(\d+)/.exec(server.output());
  assert.ok(m, `no UDP ready line:\n${server.output()}`);
  const args = [CLIENT, '--host', '127.0.0.1', '--port', m[1]!, '--tcp-port', String(server.binaryPort), '--udp', '--selfcheck'];
  const result = await run('python3', args, REPO_ROOT, 50_000);
  assert.equal(
    result.code,
    0,
    `python3 ${args.join(' ')} exited with ${result.code}${result.signal ? ` (signal ${result.signal})` : ''}\n` +
      `--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}\n--- muxd output ---\n${server.output()}`,
  );
  assert.match(result.stdout, /all checks passed/);
});

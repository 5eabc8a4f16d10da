// The client commands as a user runs them: `node dist/src/cli/main.js <command>` child processes
// against the real MX/1 server started in this process.
import assert from 'node:assert/strict';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runMuxd, spawnMuxd } from '../helpers/muxd-process.js';
import { ADMIN_TOKEN, startRealServer, type RealServer } from './real-server.js';

let real: RealServer;
const work = mkdtempSync(path.join(os.tmpdir(), 'muxd-cli-'));
before(async () => {
  real = await startRealServer();
});
after(async () => {
  await real.stop();
  rmSync(work, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function start(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): ChildProcessWithoutNullStreams {
  return spawnMuxd(args, { cwd: work, env: opts.env, clean: true });
}

function muxd(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; port?: boolean } = {}): Promise<Run> {
  const withPort = opts.port === false ? args : [...args, '--port', String(real.port)];
  return runMuxd(withPort, { cwd: work, env: opts.env, input: opts.input, clean: true });
}

/** Waits until `read()` contains `text` (the child process's output so far). */
async function waitFor(read: () => string, text: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (read().includes(text)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting for ${JSON.stringify(text)} in:\n${read()}`);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('exit codes', () => {
  test('ping succeeds with 0 and prints a summary', async () => {
    const r = await muxd(['ping', '--count', '2', '--interval', '0', '--size', '1024']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /1024 bytes from 127\.0\.0\.1:\d+: seq=1 time=[\d.]+ ms/);
    assert.match(r.stdout, /2 pings transmitted, 2 received, 0% loss/);
    assert.match(r.stdout, /rtt min\/avg\/max\/mdev = /);
  });

  test('a bad flag exits 2 with a message and the usage', async () => {
    const r = await muxd(['ping', '--bogus']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /muxd ping: .*--bogus/);
    assert.match(r.stderr, /Usage: muxd ping/);
    const bad = await muxd(['ls', '--port', 'x'], { port: false });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--port must be a whole number/);
  });

  test('a protocol error prints the server message and exits 1', async () => {
    const r = await muxd(['get', 'no-such-file']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^muxd: error 20 not found: /);
    assert.ok(!existsSync(path.join(work, 'no-such-file.part')), 'no empty .part left behind');
  });

  test('connection refused exits 1 with a clear message', async () => {
    const r = await muxd(['stats', '--port', '1'], { port: false });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot connect to 127\.0\.0\.1:1: connection refused/);
  });

  test('stats prints JSON', async () => {
    const r = await muxd(['stats', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(typeof JSON.parse(r.stdout), 'object');
  });

  test('stats without --json is a readable summary of the same snapshot', async () => {
    const r = await muxd(['stats']);
    assert.equal(r.code, 0, r.stderr);
    for (const row of ['uptime', 'connections', 'HTTP requests', 'MX/1 frames', 'chat members', 'event loop', 'memory (RSS)', 'limits']) {
      assert.match(r.stdout, new RegExp(`^${row.replace(/[()/]/g, '\\$&')} +\\S`, 'm'), row);
    }
    assert.match(r.stdout, /binary [1-9]/, 'counts its own connection');
    assert.match(r.stdout, /frame 1(\.0)? MiB/);
  });

  test('announce needs a token; a wrong one is forbidden', async () => {
    assert.equal((await muxd(['announce', 'hi'])).code, 2);
    const wrong = await muxd(['announce', 'hi', '--token', 'nope']);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /error 14 forbidden/);
    const ok = await muxd(['announce', 'hello', 'all'], { env: { MUXD_ADMIN_TOKEN: ADMIN_TOKEN } });
    assert.equal(ok.code, 0, ok.stderr);
  });
});

describe('put, get, ls', () => {
  const content = randomBytes(1024 * 1024 + 333);
  const src = path.join(work, 'source.bin');

  test('put prints name, size and sha256; ls lists it', async () => {
    writeFileSync(src, content);
    const r = await muxd(['put', 'source.bin', '--as', 'data.bin']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`data\\.bin: ${content.length} bytes, sha256 ${sha(content)}`));
    assert.match(r.stderr, /^sent 1\.0 MiB in /m); // not a TTY: one summary line

    const ls = await muxd(['ls']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /SIZE {2}NAME/);
    assert.match(ls.stdout, /1\.0 MiB {2}data\.bin/);
    const json = JSON.parse((await muxd(['ls', '--json'])).stdout) as { name: string; size: number }[];
    assert.deepEqual(json.find((e) => e.name === 'data.bin'), { name: 'data.bin', size: content.length });
  });

  test('get saves into the current directory and refuses to overwrite without --force', async () => {
    const r = await muxd(['get', 'data.bin']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(readFileSync(path.join(work, 'data.bin')).equals(content));
    assert.ok(!existsSync(path.join(work, 'data.bin.part')));
    const again = await muxd(['get', 'data.bin']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already exists; use --force/);
    assert.equal((await muxd(['get', 'data.bin', '--force'])).code, 0);
  });

  test('--resume continues a truncated .part file', async () => {
    const out = path.join(work, 'resumed.bin');
    writeFileSync(out + '.part', content.subarray(0, 400_000));
    const r = await muxd(['get', 'data.bin', '-o', 'resumed.bin', '--resume']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /resuming resumed\.bin\.part from byte 400000/);
    assert.ok(readFileSync(out).equals(content));
    assert.ok(!existsSync(out + '.part'));
  });

  test('a digest mismatch is reported, exits 1 and leaves the target absent', async () => {
    const out = path.join(work, 'bad.bin');
    writeFileSync(out + '.part', Buffer.alloc(1000, 0x58)); // a wrong prefix
    const r = await muxd(['get', 'data.bin', '-o', 'bad.bin', '--resume']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /checksum mismatch for "data\.bin"/);
    assert.ok(!existsSync(out));
    assert.ok(existsSync(out + '.part'), 'the .part is kept for inspection');
  });

  test('put of a missing file exits 1', async () => {
    const r = await muxd(['put', 'nope.bin']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot read nope\.bin: no such file/);
  });
});

describe('chat', () => {
  test('two piped chat processes talk; a taken name exits 1', async () => {
    const bob = start(['chat', '--name', 'bob', '--port', String(real.port)]);
    let bobOut = '';
    bob.stdout.on('data', (c: Buffer) => (bobOut += c.toString()));
    bob.stderr.on('data', (c: Buffer) => (bobOut += c.toString()));
    const bobExit = new Promise<number | null>((resolve) => bob.on('close', resolve));
    try {
      await waitFor(() => bobOut, 'joined as bob');

      const taken = await muxd(['chat', '--name', 'BOB']);
      assert.equal(taken.code, 1);
      assert.match(taken.stderr, /error 11 name taken/);

      const alice = await muxd(['chat', '--name', 'alice'], { input: 'hello bob\n\n/names\nsecond line\n' });
      assert.equal(alice.code, 0, alice.stderr);
      assert.match(alice.stdout, /joined as alice; present: /);
      assert.match(alice.stdout, /present: .*bob/);

      await waitFor(() => bobOut, 'alice left');
      assert.match(bobOut, /\[\d\d:\d\d:\d\d\] \* alice joined\n[^]*<alice> hello bob\n[^]*<alice> second line\n[^]*alice left/);
      bob.stdin.end();
      assert.equal(await bobExit, 0, bobOut);
    } finally {
      bob.kill();
    }
  });

  test('chat without --name exits 2', async () => {
    const r = await muxd(['chat']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--name is required/);
  });
});

describe('put --token (server with --upload-token)', () => {
  let guarded: RealServer;
  before(async () => {
    guarded = await startRealServer(null, { uploadToken: 'up-t0k' });
  });
  after(() => guarded.stop());

  test('without a token put fails with ERROR 14; --token or MUXD_UPLOAD_TOKEN succeeds', async () => {
    writeFileSync(path.join(work, 'small.txt'), 'small');
    const port = ['--port', String(guarded.port)];
    const refused = await muxd(['put', 'small.txt', ...port], { port: false });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /AUTH/);
    const flag = await muxd(['put', 'small.txt', '--token', 'up-t0k', ...port], { port: false });
    assert.equal(flag.code, 0, flag.stderr);
    const env = await muxd(['put', 'small.txt', '--as', 'env.txt', ...port], { port: false, env: { MUXD_UPLOAD_TOKEN: 'up-t0k' } });
    assert.equal(env.code, 0, env.stderr);
    const wrong = await muxd(['put', 'small.txt', '--token', 'nope', ...port], { port: false });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /bad upload token/);
  });
});

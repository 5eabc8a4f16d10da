// The operator's side of announcements: when `muxd serve` runs in a terminal, each line typed
// on it reaches every joined chat member as an ANNOUNCEMENT push. util-linux `script` gives the
// server a real pseudo-terminal as stdin, as a person's shell would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from '../../src/client/index.js';
import { MUXD_BIN, REPO_ROOT } from '../helpers/muxd-process.js';

const SCRIPT = '/usr/bin/script';
const skip = existsSync(SCRIPT) ? false : 'util-linux script(1) is not installed';

test('a line typed on the server terminal is announced to every chat member', { skip }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'muxd-tty-'));
  const command = [process.execPath, MUXD_BIN, 'serve', '--http-port', '0', '--binary-port', '0', '--files-dir', path.join(dir, 'files')]
    .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
    .join(' ');
  const proc = spawn(SCRIPT, ['-qfec', command, '/dev/null'], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ready line:\n${out}`)), 15000);
      proc.stdout.on('data', () => {
        const m = /muxd binary listening on [^\s]+:(\d+)/.exec(out);
        if (m && out.includes('type a line')) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
    });
    const member = await connect({ host: '127.0.0.1', port });
    await member.join('listener');
    const announced = new Promise<string>((resolve) => member.once('announcement', (text: string) => resolve(text)));
    proc.stdin.write('maintenance at noon\r');
    assert.equal(await announced, 'maintenance at noon');
    await new Promise((r) => setTimeout(r, 100));
    assert.match(out, /announced to 1 member/);
    await member.close();
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  }
});

// Slow readers' memory: N clients GET a large file and then read it a trickle at a time. Prints the
// server's RSS (ps -o rss, not heap stats) when idle, while they hang on, and after they leave.
// Not a test: run it by hand, e.g.
//   npx tsc -p . && node dist/bench/slow-readers.js --clients 1000 --size 10MiB
//   node dist/bench/slow-readers.js --muxd /tmp/httpbase/dist/src/cli/main.js   (another build)
import { spawn, execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const { values: flags } = parseArgs({
  options: {
    clients: { type: 'string', default: '1000' },
    size: { type: 'string', default: String(10 * 1024 * 1024) },
    hold: { type: 'string', default: '8' },
    after: { type: 'string', default: '8' },
    muxd: { type: 'string' },
    args: { type: 'string', default: '' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (flags.help) {
  process.stdout.write(
    'slow-readers [--clients N] [--size BYTES] [--hold S] [--after S] [--muxd path/to/main.js] [--args="extra serve flags"]\n' +
      'N clients each GET a SIZE-byte file and read 4 KiB a second for HOLD seconds, then leave;\n' +
      'prints the server RSS idle, at the peak, and AFTER seconds after they left.\n',
  );
  process.exit(0);
}

const clients = Number(flags.clients);
const size = Number(flags.size.replace(/MiB$/i, '')) * (/MiB$/i.test(flags.size) ? 1024 * 1024 : 1);
const here = path.dirname(fileURLToPath(import.meta.url));
const bin = flags.muxd ?? path.resolve(here, '../src/cli/main.js');

function rssMB(pid: number): number {
  return Number(execFileSync('ps', ['-o', 'rss=', '-p', String(pid)]).toString().trim()) / 1024;
}

const dir = await mkdtemp(path.join(tmpdir(), 'muxd-slow-'));
await writeFile(path.join(dir, 'big.bin'), Buffer.alloc(size, 7));
await writeFile(path.join(dir, 'index.html'), '<!doctype html><title>x</title>');
const extra = flags.args.split(' ').filter((s) => s !== '');
const proc = spawn(process.execPath, [bin, 'serve', '--root', dir, '--files-dir', path.join(dir, 'files'), '--http-port', '0', '--binary-port', '0', '--send-timeout', '120s', ...extra], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const port = await new Promise<number>((resolve, reject) => {
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    const m = /muxd http listening on http:\/\/[^\s]+:(\d+)/.exec(out);
    if (m) resolve(Number(m[1]));
  });
  proc.once('exit', (code) => reject(new Error(`muxd exited ${code}: ${out}`)));
});
const pid = proc.pid!;

try {
  await sleep(1000);
  const idle = rssMB(pid);
  const sockets: net.Socket[] = [];
  let got = 0;
  for (let i = 0; i < clients; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    s.setNoDelay(true);
    s.write('GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n');
    // Read the first bytes (the head), then stop: the kernel buffers fill and the server holds the rest.
    s.once('data', (c: Buffer) => {
      got += c.length;
      s.pause();
    });
    sockets.push(s);
    if (i % 100 === 99) await sleep(50);
  }
  const holdS = Number(flags.hold);
  let peak = 0;
  for (let t = 0; t < holdS; t++) {
    await sleep(1000);
    // A trickle: each client takes one small read a second, so it is slow, not stalled.
    for (const s of sockets) {
      const c = s.read(4096) as Buffer | null;
      if (c !== null) got += c.length;
    }
    peak = Math.max(peak, rssMB(pid));
  }
  for (const s of sockets) s.destroy();
  const afterS = Number(flags.after);
  let after = 0;
  for (let t = 0; t < afterS; t++) {
    await sleep(1000);
    after = rssMB(pid);
  }
  process.stdout.write(
    `clients=${clients} file=${(size / 1048576).toFixed(1)}MiB  idle=${idle.toFixed(0)}MB  peak=${peak.toFixed(0)}MB (+${(peak - idle).toFixed(0)})  ` +
      `after=${after.toFixed(0)}MB (+${(after - idle).toFixed(0)})  client-bytes=${(got / 1048576).toFixed(0)}MiB\n`,
  );
} finally {
  proc.kill('SIGTERM');
  await rm(dir, { recursive: true, force: true });
}

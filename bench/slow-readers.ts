// Slow readers' memory: N clients GET a large file and then read it a trickle at a time. Prints the
// server's RSS (ps -o rss, not heap stats) when idle, while they hang on, and after they leave.
// Not a test: run it by hand, e.g.
//   npx tsc -p . && node dist/bench/slow-readers.js --clients 1000 --size 10MiB --runs 3
//   node dist/bench/slow-readers.js --muxd /tmp/httpbase/dist/src/cli/main.js   (another build)
//   node dist/bench/slow-readers.js --detail    (what holds it: V8 spaces, buffers, anon/file pages)
// The machine is usually shared: compare builds by the median of --runs 3 or more, not one run.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const { values: flags } = parseArgs({
  options: {
    clients: { type: 'string', default: '1000' },
    size: { type: 'string', default: String(10 * 1024 * 1024) },
    hold: { type: 'string', default: '8' },
    after: { type: 'string', default: '8' },
    muxd: { type: 'string' },
    args: { type: 'string', default: '' },
    runs: { type: 'string', default: '1' },
    detail: { type: 'boolean', default: false },
    'detail-gc': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (flags.help) {
  process.stdout.write(
    'slow-readers [--clients N] [--size BYTES] [--hold S] [--after S] [--runs R] [--detail [--detail-gc]] [--muxd path/to/main.js] [--args="extra serve flags"]\n' +
      'N clients each GET a SIZE-byte file and read 4 KiB a second for HOLD seconds, then leave;\n' +
      'prints the server RSS idle, at the peak, and AFTER seconds after they left; with --runs R,\n' +
      'R fresh servers one after another and the median of each column. --detail loads\n' +
      'dist/bench/mem-probe.js into the server and prints, at each point, what holds the memory;\n' +
      '--detail-gc runs a full GC before each of those (diagnosis: garbage or held?).\n',
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

const probe = path.resolve(here, 'mem-probe.js');
const mib = (n: number): string => (n / 1048576).toFixed(0);

interface Snapshot {
  rss: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  rollup: Record<string, number>;
  spaces: Record<string, number>;
}

/** Asks the probe in the server for a snapshot (only with --detail). */
async function snapshot(pid: number, file: string): Promise<Snapshot> {
  const before = (await readFile(file, 'utf8').catch(() => '')).length;
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    const text = await readFile(file, 'utf8').catch(() => '');
    if (text.length > before && text.endsWith('\n')) return JSON.parse(text.slice(before)) as Snapshot;
  }
  throw new Error('no answer from mem-probe');
}

function describe(label: string, s: Snapshot): string {
  const r = s.rollup;
  const sp = s.spaces;
  return (
    `  ${label.padEnd(5)} rss=${mib(s.rss)} anon=${mib(r.Anonymous ?? 0)} file=${mib((r.Rss ?? 0) - (r.Anonymous ?? 0))}` +
    ` | v8 heapTotal=${mib(s.heapTotal)} (old=${mib(sp.old_space ?? 0)} new=${mib(sp.new_space ?? 0)} lo=${mib(sp.large_object_space ?? 0)})` +
    ` | external=${mib(s.external)} arrayBuffers=${mib(s.arrayBuffers)}` +
    ` | rest (malloc, chunk slabs, stacks)=${mib((r.Anonymous ?? 0) - s.heapTotal - s.arrayBuffers)} MiB\n`
  );
}

interface Result {
  idle: number;
  peak: number;
  after: number;
  got: number;
}

async function runOnce(): Promise<Result> {
  const dir = await mkdtemp(path.join(tmpdir(), 'muxd-slow-'));
  await writeFile(path.join(dir, 'big.bin'), Buffer.alloc(size, 7));
  await writeFile(path.join(dir, 'index.html'), '<!doctype html><title>x</title>');
  const probeOut = path.join(dir, 'probe.jsonl');
  const extra = flags.args.split(' ').filter((s) => s !== '');
  const nodeArgs = flags.detail ? ['--import', pathToFileURL(probe).href, ...(flags['detail-gc'] ? ['--expose-gc'] : [])] : [];
  const proc = spawn(process.execPath, [...nodeArgs, bin, 'serve', '--root', dir, '--files-dir', path.join(dir, 'files'), '--http-port', '0', '--binary-port', '0', '--send-timeout', '120s', ...extra], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, MUXD_MEM_PROBE: flags.detail ? probeOut : '' },
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
  const details: string[] = [];

  try {
    await sleep(1000);
    const idle = rssMB(pid);
    if (flags.detail) details.push(describe('idle', await snapshot(pid, probeOut)));
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
    if (flags.detail) details.push(describe('peak', await snapshot(pid, probeOut)));
    for (const s of sockets) s.destroy();
    const afterS = Number(flags.after);
    let after = 0;
    for (let t = 0; t < afterS; t++) {
      await sleep(1000);
      after = rssMB(pid);
    }
    if (flags.detail) details.push(describe('after', await snapshot(pid, probeOut)));
    process.stdout.write(
      `clients=${clients} file=${(size / 1048576).toFixed(1)}MiB  idle=${idle.toFixed(0)}MB  peak=${peak.toFixed(0)}MB (+${(peak - idle).toFixed(0)})  ` +
        `after=${after.toFixed(0)}MB (+${(after - idle).toFixed(0)})  client-bytes=${(got / 1048576).toFixed(0)}MiB\n` +
        details.join(''),
    );
    return { idle, peak, after, got };
  } finally {
    proc.kill('SIGTERM');
    await new Promise((resolve) => (proc.exitCode !== null ? resolve(null) : proc.once('exit', resolve)));
    await rm(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const results: Result[] = [];
for (let r = 0; r < Number(flags.runs); r++) results.push(await runOnce());
if (results.length > 1) {
  const idle = median(results.map((x) => x.idle));
  const peak = median(results.map((x) => x.peak - x.idle));
  const after = median(results.map((x) => x.after - x.idle));
  process.stdout.write(`median of ${results.length}: idle=${idle.toFixed(0)}MB  peak=+${peak.toFixed(0)}MB  after=+${after.toFixed(0)}MB\n`);
}

// `npm run bench -- --workers N`: muxd with 1 worker against N workers, same load, same files.
// This box has 2 cores and autocannon needs one, so every configuration names its CPU sets
// (taskset): the table shows what each setup gets, not what N workers would do on a big machine.
//   1 worker,  server 0,   gen 1   today's bench setup: one core each
//   N workers, server 0,   gen 1   the same CPU budget: what the primary and IPC cost
//   1 worker,  server 0-1, gen 1   the control for the next row: one loop may use either core
//   N workers, server 0-1, gen 1   workers may use both cores, but core 1 is shared with the generator
import { bottleneck, medianSample } from './lib/sample.js';
import { median } from './lib/stats.js';
import { makeFixtures } from './lib/fixtures.js';
import { rawGet } from './lib/raw-http.js';
import { runHttpLoad, type HttpLoadResult } from './lib/http-load.js';
import { startMuxd, startRedis, type RunningServer } from './lib/servers.js';
import { runMxLoad, DEFAULTS as MX_DEFAULTS, type MxLoadResult } from './mx-load.js';
import { fmtMs, fmtRate, headerLines, renderTable, writeJson } from './lib/report.js';
import { sleep } from './lib/proc.js';

interface Setup {
  label: string;
  workers: number;
  serverCpus: string;
  generatorCpus: string;
}

interface Load {
  key: string;
  label: string;
  path: string;
  connections: number;
  pipelining: number;
}

const LOADS: Load[] = [
  { key: 'keepalive', label: '1 KiB keep-alive c50', path: '/1k.txt', connections: 50, pipelining: 1 },
  { key: 'pipeline', label: '1 KiB pipelined x10 c50', path: '/1k.txt', connections: 50, pipelining: 10 },
];

export interface WorkersBenchOptions {
  workers: number;
  duration: number;
  runs: number;
  markdown: boolean;
}

export async function runWorkersBench(o: WorkersBenchOptions): Promise<number> {
  const n = o.workers;
  const setups: Setup[] = [
    { label: '1 worker, server cpu 0', workers: 1, serverCpus: '0', generatorCpus: '1' },
    { label: `${n} workers, server cpu 0`, workers: n, serverCpus: '0', generatorCpus: '1' },
    { label: '1 worker, server cpus 0-1', workers: 1, serverCpus: '0-1', generatorCpus: '1' },
    { label: `${n} workers, server cpus 0-1`, workers: n, serverCpus: '0-1', generatorCpus: '1' },
  ];
  const fx = makeFixtures();
  const results = new Map<string, HttpLoadResult[]>();
  try {
    for (let run = 1; run <= o.runs; run++) {
      for (const setup of setups) {
        let server: RunningServer | null = null;
        try {
          server = await startMuxd({ core: setup.serverCpus, tmpDir: fx.tmp }, { root: fx.dir, face: 'http', extraArgs: ['--workers', String(setup.workers)] });
          // Every worker listening before the load (the ready line comes with the first).
          await sleep(setup.workers > 1 ? 1500 : 200);
          const check = await rawGet(server.port, '/1k.txt');
          if (check.status !== 200) throw new Error(`GET /1k.txt answered ${check.status}`);
          for (const load of LOADS) {
            process.stderr.write(`run ${run} ${setup.label} ${load.label} ...`);
            const r = await runHttpLoad(
              { url: `http://127.0.0.1:${server.port}${load.path}`, connections: load.connections, pipelining: load.pipelining, durationSeconds: o.duration },
              { tool: 'autocannon', core: setup.generatorCpus, serverPid: server.pid, tmpDir: fx.tmp },
            );
            process.stderr.write(` ${fmtRate(r.requestsPerSecond)} req/s ${bottleneck(r)}${r.errors ? ` errors=${r.errors}` : ''}\n`);
            const key = `${setup.label}|${load.key}`;
            results.set(key, [...(results.get(key) ?? []), r]);
            await sleep(300);
          }
        } catch (e) {
          process.stderr.write(`bench: ${setup.label}: ${(e as Error).message}\n`);
        } finally {
          await server?.stop();
        }
      }
    }
  } finally {
    fx.cleanup();
  }
  const rows: string[][] = [['setup', ...LOADS.flatMap((l) => [`${l.label} req/s`, 'p99 ms', 'CPU server / gen'])]];
  for (const setup of setups) {
    const row = [`${setup.label}; gen cpu ${setup.generatorCpus}`];
    for (const load of LOADS) {
      const rs = results.get(`${setup.label}|${load.key}`) ?? [];
      if (rs.length === 0) {
        row.push('failed', '', '');
        continue;
      }
      const cpu = medianSample(rs);
      row.push(fmtRate(median(rs.map((r) => r.requestsPerSecond))), fmtMs(median(rs.map((r) => r.p99Micros))), `${Math.round(cpu.serverCpu * 100)}% / ${Math.round(cpu.generatorCpu * 100)}%`);
    }
    rows.push(row);
  }
  const fanout = await fanoutRows(o);
  const out = [
    ...headerLines(o.markdown),
    '',
    `Medians of ${o.runs} run(s) of ${o.duration} s; server CPU is the primary and all workers, in cores (100% = one core).`,
    '',
    renderTable(rows, o.markdown),
    '',
    'SAY fan-out: 100 members, one sender with 16 SAYs in flight, 64-byte texts; members on every',
    'worker / server in turn; servers (and Redis) on cpu 0, generator on cpu 1. Delivery latency:',
    'from the sender writing a SAY to a member reading its MESSAGE.',
    '',
    renderTable(fanout, o.markdown),
  ].join('\n');
  process.stdout.write(out + '\n');
  const file = writeJson('workers', { machine: headerLines(false), workers: n, duration: o.duration, runs: o.runs, results: Object.fromEntries(results) });
  process.stderr.write(`bench: results written to ${file}\n`);
  return 0;
}

/** The chat fan-out in one process, across N workers (through the primary) and across two servers (through Redis). */
async function fanoutRows(o: WorkersBenchOptions): Promise<string[][]> {
  const rows: string[][] = [['room', 'delivered msg/s', 'delivery p50 ms', 'delivery p99 ms', 'SAY p99 ms', 'errors']];
  const fx = makeFixtures();
  const ctx = { core: 0, tmpDir: fx.tmp };
  const load = { ...MX_DEFAULTS, mode: 'fanout' as const, members: 100, depth: 16, payload: 64, durationSeconds: o.duration, procs: 1 };
  const row = (label: string, rs: MxLoadResult[]): void => {
    if (rs.length === 0) return void rows.push([label, 'failed', '', '', '', '']);
    const med = (f: (r: MxLoadResult) => number): number => median(rs.map(f));
    rows.push([label, fmtRate(med((r) => r.deliveredPerSecond)), fmtMs(med((r) => r.deliveryP50Micros)), fmtMs(med((r) => r.deliveryP99Micros)), fmtMs(med((r) => r.p99Micros)), String(rs.reduce((n, r) => n + r.errors, 0))]);
  };
  const measure = async (label: string, start: () => Promise<{ ports: number[]; pid: number; stop: () => Promise<void> } | null>): Promise<void> => {
    const rs: MxLoadResult[] = [];
    for (let run = 1; run <= o.runs; run++) {
      let setup: Awaited<ReturnType<typeof start>> = null;
      try {
        setup = await start();
        if (setup === null) break;
        await sleep(1500);
        process.stderr.write(`run ${run} fan-out ${label} ...`);
        const r = await runMxLoad({ ...load, port: setup.ports[0]!, ports: setup.ports }, 1, setup.pid);
        process.stderr.write(` ${fmtRate(r.deliveredPerSecond)} msg/s, delivery p99 ${fmtMs(r.deliveryP99Micros)}${r.errors ? ` errors=${r.errors} (${r.firstError})` : ''}\n`);
        rs.push(r);
      } catch (e) {
        process.stderr.write(`bench: fan-out ${label}: ${(e as Error).message}\n`);
      } finally {
        await setup?.stop();
      }
    }
    row(label, rs);
  };
  const muxd = (extra: string[]) => startMuxd(ctx, { root: fx.dir, face: 'binary', extraArgs: extra });
  try {
    await measure('one process', async () => {
      const m = await muxd([]);
      return { ports: [m.port], pid: m.pid, stop: () => m.stop() };
    });
    await measure(`${o.workers} workers (through the primary)`, async () => {
      const m = await muxd(['--workers', String(o.workers)]);
      return { ports: [m.port], pid: m.pid, stop: () => m.stop() };
    });
    await measure('two servers (through Redis)', async () => {
      const redis = await startRedis(ctx);
      if (redis === null) return null;
      const url = `redis://127.0.0.1:${redis.port}`;
      const a = await muxd(['--chat-redis', url]);
      const b = await muxd(['--chat-redis', url]);
      return {
        ports: [a.port, b.port],
        pid: a.pid,
        stop: async () => {
          await Promise.all([a.stop(), b.stop()]);
          await redis.stop();
        },
      };
    });
  } finally {
    fx.cleanup();
  }
  return rows;
}

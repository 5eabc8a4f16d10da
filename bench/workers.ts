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
import { startMuxd, type RunningServer } from './lib/servers.js';
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
  const rows: string[][] = [['setup', ...LOADS.flatMap((l) => [`${l.label} req/s`, 'p99', 'CPU server / gen'])]];
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
  const out = [...headerLines(o.markdown), '', `Medians of ${o.runs} run(s) of ${o.duration} s; server CPU is the primary and all workers, in cores (100% = one core).`, '', renderTable(rows, o.markdown)].join('\n');
  process.stdout.write(out + '\n');
  const file = writeJson('workers', { machine: headerLines(false), workers: n, duration: o.duration, runs: o.runs, results: Object.fromEntries(results) });
  process.stderr.write(`bench: results written to ${file}\n`);
  return 0;
}

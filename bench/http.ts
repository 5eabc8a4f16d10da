// `npm run bench`: muxd against its peers on the same files, one server at a time, server pinned
// to core 0 and load generator to core 1. Medians of N runs; ratios are computed inside each run
// (same machine state) and their median reported. Never run by the test suite.
import { parseArgs } from 'node:util';
import { hasTool, sleep } from './lib/proc.js';
import { bottleneck, medianSample } from './lib/sample.js';
import { median } from './lib/stats.js';
import { makeFixtures } from './lib/fixtures.js';
import { rawGet } from './lib/raw-http.js';
import { runHttpLoad, type HttpLoadResult, type HttpTool } from './lib/http-load.js';
import { startMuxd, startNginx, startPeer, type RunningServer, type ServerContext } from './lib/servers.js';
import { fmtMB, fmtMs, fmtRate, fmtRatio, headerLines, renderTable, writeJson } from './lib/report.js';
import { DEFAULT_RESPONSE_BYTES } from './peers/fixed-response.js';
import { TLS_LOADS, TLS_SERVERS, runTlsBench, tlsTools } from './lib/https-bench.js';
import { CERT_KEY_TYPES, type CertKeyType } from './lib/certs.js';

const SERVER_CORE = 0;
const GENERATOR_CORE = 1;

const { values: flags } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    runs: { type: 'string', default: '3' },
    only: { type: 'string' },
    tool: { type: 'string' },
    loads: { type: 'string' },
    quick: { type: 'boolean', default: false },
    markdown: { type: 'boolean', default: false },
    // --workers N: muxd with 1 worker against N (bench/workers.ts) instead of the peer comparison.
    workers: { type: 'string' },
    // --tls: the HTTPS rows (bench/lib/https-bench.ts) instead: muxd, node-https, nginx with ssl.
    tls: { type: 'boolean', default: false },
    'cert-key': { type: 'string', default: 'ec' },
    'connect-concurrency': { type: 'string', default: '8' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

const SERVERS = ['muxd', 'muxd-llhttp', 'raw-net', 'node-http', 'serve-static', 'nginx'] as const;
type ServerName = (typeof SERVERS)[number];
/** Peers that answer every request with one fixed 1 KiB response: files and 304 do not apply. */
const FIXED: ReadonlySet<ServerName> = new Set(['raw-net', 'node-http']);

interface LoadSpec {
  key: string;
  label: string;
  path: string;
  connections: number;
  pipelining: number;
  /** Report MB/s instead of req/s. */
  throughput: boolean;
  revalidate: boolean;
  fileLoad: boolean;
}

const LOADS: LoadSpec[] = [
  { key: 'keepalive', label: '1 KiB keep-alive c50', path: '/1k.txt', connections: 50, pipelining: 1, throughput: false, revalidate: false, fileLoad: false },
  { key: 'pipeline', label: '1 KiB pipelined x10 c50', path: '/1k.txt', connections: 50, pipelining: 10, throughput: false, revalidate: false, fileLoad: false },
  { key: '304', label: '304 If-None-Match c50', path: '/1k.txt', connections: 50, pipelining: 1, throughput: false, revalidate: true, fileLoad: true },
  { key: '64k', label: '64 KiB file c50', path: '/64k.bin', connections: 50, pipelining: 1, throughput: true, revalidate: false, fileLoad: true },
  { key: '10m', label: '10 MiB file c1 (MB/s)', path: '/10m.bin', connections: 1, pipelining: 1, throughput: true, revalidate: false, fileLoad: true },
];

interface Target {
  load: string;
  against: ServerName;
  min: number;
  text: string;
}
const TARGETS: Target[] = [
  { load: 'keepalive', against: 'raw-net', min: 0.8, text: '>= 0.8x raw' },
  { load: 'pipeline', against: 'raw-net', min: 0.6, text: '>= 0.6x raw' },
  { load: '304', against: 'nginx', min: 1.0, text: '>= 1.0x nginx' },
  { load: '10m', against: 'nginx', min: 0.6, text: '>= 0.6x nginx' },
];
const RSS_TARGET_BYTES = 80 * 1024 * 1024;

type Cell = HttpLoadResult | { error: string } | 'n/a';
interface Record_ {
  run: number;
  server: ServerName;
  tool: HttpTool;
  load: string;
  cell: Cell;
}

function usage(): string {
  return (
    `Usage: node dist/bench/http.js [--duration S] [--runs N] [--only ${SERVERS.join(',')}] [--tool autocannon,wrk] [--loads ${LOADS.map((l) => l.key).join(',')}] [--quick] [--markdown] [--workers N]\n` +
    `       node dist/bench/http.js --tls [--only ${TLS_SERVERS.join(',')}] [--loads ${TLS_LOADS.map((l) => l.key).join(',')}] [--tool autocannon,wrk] [--cert-key ${CERT_KEY_TYPES.join('|')}] [--connect-concurrency N] [--duration S] [--runs N] [--quick] [--markdown]`
  );
}

function listFlag<T extends string>(raw: string | undefined, all: readonly T[], what: string): T[] {
  if (raw === undefined) return [...all];
  const picked = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const p of picked) if (!all.includes(p as T)) throw new Error(`unknown ${what} "${p}" (one of ${all.join(', ')})`);
  return picked as T[];
}

async function startServer(name: ServerName, ctx: ServerContext, root: string, responseBytes: number): Promise<RunningServer | null> {
  switch (name) {
    case 'muxd':
      return startMuxd(ctx, { root, face: 'http' });
    case 'muxd-llhttp':
      return startMuxd(ctx, { root, face: 'http', parser: 'llhttp' });
    case 'raw-net':
    case 'node-http':
      return startPeer(ctx, name, ['--bytes', String(responseBytes)]);
    case 'serve-static':
      return startPeer(ctx, name, ['--root', root]);
    case 'nginx':
      return startNginx(ctx, root);
  }
}

/** Size of muxd's own 1 KiB response, so the fixed-response peers send exactly as many bytes. */
async function measureResponseBytes(ctx: ServerContext, root: string): Promise<number> {
  let server: RunningServer | null = null;
  try {
    server = await startMuxd(ctx, { root, face: 'http' });
    return (await rawGet(server.port, '/1k.txt')).totalBytes;
  } catch (e) {
    process.stderr.write(`bench: could not measure muxd's 1 KiB response (${(e as Error).message}); peers send ${DEFAULT_RESPONSE_BYTES} bytes\n`);
    return DEFAULT_RESPONSE_BYTES;
  } finally {
    await server?.stop();
  }
}

function value(spec: LoadSpec, r: HttpLoadResult): number {
  return spec.throughput && spec.connections === 1 ? r.bytesPerSecond / 1e6 : r.requestsPerSecond;
}

async function main(): Promise<number> {
  if (flags.help) {
    process.stdout.write(usage() + '\n');
    return 0;
  }
  const duration = flags.quick ? 2 : Number(flags.duration);
  const runs = flags.quick ? 1 : Number(flags.runs);
  if (!(duration > 0) || !(runs >= 1)) throw new Error('--duration and --runs must be positive numbers');
  if (flags.workers !== undefined) {
    const workers = Number(flags.workers);
    if (!Number.isInteger(workers) || workers < 2) throw new Error('--workers must be a whole number of at least 2');
    const { runWorkersBench } = await import('./workers.js');
    return runWorkersBench({ workers, duration, runs, markdown: flags.markdown === true });
  }
  if (flags.tls) {
    const keyType = flags['cert-key'] as CertKeyType;
    if (!CERT_KEY_TYPES.includes(keyType)) throw new Error(`--cert-key must be one of ${CERT_KEY_TYPES.join(', ')}`);
    const connectConcurrency = Number(flags['connect-concurrency']);
    if (!Number.isInteger(connectConcurrency) || connectConcurrency < 1) throw new Error('--connect-concurrency must be a whole number of at least 1');
    return runTlsBench({
      duration,
      runs,
      servers: listFlag(flags.only, TLS_SERVERS, 'server'),
      loads: listFlag(flags.loads, TLS_LOADS.map((l) => l.key), 'load'),
      tools: tlsTools(listFlag<HttpTool>(flags.tool, ['autocannon', 'wrk'], 'tool')),
      keyType,
      connectConcurrency,
      markdown: flags.markdown === true,
    });
  }
  const servers = listFlag(flags.only, SERVERS, 'server');
  const loads = listFlag(flags.loads, LOADS.map((l) => l.key), 'load').map((k) => LOADS.find((l) => l.key === k)!);
  let tools = listFlag<HttpTool>(flags.tool, ['autocannon', 'wrk'], 'tool');
  if (tools.includes('wrk') && !hasTool('wrk')) {
    process.stderr.write('bench: wrk not installed, skipping it (autocannon only)\n');
    tools = tools.filter((t) => t !== 'wrk');
  }

  const fx = makeFixtures();
  const ctx: ServerContext = { core: SERVER_CORE, tmpDir: fx.tmp };
  const records: Record_[] = [];
  const startRss = new Map<string, number[]>();
  /** Bytes of each server's GET /1k.txt response: the fixed-response peers should match muxd. */
  const responseSizes = new Map<string, number>();
  const stopAll: RunningServer[] = [];
  const onSignal = (): void => {
    void Promise.all(stopAll.map((s) => s.stop())).finally(() => {
      fx.cleanup();
      process.exit(130);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const responseBytes = servers.some((s) => FIXED.has(s)) ? await measureResponseBytes(ctx, fx.dir) : DEFAULT_RESPONSE_BYTES;
    const total = runs * servers.length * tools.length * loads.length;
    let done = 0;
    for (let run = 1; run <= runs; run++) {
      for (const name of servers) {
        // A fresh server process per tool: each table starts from a cold process, so memory
        // retained after one tool's large-file loads never shows up in the next tool's RSS cells.
        for (const tool of tools) {
          let server: RunningServer | null;
          try {
            server = await startServer(name, ctx, fx.dir, responseBytes);
          } catch (e) {
            process.stderr.write(`bench: ${(e as Error).message}\n`);
            server = null;
          }
          if (server === null) {
            done += loads.length;
            continue;
          }
          stopAll.push(server);
          try {
            const check = await rawGet(server.port, '/1k.txt');
            if (check.status !== 200) process.stderr.write(`bench: ${name} answered GET /1k.txt with ${check.status}\n`);
            responseSizes.set(name, check.totalBytes);
            const etag = FIXED.has(name) ? undefined : check.headers.get('etag');
            for (const spec of loads) {
              done++;
              let cell: Cell;
              if (FIXED.has(name) && spec.fileLoad) cell = 'n/a';
              else if (spec.revalidate && etag === undefined) cell = { error: 'no ETag on GET /1k.txt' };
              else {
                process.stderr.write(`[${done}/${total}] run ${run} ${name} ${tool} ${spec.label} ...`);
                try {
                  const r = await runHttpLoad(
                    {
                      url: `http://127.0.0.1:${server.port}${spec.path}`,
                      connections: spec.connections,
                      pipelining: spec.pipelining,
                      durationSeconds: duration,
                      headers: spec.revalidate && etag !== undefined ? { 'If-None-Match': etag } : {},
                    },
                    { tool, core: GENERATOR_CORE, serverPid: server.pid, tmpDir: fx.tmp },
                  );
                  cell = r;
                  process.stderr.write(` ${fmtRate(value(spec, r))}${spec.connections === 1 ? ' MB/s' : ' req/s'} ${bottleneck(r)}${r.errors ? ` errors=${r.errors}` : ''}\n`);
                } catch (e) {
                  cell = { error: (e as Error).message };
                  process.stderr.write(` failed: ${(e as Error).message}\n`);
                }
                await sleep(300);
              }
              records.push({ run, server: name, tool, load: spec.key, cell });
            }
            const list = startRss.get(name) ?? [];
            list.push(server.peakRss());
            startRss.set(name, list);
          } catch (e) {
            process.stderr.write(`bench: ${name}: ${(e as Error).message}\n`);
          } finally {
            await server.stop();
            stopAll.splice(stopAll.indexOf(server), 1);
          }
        }
      }
    }
    const out = report(records, servers, tools, loads, runs, startRss, responseSizes);
    process.stdout.write(out + '\n');
    const file = writeJson('http', { machine: headerLines(false), duration, runs, responseBytes, responseSizes: Object.fromEntries(responseSizes), records, peakRss: Object.fromEntries(startRss) });
    process.stderr.write(`bench: results written to ${file}\n`);
  } finally {
    fx.cleanup();
  }
  return 0;
}

function isResult(c: Cell | undefined): c is HttpLoadResult {
  return c !== undefined && c !== 'n/a' && !('error' in c);
}

function report(records: Record_[], servers: ServerName[], tools: HttpTool[], loads: LoadSpec[], runs: number, peakRss: Map<string, number[]>, sizes: Map<string, number>): string {
  const md = flags.markdown === true;
  const out: string[] = [];
  out.push(...headerLines(md), '');
  const find = (run: number, server: ServerName, tool: HttpTool, load: string): Cell | undefined =>
    records.find((r) => r.run === run && r.server === server && r.tool === tool && r.load === load)?.cell;
  const ratioCols = (['raw-net', 'nginx', 'serve-static'] as ServerName[]).filter((s) => servers.includes(s) && servers.includes('muxd'));
  for (const tool of tools) {
    out.push(md ? `### ${tool}` : `== ${tool} (median of ${runs} run${runs === 1 ? '' : 's'}; cells: rate  p50/p99 ms  peak RSS) ==`);
    if (md) out.push('', `Median of ${runs} run${runs === 1 ? '' : 's'}; cells: req/s (or MB/s), p50/p99 latency in ms, server peak RSS during the load.`, '');
    const head = ['load', ...servers, ...ratioCols.map((s) => `muxd/${s}`), 'target', 'muxd bottleneck'];
    const rows: string[][] = [head];
    for (const spec of loads) {
      const row = [spec.label];
      for (const s of servers) {
        const cells = Array.from({ length: runs }, (_, i) => find(i + 1, s, tool, spec.key));
        const ok = cells.filter(isResult);
        if (ok.length === 0) {
          const c = cells.find((x) => x !== undefined);
          row.push(c === 'n/a' ? 'n/a' : c === undefined ? '-' : 'error');
          continue;
        }
        const v = median(ok.map((r) => value(spec, r)));
        const errs = ok.reduce((a, r) => a + r.errors, 0);
        row.push(`${fmtRate(v)} ${fmtMs(median(ok.map((r) => r.p50Micros)))}/${fmtMs(median(ok.map((r) => r.p99Micros)))} ${fmtMB(median(ok.map((r) => r.serverPeakRss)))}${errs > 0 ? ' !err' : ''}`);
      }
      const ratioOf = (against: ServerName): number => {
        const per: number[] = [];
        for (let run = 1; run <= runs; run++) {
          const a = find(run, 'muxd', tool, spec.key);
          const b = find(run, against, tool, spec.key);
          if (isResult(a) && isResult(b)) per.push(value(spec, a) / value(spec, b));
        }
        return median(per);
      };
      for (const s of ratioCols) row.push(fmtRatio(ratioOf(s)));
      const target = TARGETS.find((t) => t.load === spec.key);
      if (target && servers.includes(target.against) && servers.includes('muxd')) {
        const r = ratioOf(target.against);
        row.push(`${target.text}: ${Number.isFinite(r) ? (r >= target.min ? 'PASS' : 'FAIL') : 'n/a'}`);
      } else row.push('');
      const muxd = Array.from({ length: runs }, (_, i) => find(i + 1, 'muxd', tool, spec.key)).filter(isResult);
      row.push(muxd.length ? bottleneck(medianSample(muxd)) : '');
      rows.push(row);
    }
    if (servers.includes('muxd') && loads.some((l) => l.key === 'keepalive')) {
      const ka = Array.from({ length: runs }, (_, i) => find(i + 1, 'muxd', tool, 'keepalive')).filter(isResult);
      const rss = median(ka.map((r) => r.serverPeakRss));
      const row = ['muxd peak RSS, keep-alive c50', ...servers.map(() => ''), ...ratioCols.map(() => '')];
      row[1 + servers.indexOf('muxd')] = fmtMB(rss);
      row.push(`<= 80MB: ${Number.isFinite(rss) ? (rss <= RSS_TARGET_BYTES ? 'PASS' : 'FAIL') : 'n/a'}`, '');
      rows.push(row);
    }
    out.push(renderTable(rows, md), '');
    // Who was saturated, per server and load: without it a ratio can be the generator's ceiling.
    const bn: string[][] = [['bottleneck', ...servers]];
    for (const spec of loads) {
      const row = [spec.label];
      for (const s of servers) {
        const ok = Array.from({ length: runs }, (_, i) => find(i + 1, s, tool, spec.key)).filter(isResult);
        row.push(ok.length ? bottleneck(medianSample(ok)) : '');
      }
      bn.push(row);
    }
    out.push(renderTable(bn, md), '');
  }
  const rssLine = [...peakRss].map(([s, v]) => `${s} ${fmtMB(median(v))}`).join(', ');
  if (rssLine) out.push(`Peak RSS of each server process (VmHWM over one tool's loads; median over processes): ${rssLine}`);
  if (sizes.size) out.push(`GET /1k.txt response size in bytes: ${[...sizes].map(([s, n]) => `${s} ${n}`).join(', ')}`);
  out.push(`"!err": some responses were errors or timeouts (see the JSON in .bench-out/). Bottleneck: the side at >= 90% of its pinned core.`);
  return out.join('\n');
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench: ${(e as Error).message}\n${usage()}\n`);
    process.exit(1);
  },
);

// `npm run bench:binary`: MX/1 on muxd against a minimal Node PING server (the JavaScript
// ceiling) and redis-server (PING/ECHO via redis-benchmark), one server at a time, server on
// core 0 and generators on core 1; medians of N runs, ratios computed inside each run. The same
// generator also speaks MX/1 over WebSocket (muxd's HTTP port, and a minimal server on the `ws`
// package) and over TLS (muxd's --binary-tls-port), each compared with muxd's own TCP rate.
// `--loads transfer` adds a table of its own: MX/1 GET and PUT of 64 MiB against HTTP's 10 MiB
// rate, the disk's write+fsync rate and SHA-256.
import { parseArgs } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { hasTool, sleep, spawnPinned, stopChild } from './lib/proc.js';
import { bottleneck, medianSample, type LoadSample } from './lib/sample.js';
import { median } from './lib/stats.js';
import { muxdFilesDir, startMuxd, startPeer, startRedis, type RunningServer, type ServerContext } from './lib/servers.js';
import { makeFixtures, type Fixtures } from './lib/fixtures.js';
import { runHttpLoad, type HttpTool } from './lib/http-load.js';
import { oneCoreCeiling, putCeiling, type Ceilings } from './lib/ceilings.js';
import { fmtMB, fmtMs, fmtRate, fmtRatio, headerLines, renderTable, writeJson } from './lib/report.js';
import { runMxLoad, DEFAULTS, type MxLoadOptions, type MxTransport } from './mx-load.js';
import { runRedisBenchmark } from './lib/redis-load.js';
import { CERT_KEY_TYPES, makeBenchCert, type BenchCert, type CertKeyType } from './lib/certs.js';
import { DEFAULT_WS_PATH } from './lib/ws.js';

const SERVER_CORE = 0;
const GENERATOR_CORE = 1;

const { values: flags } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    runs: { type: 'string', default: '3' },
    only: { type: 'string' },
    loads: { type: 'string' },
    procs: { type: 'string', default: '1' },
    'ws-path': { type: 'string', default: DEFAULT_WS_PATH },
    'cert-key': { type: 'string', default: 'ec' },
    'http-tool': { type: 'string' },
    quick: { type: 'boolean', default: false },
    markdown: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

const SERVERS = ['muxd', 'ping-server', 'ws-peer', 'redis'] as const;
type ServerName = (typeof SERVERS)[number];

interface LoadSpec {
  key: string;
  label: string;
  mode: MxLoadOptions['mode'];
  transport: MxTransport;
  /** The same load over plain TCP: muxd's rate there is this row's "vs TCP" denominator. */
  tcpTwin?: string;
  depth: number;
  payload: number;
  /** Which servers can run it (the others show n/a). */
  servers: readonly ServerName[];
  unit: 'ops/s' | 'msg/s' | 'MB/s';
}

const PING_ALL: readonly ServerName[] = ['muxd', 'ping-server', 'redis'];
const LOADS: LoadSpec[] = [
  { key: 'd1', label: 'PING c50 depth 1, 0 B', mode: 'ping', transport: 'tcp', depth: 1, payload: 0, servers: PING_ALL, unit: 'ops/s' },
  { key: 'd1-1k', label: 'PING c50 depth 1, 1 KiB', mode: 'ping', transport: 'tcp', depth: 1, payload: 1024, servers: PING_ALL, unit: 'ops/s' },
  { key: 'd16', label: 'PING c50 depth 16, 0 B', mode: 'ping', transport: 'tcp', depth: 16, payload: 0, servers: PING_ALL, unit: 'ops/s' },
  { key: 'd16-1k', label: 'PING c50 depth 16, 1 KiB', mode: 'ping', transport: 'tcp', depth: 16, payload: 1024, servers: PING_ALL, unit: 'ops/s' },
  { key: 'fanout', label: 'SAY fan-out to 100 members (delivered)', mode: 'fanout', transport: 'tcp', depth: 16, payload: 64, servers: ['muxd'], unit: 'msg/s' },
  { key: 'put', label: 'PUT 64 MiB (MB/s)', mode: 'transfer', transport: 'tcp', depth: 1, payload: 0, servers: ['muxd'], unit: 'MB/s' },
  { key: 'get', label: 'GET 64 MiB (MB/s)', mode: 'transfer', transport: 'tcp', depth: 1, payload: 0, servers: ['muxd'], unit: 'MB/s' },
  // Issue 15: MX/1 over WebSocket on muxd's HTTP port, against a ws-package server and muxd's TCP rate.
  { key: 'ws-d1', label: 'WS PING c50 depth 1, 0 B', mode: 'ping', transport: 'ws', tcpTwin: 'd1', depth: 1, payload: 0, servers: ['muxd', 'ws-peer'], unit: 'ops/s' },
  { key: 'ws-d16', label: 'WS PING c50 depth 16, 0 B', mode: 'ping', transport: 'ws', tcpTwin: 'd16', depth: 16, payload: 0, servers: ['muxd', 'ws-peer'], unit: 'ops/s' },
  { key: 'ws-fanout', label: 'WS SAY fan-out to 100 WS members (delivered)', mode: 'fanout', transport: 'ws', tcpTwin: 'fanout', depth: 16, payload: 64, servers: ['muxd'], unit: 'msg/s' },
  // Issue 16: MX/1 over TLS (--binary-tls-port) against the plaintext rate.
  { key: 'tls-d1', label: 'TLS PING c50 depth 1, 0 B', mode: 'ping', transport: 'tls', tcpTwin: 'd1', depth: 1, payload: 0, servers: ['muxd'], unit: 'ops/s' },
  { key: 'tls-d16', label: 'TLS PING c50 depth 16, 0 B', mode: 'ping', transport: 'tls', tcpTwin: 'd16', depth: 16, payload: 0, servers: ['muxd'], unit: 'ops/s' },
  // Issue 14: its own table (transferReport): HTTP 10 MiB, MX/1 GET and PUT repeated, the disk and SHA-256.
  { key: 'transfer', label: 'transfers against HTTP, the disk and SHA-256', mode: 'transfer', transport: 'tcp', depth: 1, payload: 0, servers: ['muxd'], unit: 'MB/s' },
];
/** Issue 14 part 5: GET >= 0.7x HTTP's 10 MiB rate, PUT >= 0.8x what the disk and SHA-256 allow. */
const GET_TARGET = 0.7;
const PUT_TARGET = 0.8;
const TRANSFER_SIZE = 64 * 1024 * 1024;
/** `against` a server: muxd / that server on the same load; 'tcp': muxd on this load / muxd on its tcpTwin. */
const TARGETS: { load: string; against: ServerName | 'tcp'; min: number; text: string }[] = [
  { load: 'd1', against: 'ping-server', min: 0.9, text: '>= 0.9x minimal' },
  { load: 'd1-1k', against: 'ping-server', min: 0.9, text: '>= 0.9x minimal' },
  { load: 'd16', against: 'ping-server', min: 0.8, text: '>= 0.8x minimal' },
  { load: 'd16-1k', against: 'ping-server', min: 0.8, text: '>= 0.8x minimal' },
  { load: 'ws-d1', against: 'ws-peer', min: 1.2, text: '>= 1.2x ws' },
  { load: 'ws-d1', against: 'tcp', min: 0.8, text: '>= 0.8x own TCP' },
  { load: 'ws-d16', against: 'ws-peer', min: 1.2, text: '>= 1.2x ws' },
];

interface Measured extends LoadSample {
  value: number;
  p50Micros: number;
  p99Micros: number;
  errors: number;
  firstError: string;
}
type Cell = Measured | { error: string } | 'n/a';
interface Row {
  run: number;
  server: ServerName;
  load: string;
  cell: Cell;
}

function usage(): string {
  return [
    `Usage: node dist/bench/binary.js [--duration S] [--runs N] [--only ${SERVERS.join(',')}] [--loads ${LOADS.map((l) => l.key).join(',')}] [--procs N] [--ws-path PATH] [--cert-key ${CERT_KEY_TYPES.join('|')}] [--http-tool wrk|autocannon] [--quick] [--markdown]`,
    '  --loads transfer: one muxd per run; HTTP 10 MiB over one connection (wrk when installed, else autocannon;',
    '    --http-tool picks), MX/1 GET and PUT of 64 MiB repeated for --duration each, then the disk\'s write+fsync',
    '    rate and SHA-256 on the server core; ratios GET/HTTP (target >= 0.7x) and PUT/min(disk, SHA-256) (>= 0.8x).',
  ].join('\n');
}

function listFlag<T extends string>(raw: string | undefined, all: readonly T[], what: string): T[] {
  if (raw === undefined) return [...all];
  const picked = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const p of picked) if (!all.includes(p as T)) throw new Error(`unknown ${what} "${p}" (one of ${all.join(', ')})`);
  return picked as T[];
}

/** muxd runs its TLS loads in a process of its own started with a certificate, the others without one. */
async function startServer(name: ServerName, ctx: ServerContext, root: string, cert: BenchCert | null): Promise<RunningServer | null> {
  if (name === 'muxd') {
    if (cert !== null) return startMuxd(ctx, { root, face: 'binary', alsoFaces: ['binary-tls'], tls: cert });
    return startMuxd(ctx, { root, face: 'binary', alsoFaces: ['http'] });
  }
  if (name === 'ping-server') return startPeer(ctx, 'ping-server');
  if (name === 'ws-peer') return startPeer(ctx, 'ws-ping-server');
  return startRedis(ctx);
}

/** The port a load's transport uses on this server: muxd's WebSocket is on its HTTP port. */
function portFor(server: RunningServer, name: ServerName, transport: MxTransport): number {
  if (name !== 'muxd' || transport === 'tcp') return server.port;
  const face = transport === 'ws' ? 'http' : transport === 'tls' ? 'binary-tls' : 'https';
  const port = server.ports?.[face];
  if (port === undefined) throw new Error(`muxd reported no ${face} listener`);
  return port;
}

async function measureOne(server: RunningServer, name: ServerName, specs: LoadSpec[], duration: number, procs: number): Promise<Map<string, Cell>> {
  const out = new Map<string, Cell>();
  const transfer = specs.filter((s) => s.mode === 'transfer');
  for (const spec of specs) {
    if (!spec.servers.includes(name)) {
      out.set(spec.key, 'n/a');
      continue;
    }
    if (spec.mode === 'transfer' && out.has(spec.key)) continue; // PUT and GET come from one load
    process.stderr.write(`  ${name} ${spec.label} ...`);
    try {
      if (name === 'redis') {
        const r = await runRedisBenchmark({ port: server.port, connections: 50, depth: spec.depth, payload: spec.payload, durationSeconds: duration }, GENERATOR_CORE, server.pid);
        out.set(spec.key, { ...r, value: r.opsPerSecond, errors: 0, firstError: '' });
      } else {
        const o: MxLoadOptions = { ...DEFAULTS, port: portFor(server, name, spec.transport), transport: spec.transport, wsPath: flags['ws-path'], mode: spec.mode, connections: 50, depth: spec.depth, payload: spec.payload, durationSeconds: duration, procs, members: 100 };
        const r = await runMxLoad(o, GENERATOR_CORE, server.pid);
        const base = { ...r, errors: r.errors, firstError: r.firstError };
        if (spec.mode === 'transfer') {
          for (const t of transfer) out.set(t.key, { ...base, value: t.key === 'put' ? r.putMBps : r.getMBps, p50Micros: NaN, p99Micros: NaN });
        } else out.set(spec.key, { ...base, value: spec.mode === 'fanout' ? r.deliveredPerSecond : r.opsPerSecond });
      }
      const c = out.get(spec.key) as Measured;
      // Nothing measured and an error: a failed load (a refused handshake), not a rate of zero.
      if (c.value === 0 && c.errors > 0) throw new Error(c.firstError);
      process.stderr.write(` ${fmtRate(c.value)} ${spec.unit} ${bottleneck(c)}${c.errors ? ` errors=${c.errors} (${c.firstError})` : ''}\n`);
    } catch (e) {
      out.set(spec.key, { error: (e as Error).message });
      process.stderr.write(` failed: ${(e as Error).message}\n`);
    }
    await sleep(300);
  }
  return out;
}

async function main(): Promise<number> {
  if (flags.help) {
    process.stdout.write(usage() + '\n');
    return 0;
  }
  const duration = flags.quick ? 2 : Number(flags.duration);
  const runs = flags.quick ? 1 : Number(flags.runs);
  const procs = Number(flags.procs);
  if (!(duration > 0) || !(runs >= 1) || !(procs >= 1)) throw new Error('--duration, --runs and --procs must be positive numbers');
  const servers = listFlag(flags.only, SERVERS, 'server');
  const picked = listFlag(flags.loads, LOADS.map((l) => l.key), 'load');
  // A WS or TLS row is read against muxd's TCP rate on the same load: measure that too.
  if (servers.includes('muxd')) {
    for (const k of [...picked]) {
      const twin = LOADS.find((l) => l.key === k)!.tcpTwin;
      if (twin !== undefined && !picked.includes(twin)) picked.push(twin);
    }
  }
  // `transfer` is not a row of the MX/1 table but a table of its own, from its own muxd.
  const loads = LOADS.filter((l) => picked.includes(l.key) && l.key !== 'transfer');
  const transfer = picked.includes('transfer') && servers.includes('muxd');
  const httpTool = pickHttpTool(flags['http-tool']);
  const keyType = flags['cert-key'] as CertKeyType;
  if (!CERT_KEY_TYPES.includes(keyType)) throw new Error(`--cert-key must be one of ${CERT_KEY_TYPES.join(', ')}`);
  const cert = servers.includes('muxd') && loads.some((l) => l.transport === 'tls' || l.transport === 'wss') ? makeBenchCert(keyType) : null;
  const base = mkdtempSync(path.join(tmpdir(), 'muxd-bench-mx-'));
  const ctx: ServerContext = { core: SERVER_CORE, tmpDir: base };
  const rows: Row[] = [];
  const transferRuns: TransferRun[] = [];
  let fixtures: Fixtures | null = null;
  let current: RunningServer | null = null;
  const onSignal = (): void => {
    void (current?.stop() ?? Promise.resolve()).finally(() => {
      rmSync(base, { recursive: true, force: true });
      fixtures?.cleanup();
      process.exit(130);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (transfer) fixtures = makeFixtures();
    for (let run = 1; run <= runs; run++) {
      for (const name of loads.length > 0 ? servers : []) {
        // muxd: the plaintext loads on a server without a certificate, the TLS loads on one with it.
        const secure = (l: LoadSpec): boolean => l.transport === 'tls' || l.transport === 'wss';
        const phases = name === 'muxd' ? [loads.filter((l) => !secure(l)), loads.filter(secure)].filter((p) => p.length > 0) : [loads];
        for (const phase of phases) {
          const tls = name === 'muxd' && phase.some(secure);
          process.stderr.write(`run ${run}/${runs}: ${name}${tls ? ' (with --tls-cert)' : ''}\n`);
          try {
            current = await startServer(name, ctx, base, tls ? cert : null);
          } catch (e) {
            process.stderr.write(`bench: ${(e as Error).message}\n`);
            for (const spec of phase) rows.push({ run, server: name, load: spec.key, cell: { error: (e as Error).message } });
            current = null;
          }
          if (current === null) continue;
          try {
            const cells = await measureOne(current, name, phase, duration, procs);
            for (const [load, cell] of cells) rows.push({ run, server: name, load, cell });
          } finally {
            await current.stop();
            current = null;
          }
        }
      }
      if (transfer) {
        process.stderr.write(`run ${run}/${runs}: transfers (muxd, HTTP by ${httpTool})\n`);
        const t = await transferRun(ctx, fixtures!, duration, httpTool, (s) => (current = s));
        current = null;
        transferRuns.push(t);
      }
    }
    if (loads.length > 0) process.stdout.write(report(rows, servers, loads, runs) + '\n');
    if (transfer) process.stdout.write(transferReport(transferRuns, runs, httpTool, loads.length === 0) + '\n');
    const file = writeJson('binary', { machine: headerLines(false), duration, runs, procs, certKey: cert?.keyType ?? null, rows, transferRuns });
    process.stderr.write(`bench: results written to ${file}\n`);
  } finally {
    rmSync(base, { recursive: true, force: true });
    fixtures?.cleanup();
  }
  return 0;
}

// ---------------------------------------------------------------- transfers (issue 14 part 5)

function pickHttpTool(raw: string | undefined): HttpTool {
  if (raw === 'autocannon' || raw === 'wrk') return raw;
  if (raw !== undefined) throw new Error(`unknown --http-tool "${raw}" (wrk or autocannon)`);
  return hasTool('wrk') ? 'wrk' : 'autocannon';
}

/** One run's figures: rates in MB/s (10^6 bytes), CPU samples for the bottleneck notes. */
interface TransferRun {
  http: number;
  get: number;
  put: number;
  disk: number;
  /** CPU seconds of the disk figure's write + fsync (page-cache copies). */
  diskCpu: number;
  sha256: number;
  samples: Partial<Record<'http' | 'get' | 'put', LoadSample>>;
  errors: string[];
}

/**
 * One muxd (pinned to the server core) serves HTTP 10 MiB over one connection, then MX/1 GETs
 * and PUTs of 64 MiB (one connection, repeated for `duration` each, generator on its core). With
 * the server stopped, the disk's write+fsync rate in the same --files-dir file system and
 * SHA-256 are measured on the server core: what an upload there can reach at most.
 */
async function transferRun(ctx: ServerContext, fx: Fixtures, duration: number, tool: HttpTool, track: (s: RunningServer | null) => void): Promise<TransferRun> {
  const out: TransferRun = { http: NaN, get: NaN, put: NaN, disk: NaN, diskCpu: NaN, sha256: NaN, samples: {}, errors: [] };
  const note = (what: string, e: unknown): void => {
    out.errors.push(`${what}: ${(e as Error).message}`);
    process.stderr.write(` failed: ${(e as Error).message}\n`);
  };
  // HTTP on `port`, MX/1 over TCP from its ready line (startMuxd fails if that listener never comes up).
  const server = await startMuxd(ctx, { root: fx.dir, face: 'http', alsoFaces: ['binary'] });
  track(server);
  try {
    const binaryPort = server.ports?.binary;
    if (binaryPort === undefined) throw new Error('muxd reported no binary listener');
    process.stderr.write(`  HTTP 10 MiB c1 (${tool}) ...`);
    try {
      const r = await runHttpLoad({ url: `http://127.0.0.1:${server.port}/10m.bin`, connections: 1, pipelining: 1, durationSeconds: duration }, { tool, core: GENERATOR_CORE, serverPid: server.pid, tmpDir: fx.tmp });
      if (r.errors > 0) throw new Error(`${r.errors} errors`);
      out.http = r.bytesPerSecond / 1e6;
      out.samples.http = r;
      process.stderr.write(` ${out.http.toFixed(0)} MB/s ${bottleneck(r)}\n`);
    } catch (e) {
      note('http', e);
    }
    for (const op of ['get', 'put'] as const) {
      await sleep(300);
      process.stderr.write(`  MX/1 ${op.toUpperCase()} 64 MiB ...`);
      try {
        const o: MxLoadOptions = { ...DEFAULTS, port: binaryPort, mode: 'transfer', transfer: op, size: TRANSFER_SIZE, durationSeconds: duration, procs: 1 };
        const r = await runMxLoad(o, GENERATOR_CORE, server.pid);
        if (r.errors > 0) throw new Error(r.firstError || `${r.errors} errors`);
        out[op] = op === 'get' ? r.getMBps : r.putMBps;
        out.samples[op] = r;
        process.stderr.write(` ${out[op].toFixed(0)} MB/s ${bottleneck(r)}\n`);
      } catch (e) {
        note(op, e);
      }
    }
  } finally {
    await server.stop();
    track(null);
  }
  process.stderr.write('  disk write+fsync and SHA-256 of 64 MiB on the server core ...');
  try {
    const c = await measureCeilingsPinned(muxdFilesDir(ctx), TRANSFER_SIZE);
    out.disk = c.diskMBps;
    out.diskCpu = c.diskCpuSeconds;
    out.sha256 = c.sha256MBps;
    process.stderr.write(` disk ${c.diskMBps.toFixed(0)} MB/s, SHA-256 ${c.sha256MBps.toFixed(0)} MB/s\n`);
  } catch (e) {
    note('ceilings', e);
  }
  return out;
}

async function measureCeilingsPinned(dir: string, size: number): Promise<Ceilings> {
  const script = path.resolve('dist/bench/lib/ceilings.js');
  const pc = spawnPinned(process.execPath, [script, '--dir', dir, '--size', String(size)], { core: SERVER_CORE, keepAllStdout: true });
  const killer = setTimeout(() => void stopChild(pc), 120_000);
  const code = await pc.exited;
  clearTimeout(killer);
  if (code !== 0) throw new Error(`ceilings exited with ${code}: ${pc.stderr().slice(0, 300)}`);
  return JSON.parse(pc.stdout().trim().split('\n').pop() ?? '') as Ceilings;
}

function transferReport(runs: TransferRun[], n: number, tool: HttpTool, withHeader: boolean): string {
  const md = flags.markdown === true;
  const med = (f: (r: TransferRun) => number): number => median(runs.map(f));
  const mb = (x: number): string => (Number.isFinite(x) ? x.toFixed(0) : 'n/a');
  const perRun = (f: (r: TransferRun) => number, fmt: (x: number) => string): string => runs.map((r) => fmt(f(r))).join(' / ');
  const note = (k: 'http' | 'get' | 'put'): string => {
    const ok = runs.map((r) => r.samples[k]).filter((x): x is LoadSample => x !== undefined);
    return ok.length ? bottleneck(medianSample(ok)) : '';
  };
  const ceiling = (r: TransferRun): number => putCeiling(r.disk, r.sha256).overlapped;
  const oneCore = (r: TransferRun): number => oneCoreCeiling({ diskMBps: r.disk, diskCpuSeconds: r.diskCpu, sha256MBps: r.sha256 }, TRANSFER_SIZE);
  const getRatio = (r: TransferRun): number => r.get / r.http;
  const putRatio = (r: TransferRun): number => r.put / ceiling(r);
  const putOneCore = (r: TransferRun): number => r.put / oneCore(r);
  const pct = (x: number): string => (Number.isFinite(x) ? `${Math.round(x * 100)}%` : 'n/a');
  const verdict = (x: number, min: number): string => (Number.isFinite(x) ? (x >= min ? 'PASS' : 'FAIL') : 'n/a');
  const table: string[][] = [
    ['figure', `median of ${n}`, 'each run', 'target', 'bottleneck'],
    [`HTTP 10 MiB file c1 (${tool}, MB/s)`, mb(med((r) => r.http)), perRun((r) => r.http, mb), '', note('http')],
    ['MX/1 GET 64 MiB (MB/s)', mb(med((r) => r.get)), perRun((r) => r.get, mb), '', note('get')],
    ['MX/1 PUT 64 MiB (MB/s)', mb(med((r) => r.put)), perRun((r) => r.put, mb), '', note('put')],
    ['disk write+fsync 64 MiB (MB/s)', mb(med((r) => r.disk)), perRun((r) => r.disk, mb), '', `CPU ${pct(med((r) => (r.diskCpu * r.disk) / (TRANSFER_SIZE / 1e6)))} of its time`],
    ['SHA-256, one core (MB/s)', mb(med((r) => r.sha256)), perRun((r) => r.sha256, mb), '', ''],
    ['PUT ceiling = min(disk, SHA-256)', mb(med(ceiling)), perRun(ceiling, mb), '', ''],
    ['(serial: 1/(1/disk + 1/SHA-256))', mb(med((r) => putCeiling(r.disk, r.sha256).serial)), perRun((r) => putCeiling(r.disk, r.sha256).serial, mb), '', ''],
    ['(one core: disk, SHA-256 + disk CPU)', mb(med(oneCore)), perRun(oneCore, mb), '', ''],
    ['GET / HTTP 10 MiB', fmtRatio(med(getRatio)), perRun(getRatio, fmtRatio), `>= ${GET_TARGET}x: ${verdict(med(getRatio), GET_TARGET)}`, ''],
    ['PUT / ceiling', fmtRatio(med(putRatio)), perRun(putRatio, fmtRatio), `>= ${PUT_TARGET}x: ${verdict(med(putRatio), PUT_TARGET)}`, ''],
    ['(PUT / one-core ceiling)', fmtRatio(med(putOneCore)), perRun(putOneCore, fmtRatio), `(>= ${PUT_TARGET}x: ${verdict(med(putOneCore), PUT_TARGET)})`, ''],
  ];
  const lines = withHeader ? [...headerLines(md), ''] : [];
  lines.push(md ? `Transfers (issue 14 part 5), median of ${n} run${n === 1 ? '' : 's'}; ratios computed within each run.` : `== Transfers (median of ${n} run${n === 1 ? '' : 's'}; ratios within each run) ==`, '');
  lines.push(renderTable(table, md), '');
  lines.push('One muxd per run on core 0, generators on core 1. GET/PUT: one connection, 64 MiB transfers repeated for --duration each (bench/mx-load.js, 256 KiB DATA frames); MB/s = 10^6 bytes/s. The disk and SHA-256 are measured on core 0 with the server stopped; the ceiling is min() because the store overlaps hashing (main thread) with writing (thread pool) and fsyncs once. On one core the writes\' page-cache copies still compete with hashing for the CPU: the one-core line bounds that (the disk\'s CPU time added to the hashing time).');
  const errs = runs.flatMap((r) => r.errors);
  if (errs.length) lines.push(`errors: ${errs.join('; ')}`);
  return lines.join('\n');
}

function isMeasured(c: Cell | undefined): c is Measured {
  return c !== undefined && c !== 'n/a' && !('error' in c);
}

function report(rows: Row[], servers: ServerName[], loads: LoadSpec[], runs: number): string {
  const md = flags.markdown === true;
  const find = (run: number, server: ServerName, load: string): Cell | undefined => rows.find((r) => r.run === run && r.server === server && r.load === load)?.cell;
  const all = (server: ServerName, load: string): Measured[] => Array.from({ length: runs }, (_, i) => find(i + 1, server, load)).filter(isMeasured);
  const ratioCols = (['ping-server', 'ws-peer', 'redis'] as ServerName[]).filter((s) => servers.includes(s) && servers.includes('muxd'));
  const twinOf = (load: string): string | undefined => LOADS.find((l) => l.key === load)?.tcpTwin;
  const ratio = (load: string, against: ServerName | 'tcp'): number => {
    const per: number[] = [];
    for (let run = 1; run <= runs; run++) {
      const a = find(run, 'muxd', load);
      const twin = twinOf(load);
      const b = against === 'tcp' ? (twin === undefined ? undefined : find(run, 'muxd', twin)) : find(run, against, load);
      if (isMeasured(a) && isMeasured(b)) per.push(a.value / b.value);
    }
    return median(per);
  };
  const twinCol = servers.includes('muxd') && loads.some((l) => l.tcpTwin !== undefined);
  const table: string[][] = [['load', ...servers, ...ratioCols.map((s) => `muxd/${s}`), ...(twinCol ? ['muxd vs own TCP'] : []), 'target', 'muxd bottleneck']];
  for (const spec of loads) {
    const row = [spec.label];
    for (const s of servers) {
      const ok = all(s, spec.key);
      if (ok.length === 0) {
        const c = find(1, s, spec.key);
        row.push(c === 'n/a' ? 'n/a' : c === undefined ? '-' : 'error');
        continue;
      }
      const lat = spec.mode === 'transfer' ? '' : ` ${fmtMs(median(ok.map((r) => r.p50Micros)))}/${fmtMs(median(ok.map((r) => r.p99Micros)))}`;
      const errs = ok.reduce((a, r) => a + r.errors, 0);
      row.push(`${spec.unit === 'MB/s' ? median(ok.map((r) => r.value)).toFixed(0) : fmtRate(median(ok.map((r) => r.value)))}${lat} ${fmtMB(median(ok.map((r) => r.serverPeakRss)))}${errs > 0 ? ' !err' : ''}`);
    }
    for (const s of ratioCols) row.push(spec.servers.includes(s) ? fmtRatio(ratio(spec.key, s)) : 'n/a');
    if (twinCol) row.push(spec.tcpTwin !== undefined ? fmtRatio(ratio(spec.key, 'tcp')) : '');
    const verdicts: string[] = [];
    for (const t of TARGETS.filter((x) => x.load === spec.key)) {
      if (!servers.includes('muxd') || (t.against !== 'tcp' && !servers.includes(t.against))) continue;
      const r = ratio(spec.key, t.against);
      verdicts.push(`${t.text}: ${Number.isFinite(r) ? (r >= t.min ? 'PASS' : 'FAIL') : 'n/a'}`);
    }
    row.push(verdicts.join('; '));
    const m = all('muxd', spec.key);
    row.push(m.length && spec.mode !== 'transfer' ? bottleneck(medianSample(m)) : '');
    table.push(row);
  }
  const bn: string[][] = [['bottleneck', ...servers]];
  for (const spec of loads.filter((l) => l.mode !== 'transfer')) {
    bn.push([spec.label, ...servers.map((s) => {
      const ok = all(s, spec.key);
      return ok.length ? bottleneck(medianSample(ok)) : '';
    })]);
  }
  const lines = [...headerLines(md), ''];
  lines.push(md ? `Median of ${runs} run${runs === 1 ? '' : 's'}; cells: rate, p50/p99 latency in ms, server peak RSS during the load.` : `== MX/1 (median of ${runs} run${runs === 1 ? '' : 's'}; cells: rate  p50/p99 ms  peak RSS) ==`, '');
  lines.push(renderTable(table, md), '', renderTable(bn, md), '');
  lines.push('Generators: bench/mx-load.js (Node) for muxd, ping-server and ws-peer, redis-benchmark (C) for redis (PING, or ECHO of the payload). Fan-out: one member SAYs with 16 in flight, 99 count MESSAGE pushes. Bottleneck: the side at >= 90% of its pinned core.');
  if (twinCol) lines.push(`WS rows: one MX/1 frame per masked binary message on muxd's HTTP port (${flags['ws-path']}), and on ws-peer (the ws package, no compression). TLS rows: muxd's --binary-tls-port (ALPN mx1, ${flags['cert-key'] === 'rsa' ? 'RSA 2048' : 'ECDSA P-256'} certificate made by openssl). "muxd vs own TCP": muxd on the row / muxd on the same load over plain TCP, same run.`);
  return lines.join('\n');
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`bench: ${(e as Error).message}\n${usage()}\n`);
    process.exit(1);
  },
);

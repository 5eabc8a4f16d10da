// `npm run bench:binary`: MX/1 on muxd against a minimal Node PING server (the JavaScript
// ceiling) and redis-server (PING/ECHO via redis-benchmark), one server at a time, server on
// core 0 and generators on core 1; medians of N runs, ratios computed inside each run. The same
// generator also speaks MX/1 over WebSocket (muxd's HTTP port, and a minimal server on the `ws`
// package) and over TLS (muxd's --binary-tls-port), each compared with muxd's own TCP rate.
import { parseArgs } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sleep } from './lib/proc.js';
import { bottleneck, medianSample, type LoadSample } from './lib/sample.js';
import { median } from './lib/stats.js';
import { startMuxd, startPeer, startRedis, type RunningServer, type ServerContext } from './lib/servers.js';
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
];
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
  return `Usage: node dist/bench/binary.js [--duration S] [--runs N] [--only ${SERVERS.join(',')}] [--loads ${LOADS.map((l) => l.key).join(',')}] [--procs N] [--ws-path PATH] [--cert-key ${CERT_KEY_TYPES.join('|')}] [--quick] [--markdown]`;
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
  const loads = LOADS.filter((l) => picked.includes(l.key));
  const keyType = flags['cert-key'] as CertKeyType;
  if (!CERT_KEY_TYPES.includes(keyType)) throw new Error(`--cert-key must be one of ${CERT_KEY_TYPES.join(', ')}`);
  const cert = servers.includes('muxd') && loads.some((l) => l.transport === 'tls' || l.transport === 'wss') ? makeBenchCert(keyType) : null;
  const base = mkdtempSync(path.join(tmpdir(), 'muxd-bench-mx-'));
  const ctx: ServerContext = { core: SERVER_CORE, tmpDir: base };
  const rows: Row[] = [];
  let current: RunningServer | null = null;
  const onSignal = (): void => {
    void (current?.stop() ?? Promise.resolve()).finally(() => {
      rmSync(base, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    for (let run = 1; run <= runs; run++) {
      for (const name of servers) {
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
    }
    process.stdout.write(report(rows, servers, loads, runs) + '\n');
    const file = writeJson('binary', { machine: headerLines(false), duration, runs, procs, certKey: cert?.keyType ?? null, rows });
    process.stderr.write(`bench: results written to ${file}\n`);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
  return 0;
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

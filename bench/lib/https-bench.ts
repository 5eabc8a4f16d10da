// `npm run bench -- --tls` (issue 16 part 6): HTTPS rows with the plaintext bench's loads and
// tools, for muxd's --https-port, a node:https fixed-response peer and nginx with ssl, all on one
// certificate made by openssl for this run. New connections per second come from a node:tls loop
// (bench/lib/tls-connect-load.ts): every connection a full handshake, or offering the previous
// session so the server can resume it. Server on core 0, every generator on core 1.
import { hasTool, sleep } from './proc.js';
import { bottleneck, medianSample, type LoadSample } from './sample.js';
import { median } from './stats.js';
import { makeFixtures } from './fixtures.js';
import { rawGet } from './raw-http.js';
import { runHttpLoad, type HttpTool } from './http-load.js';
import { runTlsConnectLoad } from './tls-connect-load.js';
import { startMuxd, startNginx, startPeer, type RunningServer, type ServerContext } from './servers.js';
import { fmtMB, fmtMs, fmtRate, fmtRatio, headerLines, renderTable, writeJson } from './report.js';
import { makeBenchCert, type BenchCert, type CertKeyType } from './certs.js';
import { DEFAULT_RESPONSE_BYTES } from '../peers/fixed-response.js';

const SERVER_CORE = 0;
const GENERATOR_CORE = 1;

export const TLS_SERVERS = ['muxd', 'node-https', 'nginx'] as const;
export type TlsServerName = (typeof TLS_SERVERS)[number];
/** The node:tls connection loop, reported as a tool of its own. */
type Tool = HttpTool | 'node:tls';

interface TlsLoad {
  key: string;
  label: string;
  path: string;
  /** 'stream': keep-alive connections through autocannon/wrk; 'connect': the node:tls loop. */
  kind: 'stream' | 'connect';
  connections: number;
  resume: boolean;
  mbps: boolean;
}

export const TLS_LOADS: TlsLoad[] = [
  { key: 'keepalive', label: 'HTTPS 1 KiB keep-alive c50', path: '/1k.txt', kind: 'stream', connections: 50, resume: false, mbps: false },
  { key: '10m', label: 'HTTPS 10 MiB file c1 (MB/s)', path: '/10m.bin', kind: 'stream', connections: 1, resume: false, mbps: true },
  { key: 'full', label: 'new connections/s, full handshake', path: '/1k.txt', kind: 'connect', connections: 0, resume: false, mbps: false },
  { key: 'resumed', label: 'new connections/s, resumed', path: '/1k.txt', kind: 'connect', connections: 0, resume: true, mbps: false },
];

const TARGETS: { load: string; against: TlsServerName; min: number; text: string }[] = [
  { load: 'keepalive', against: 'node-https', min: 1.0, text: '>= 1.0x node:https' },
  { load: 'keepalive', against: 'nginx', min: 0.7, text: '>= 0.7x nginx' },
  { load: '10m', against: 'nginx', min: 0.5, text: '>= 0.5x nginx' },
  { load: 'full', against: 'node-https', min: 0.8, text: '>= 0.8x node:https' },
];

interface Measured extends LoadSample {
  value: number;
  p50Micros: number;
  p99Micros: number;
  errors: number;
  /** connect loads: fraction the server resumed. */
  resumed?: number;
}
type Cell = Measured | { error: string } | 'n/a';
interface Rec {
  run: number;
  server: TlsServerName;
  tool: Tool;
  load: string;
  cell: Cell;
}

export interface TlsBenchOptions {
  duration: number;
  runs: number;
  servers: TlsServerName[];
  loads: string[];
  tools: HttpTool[];
  keyType: CertKeyType;
  /** Parallel loops of the node:tls connection load. */
  connectConcurrency: number;
  markdown: boolean;
}

async function startServer(name: TlsServerName, ctx: ServerContext, root: string, cert: BenchCert, responseBytes: number): Promise<RunningServer | null> {
  if (name === 'muxd') return startMuxd(ctx, { root, face: 'https', tls: cert });
  if (name === 'node-https') return startPeer(ctx, 'node-https', ['--bytes', String(responseBytes), '--cert', cert.cert, '--key', cert.key]);
  return startNginx(ctx, root, cert);
}

/** muxd's plain 1 KiB response size (started without TLS), so node:https sends as many bytes. */
async function responseSize(ctx: ServerContext, root: string): Promise<number> {
  let server: RunningServer | null = null;
  try {
    server = await startMuxd(ctx, { root, face: 'http' });
    return (await rawGet(server.port, '/1k.txt')).totalBytes;
  } catch (e) {
    process.stderr.write(`bench: could not measure muxd's 1 KiB response (${(e as Error).message}); node-https sends ${DEFAULT_RESPONSE_BYTES} bytes\n`);
    return DEFAULT_RESPONSE_BYTES;
  } finally {
    await server?.stop();
  }
}

export async function runTlsBench(o: TlsBenchOptions): Promise<number> {
  const loads = TLS_LOADS.filter((l) => o.loads.includes(l.key));
  const tools: Tool[] = [...(loads.some((l) => l.kind === 'stream') ? o.tools : []), ...(loads.some((l) => l.kind === 'connect') ? (['node:tls'] as const) : [])];
  const loadsFor = (tool: Tool): TlsLoad[] => loads.filter((l) => (tool === 'node:tls') === (l.kind === 'connect'));
  const cert = makeBenchCert(o.keyType);
  const fx = makeFixtures();
  const ctx: ServerContext = { core: SERVER_CORE, tmpDir: fx.tmp };
  const recs: Rec[] = [];
  const live: RunningServer[] = [];
  const onSignal = (): void => {
    void Promise.all(live.map((s) => s.stop())).finally(() => {
      fx.cleanup();
      process.exit(130);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const responseBytes = o.servers.includes('node-https') ? await responseSize(ctx, fx.dir) : DEFAULT_RESPONSE_BYTES;
    const sizes = new Map<string, number>();
    for (let run = 1; run <= o.runs; run++) {
      for (const name of o.servers) {
        for (const tool of tools) {
          let server: RunningServer | null = null;
          try {
            server = await startServer(name, ctx, fx.dir, cert, responseBytes);
          } catch (e) {
            process.stderr.write(`bench: ${(e as Error).message}\n`);
            for (const spec of loadsFor(tool)) recs.push({ run, server: name, tool, load: spec.key, cell: { error: (e as Error).message } });
          }
          if (server === null) continue;
          live.push(server);
          try {
            const check = await rawGet(server.port, '/1k.txt', {}, 'GET', 5000, true);
            if (check.status !== 200) process.stderr.write(`bench: ${name} answered GET /1k.txt over TLS with ${check.status}\n`);
            sizes.set(name, check.totalBytes);
            for (const spec of loadsFor(tool)) {
              process.stderr.write(`run ${run} ${name} ${tool} ${spec.label} ...`);
              let cell: Cell;
              try {
                cell = await measure(server, spec, tool, o, fx.tmp);
                const unit = spec.mbps ? 'MB/s' : spec.kind === 'connect' ? 'conn/s' : 'req/s';
                process.stderr.write(` ${fmtRate(cell.value)} ${unit} ${bottleneck(cell)}${cell.resumed !== undefined ? ` resumed ${(100 * cell.resumed).toFixed(0)}%` : ''}${cell.errors ? ` errors=${cell.errors}` : ''}\n`);
              } catch (e) {
                cell = { error: (e as Error).message };
                process.stderr.write(` failed: ${(e as Error).message}\n`);
              }
              recs.push({ run, server: name, tool, load: spec.key, cell });
              await sleep(300);
            }
          } catch (e) {
            process.stderr.write(`bench: ${name}: ${(e as Error).message}\n`);
            for (const spec of loadsFor(tool)) recs.push({ run, server: name, tool, load: spec.key, cell: { error: (e as Error).message } });
          } finally {
            await server.stop();
            live.splice(live.indexOf(server), 1);
          }
        }
      }
    }
    process.stdout.write(report(recs, o, tools, loadsFor, cert, sizes) + '\n');
    const file = writeJson('https', { machine: headerLines(false), duration: o.duration, runs: o.runs, certKey: o.keyType, connectConcurrency: o.connectConcurrency, responseBytes, records: recs });
    process.stderr.write(`bench: results written to ${file}\n`);
  } finally {
    fx.cleanup();
  }
  return 0;
}

async function measure(server: RunningServer, spec: TlsLoad, tool: Tool, o: TlsBenchOptions, tmpDir: string): Promise<Measured> {
  if (tool === 'node:tls') {
    const r = await runTlsConnectLoad({ port: server.port, path: spec.path, concurrency: o.connectConcurrency, durationSeconds: o.duration, resume: spec.resume }, GENERATOR_CORE, server.pid);
    if (r.connectionsPerSecond === 0 && r.errors > 0) throw new Error(r.firstError);
    return { ...r, value: r.connectionsPerSecond, resumed: r.resumedFraction };
  }
  const r = await runHttpLoad(
    { url: `https://127.0.0.1:${server.port}${spec.path}`, connections: spec.connections, pipelining: 1, durationSeconds: o.duration },
    { tool, core: GENERATOR_CORE, serverPid: server.pid, tmpDir },
  );
  return { ...r, value: spec.mbps ? r.bytesPerSecond / 1e6 : r.requestsPerSecond };
}

function isMeasured(c: Cell | undefined): c is Measured {
  return c !== undefined && c !== 'n/a' && !('error' in c);
}

function report(recs: Rec[], o: TlsBenchOptions, tools: Tool[], loadsFor: (t: Tool) => TlsLoad[], cert: BenchCert, sizes: Map<string, number>): string {
  const md = o.markdown;
  const find = (run: number, server: TlsServerName, tool: Tool, load: string): Cell | undefined => recs.find((r) => r.run === run && r.server === server && r.tool === tool && r.load === load)?.cell;
  const all = (server: TlsServerName, tool: Tool, load: string): Measured[] => Array.from({ length: o.runs }, (_, i) => find(i + 1, server, tool, load)).filter(isMeasured);
  const ratio = (tool: Tool, load: string, against: TlsServerName): number => {
    const per: number[] = [];
    for (let run = 1; run <= o.runs; run++) {
      const a = find(run, 'muxd', tool, load);
      const b = find(run, against, tool, load);
      if (isMeasured(a) && isMeasured(b)) per.push(a.value / b.value);
    }
    return median(per);
  };
  const ratioCols = (['node-https', 'nginx'] as TlsServerName[]).filter((s) => o.servers.includes(s) && o.servers.includes('muxd'));
  const out = [...headerLines(md), ''];
  for (const tool of tools) {
    const loads = loadsFor(tool);
    out.push(md ? `### HTTPS, ${tool}` : `== HTTPS, ${tool} (median of ${o.runs} run${o.runs === 1 ? '' : 's'}; cells: rate  p50/p99 ms  peak RSS) ==`, '');
    const rows: string[][] = [['load', ...o.servers, ...ratioCols.map((s) => `muxd/${s}`), 'target', 'muxd bottleneck']];
    for (const spec of loads) {
      const row = [spec.label];
      for (const s of o.servers) {
        const ok = all(s, tool, spec.key);
        if (ok.length === 0) {
          row.push(find(1, s, tool, spec.key) === undefined ? '-' : 'error');
          continue;
        }
        const resumed = ok[0]!.resumed !== undefined && spec.resume ? ` ${(100 * median(ok.map((r) => r.resumed!))).toFixed(0)}%res` : '';
        const errs = ok.reduce((a, r) => a + r.errors, 0);
        row.push(`${fmtRate(median(ok.map((r) => r.value)))} ${fmtMs(median(ok.map((r) => r.p50Micros)))}/${fmtMs(median(ok.map((r) => r.p99Micros)))} ${fmtMB(median(ok.map((r) => r.serverPeakRss)))}${resumed}${errs > 0 ? ' !err' : ''}`);
      }
      for (const s of ratioCols) row.push(fmtRatio(ratio(tool, spec.key, s)));
      const verdicts = TARGETS.filter((t) => t.load === spec.key && o.servers.includes(t.against) && o.servers.includes('muxd')).map((t) => {
        const r = ratio(tool, spec.key, t.against);
        return `${t.text}: ${Number.isFinite(r) ? (r >= t.min ? 'PASS' : 'FAIL') : 'n/a'}`;
      });
      row.push(verdicts.join('; '));
      const m = all('muxd', tool, spec.key);
      row.push(m.length ? bottleneck(medianSample(m)) : '');
      rows.push(row);
    }
    out.push(renderTable(rows, md), '');
    const bn: string[][] = [['bottleneck', ...o.servers]];
    for (const spec of loads) bn.push([spec.label, ...o.servers.map((s) => {
      const ok = all(s, tool, spec.key);
      return ok.length ? bottleneck(medianSample(ok)) : '';
    })]);
    out.push(renderTable(bn, md), '');
  }
  out.push(`Certificate: ${cert.keyType === 'ec' ? 'ECDSA P-256' : 'RSA 2048'}, self-signed by openssl for this run, the same for every server. New connections: the node:tls loop (bench/lib/tls-connect-load.ts, ${o.connectConcurrency} loops on core 1), one GET with Connection: close per connection; "resumed" offers the previous connection's session, "N%res" is how many the server resumed.`);
  if (sizes.size) out.push(`GET /1k.txt response size over TLS in bytes: ${[...sizes].map(([s, n]) => `${s} ${n}`).join(', ')}`);
  out.push('"!err": some responses were errors or timeouts (see the JSON in .bench-out/). Bottleneck: the side at >= 90% of its pinned core.');
  return out.join('\n');
}

/** autocannon is always there; wrk when installed. */
export function tlsTools(picked: HttpTool[]): HttpTool[] {
  if (picked.includes('wrk') && !hasTool('wrk')) {
    process.stderr.write('bench: wrk not installed, skipping it (autocannon only)\n');
    return picked.filter((t) => t !== 'wrk');
  }
  return picked;
}

// New TLS connections per second: a node:tls loop, run as a child pinned to the generator core.
// Each of `concurrency` loops opens a connection, sends one GET with `Connection: close`, reads
// the response to the server's close, and starts over. `resume: false` makes every connection a
// full handshake (no session offered); `resume: true` offers the session (TLS 1.3 ticket, or 1.2
// ticket/ID) the previous connection of the same loop received, so the server can resume it.
// Whether it did is counted from isSessionReused(): a server that never resumes shows 0%.
//
//   node dist/bench/lib/tls-connect-load.js --port 8443 --path /1k.txt --concurrency 8 --duration 5 [--resume]
import { connect, type TLSSocket } from 'node:tls';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Histogram } from './stats.js';
import { LoadMeter, type LoadSample } from './sample.js';
import { spawnPinned, stopChild } from './proc.js';

export interface TlsConnectLoad {
  port: number;
  path: string;
  concurrency: number;
  durationSeconds: number;
  resume: boolean;
}

export interface TlsConnectResult extends LoadSample {
  /** Connections (one request each) completed per second. */
  connectionsPerSecond: number;
  bytesPerSecond: number;
  /** Connect to last response byte, per connection. */
  p50Micros: number;
  p99Micros: number;
  /** Fraction of completed connections the server resumed. */
  resumedFraction: number;
  errors: number;
  firstError: string;
}

interface WorkerReport {
  completed: number;
  resumed: number;
  bytes: number;
  errors: number;
  firstError: string;
  hist: [number, number][];
}

const WARMUP_MS = 500;

async function worker(o: TlsConnectLoad): Promise<WorkerReport> {
  const report: WorkerReport = { completed: 0, resumed: 0, bytes: 0, errors: 0, firstError: '', hist: [] };
  const hist = new Histogram();
  const request = Buffer.from(`GET ${o.path} HTTP/1.1\r\nHost: 127.0.0.1:${o.port}\r\nConnection: close\r\n\r\n`, 'latin1');
  const from = performance.now() + WARMUP_MS;
  const to = from + o.durationSeconds * 1000;
  const one = (session: Buffer | undefined): Promise<Buffer | undefined> =>
    new Promise((resolve) => {
      const t0 = performance.now();
      let latest = session;
      let bytes = 0;
      let head = '';
      let settled = false;
      const socket: TLSSocket = connect({ port: o.port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], session: o.resume ? session : undefined });
      const done = (e: Error | null): void => {
        if (settled) return;
        settled = true;
        // Asked before destroy(): afterwards the TLS handle is gone and the answer is always false.
        const reused = socket.isSessionReused();
        socket.destroy();
        const now = performance.now();
        const measuring = t0 >= from && now <= to;
        if (e === null && !head.startsWith('HTTP/1.1 200')) e = new Error(`answered ${JSON.stringify(head.slice(0, 20))}`);
        if (!measuring) return resolve(latest);
        if (e !== null) {
          report.errors++;
          report.firstError ||= e.message;
        } else {
          report.completed++;
          report.bytes += bytes;
          if (reused) report.resumed++;
          hist.record((now - t0) * 1000);
        }
        resolve(latest);
      };
      socket.setNoDelay(true);
      // TLS 1.3 tickets arrive after the handshake; keep the last one for the next connection.
      socket.on('session', (s: Buffer) => (latest = s));
      socket.on('secureConnect', () => socket.write(request));
      socket.on('data', (chunk: Buffer) => {
        if (head.length < 16) head += chunk.toString('latin1', 0, Math.min(chunk.length, 16));
        bytes += chunk.length;
      });
      socket.on('end', () => done(null));
      socket.on('error', (e) => done(e));
      socket.setTimeout(10_000, () => done(new Error('no answer within 10 s')));
    });
  await Promise.all(
    Array.from({ length: o.concurrency }, async () => {
      let session: Buffer | undefined;
      while (performance.now() < to) session = await one(session);
    }),
  );
  hist.counts.forEach((c, i) => c > 0 && report.hist.push([i, c]));
  return report;
}

const SELF = fileURLToPath(import.meta.url);

/** Runs the loop in one child on `core`, sampling `serverPid` over the measured window. */
export async function runTlsConnectLoad(o: TlsConnectLoad, core: number | string, serverPid: number): Promise<TlsConnectResult> {
  const meter = new LoadMeter(serverPid);
  const gen = spawnPinned(process.execPath, [SELF, '--worker', JSON.stringify(o)], { core, keepAllStdout: true });
  meter.addGenerator(gen.pid);
  const killer = setTimeout(() => void stopChild(gen), (o.durationSeconds + 30) * 1000);
  await gen.exited;
  clearTimeout(killer);
  const sample = meter.stop();
  let r: WorkerReport;
  try {
    r = JSON.parse(gen.stdout().trim().split('\n').pop() ?? '') as WorkerReport;
  } catch {
    throw new Error(`the TLS connection loop printed no report: ${gen.stderr().slice(0, 500)}`);
  }
  const hist = new Histogram();
  const counts: number[] = [];
  for (const [b, c] of r.hist) counts[b] = c;
  hist.merge(Array.from(counts, (c) => c ?? 0));
  return {
    ...sample,
    connectionsPerSecond: r.completed / o.durationSeconds,
    bytesPerSecond: r.bytes / o.durationSeconds,
    p50Micros: hist.quantile(0.5),
    p99Micros: hist.quantile(0.99),
    resumedFraction: r.completed > 0 ? r.resumed / r.completed : NaN,
    errors: r.errors,
    firstError: r.firstError,
  };
}

async function cli(): Promise<void> {
  const { values } = parseArgs({
    options: {
      worker: { type: 'string' },
      port: { type: 'string', default: '8443' },
      path: { type: 'string', default: '/' },
      concurrency: { type: 'string', default: '8' },
      duration: { type: 'string', default: '5' },
      resume: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      'Usage: node dist/bench/lib/tls-connect-load.js [--port P] [--path /1k.txt] [--concurrency N] [--duration S] [--resume]\n' +
        'New TLS connections per second against 127.0.0.1:P, one GET with Connection: close each;\n' +
        'every one a full handshake, or with --resume offering the previous session. Unpinned here.\n',
    );
    return;
  }
  if (values.worker !== undefined) {
    process.stdout.write(JSON.stringify(await worker(JSON.parse(values.worker) as TlsConnectLoad)) + '\n');
    return;
  }
  const o: TlsConnectLoad = { port: Number(values.port), path: values.path, concurrency: Number(values.concurrency), durationSeconds: Number(values.duration), resume: values.resume };
  const r = await worker(o);
  process.stdout.write(`${(r.completed / o.durationSeconds).toFixed(0)} connections/s, ${r.completed ? ((100 * r.resumed) / r.completed).toFixed(0) : 0}% resumed, ${r.errors} errors${r.firstError ? ` (first: ${r.firstError})` : ''}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  cli().then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`tls-connect-load: ${(e as Error).message}\n`);
      process.exit(1);
    },
  );
}

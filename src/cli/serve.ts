// `muxd serve`: both faces in one process, one thread, one event loop.
import { closeSync, openSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { Metrics, type MetricsSnapshot } from '../loop/metrics.js';
import { startHttpServer, type HttpServer } from '../http/server.js';
import { parserFactory } from '../http/parsers.js';
import { StaticSite } from '../http/static/site.js';
import { withStatsRoute } from '../http/stats-route.js';
import { startBinaryServer, type BinaryServer } from '../binary/server.js';
import type { Room } from '../binary/room.js';
import type { SingleProcessRelay } from '../chat-relay/single-process.js';
import { UsageError, type ServeOptions } from './serve-options.js';

export interface Running {
  http: HttpServer;
  binary: BinaryServer;
  metrics: Metrics;
  close(): Promise<void>;
}

/** What a process running serve() inside something bigger (a cluster worker) plugs in. */
export interface ServeHooks {
  /** What STATS and the stats route answer, given this process's own snapshot (default: that). */
  statsProvider?: (local: MetricsSnapshot) => MetricsSnapshot;
  /** The MX/1 chat room (default: a LocalRoom of this process); e.g. one relayed to other processes. */
  room?: (metrics: Metrics) => Room;
}

export async function serve(opts: ServeOptions, log: (line: string) => void = (l) => process.stdout.write(l + '\n'), hooks: ServeHooks = {}): Promise<Running> {
  if (opts.accessLog !== null && opts.accessLog !== '-') checkWritable('--access-log', opts.accessLog);
  const metrics = new Metrics();
  // --chat-redis in a single process: the room is relayed through Redis (a cluster primary does
  // this itself and passes its workers a room).
  let relay: SingleProcessRelay | null = null;
  if (opts.chatRedis !== null && hooks.room === undefined) {
    const { redisRelay } = await import('../chat-relay/single-process.js');
    const r = redisRelay(opts.chatRedis, opts.maxOutput, log);
    const inner = hooks.statsProvider;
    hooks = { ...hooks, room: r.room, statsProvider: (local) => ({ ...(inner?.(local) ?? local), chatRelay: r.state() }) as MetricsSnapshot };
    relay = r;
  }
  const provider = hooks.statsProvider;
  const snapshot = provider === undefined ? () => metrics.snapshot() : () => provider(metrics.snapshot());
  const filesDir = path.resolve(opts.filesDir);
  await mkdir(filesDir, { recursive: true });
  const site = new StaticSite({
    root: path.resolve(opts.root),
    mounts: [{ prefix: '/files/', dir: filesDir }],
    cacheMaxFileBytes: opts.cacheMaxFile,
    cacheControl: { html: opts.cacheControlHtml, immutable: opts.cacheControlImmutable, other: opts.cacheControlOther },
  });
  const http = await startHttpServer({
    endpoint: { host: opts.host, port: opts.httpPort },
    handler: opts.statsPath === null ? site : withStatsRoute(site, opts.statsPath, snapshot),
    parserFactory: parserFactory(opts.parser),
    limits: { maxRequestLine: opts.maxRequestLine, maxHeadBytes: opts.maxHead, maxHeaders: opts.maxHeaders, maxBodyBytes: opts.maxBody },
    maxConnections: opts.maxConnections,
    headTimeoutMs: opts.headTimeoutMs,
    idleTimeoutMs: opts.idleTimeoutMs,
    sendTimeoutMs: opts.sendTimeoutMs,
    maxPipeline: opts.maxPipeline,
    maxOutputBytes: opts.maxOutput,
    accessLog: opts.accessLog,
    metrics,
    log,
  });
  const binary = await startBinaryServer({
    endpoint: opts.binarySocket !== null ? { path: opts.binarySocket } : { host: opts.host, port: opts.binaryPort },
    maxConnections: opts.maxConnections,
    maxFrame: opts.maxFrame,
    maxUpload: opts.maxUpload,
    maxTransfers: opts.maxTransfers,
    maxTransfersTotal: opts.maxTransfersTotal,
    transferTimeoutMs: opts.transferTimeoutMs,
    uploadToken: opts.uploadToken,
    helloTimeoutMs: opts.binaryHelloTimeoutMs,
    filesDir,
    adminToken: opts.adminToken,
    maxOutputBytes: opts.maxOutput,
    idleTimeoutMs: opts.binaryIdleTimeoutMs,
    metrics,
    snapshot,
    room: hooks.room?.(metrics),
    log,
  });
  return {
    http,
    binary,
    metrics,
    close: async () => {
      await Promise.all([http.close(), binary.close()]);
      await relay?.close();
      site.close();
      metrics.close();
    },
  };
}

/** The operator types announcements on the server's terminal: each line goes to every chat member. */
export function announceFromTerminal(binary: BinaryServer, log: (line: string) => void): void {
  if (!process.stdin.isTTY) return;
  log('muxd: type a line and press Enter to announce it to every MX/1 chat member');
  const rl = createInterface({ input: process.stdin, terminal: false });
  rl.on('line', (line) => {
    const text = line.trim();
    if (text === '') return;
    const recipients = binary.announce(text);
    log(`muxd: announced to ${recipients} member${recipients === 1 ? '' : 's'}`);
  });
}

/** A file flag whose file cannot be opened is a usage error, reported before anything listens. */
function checkWritable(flag: string, file: string): void {
  try {
    closeSync(openSync(file, 'a'));
  } catch (err) {
    throw new UsageError(`${flag}: cannot open ${file} for appending: ${(err as Error).message}`);
  }
}

// `muxd serve`: both faces in one process, one thread, one event loop. It starts whole or not at
// all, and stops gracefully: see start() and shutdown() below.
import { createInterface } from 'node:readline';
import path from 'node:path';
import { Metrics, type MetricsSnapshot } from '../loop/metrics.js';
import { unsentLimitProblem } from '../loop/unsent-limit.js';
import { ByteBudget } from '../loop/budget.js';
import type { Listener } from '../loop/listener.js';
import { drainListeners, type ShutdownReport } from '../loop/shutdown.js';
import { startHttpServer, type HttpServer } from '../http/server.js';
import { AccessLog } from '../http/access-log.js';
import { parserFactory } from '../http/parsers.js';
import { StaticSite } from '../http/static/site.js';
import { withStatsRoute } from '../http/stats-route.js';
import { startBinaryServer, type BinaryServer } from '../binary/server.js';
import type { Room } from '../chat/room.js';
import type { SingleProcessRelay } from '../chat/single-process.js';
import { tokenDigest } from '../binary/core.js';
import { startUdpServer, type UdpServer } from '../binary/udp/server.js';
import { MAX_SAY_BYTES } from '../wire/protocol.js';
import { MAX_DATAGRAM } from '../wire/udp.js';
import { describeListenError, endpoints, preflight } from './preflight.js';
import type { ServeOptions } from './serve-options.js';

export type { ShutdownReport } from '../loop/shutdown.js';

export interface Running {
  http: HttpServer;
  binary: BinaryServer;
  /** MX/1 over UDP; null with --udp-port off. */
  udp: UdpServer | null;
  metrics: Metrics;
  /** Every listener of this process. */
  listeners: Listener[];
  /**
   * Graceful stop: stop accepting on every listener at once, drain every connection, wait until
   * they have all closed or timeoutMs passed (default --shutdown-timeout), abort what is left,
   * remove socket and temp files. Prints "muxd stopping: N connections draining" and "muxd
   * stopped". Calling it again returns the same promise.
   */
  shutdown(timeoutMs?: number): Promise<ShutdownReport>;
  /** Hard stop: every connection destroyed now; socket and temp files removed. Idempotent. */
  close(): Promise<void>;
  /** SIGHUP: reopen the access log (after logrotate renamed it). */
  reopenLogs(): void;
}

/** `muxd serve` could not start; each problem is one line naming its flag. Nothing is left listening. */
export class StartupError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** What a process running serve() inside something bigger (a cluster worker) plugs in. */
export interface ServeHooks {
  /** What STATS and the stats route answer, given this process's own snapshot (default: that). */
  statsProvider?: (local: MetricsSnapshot) => MetricsSnapshot;
  /** The MX/1 chat room (default: a LocalRoom of this process); e.g. one relayed to other processes. */
  room?: (metrics: Metrics) => Room;
  /**
   * The listening sockets belong to a cluster primary (shared by every worker): no probing
   * before listening, and stopping never removes a Unix socket file (the primary's handle does).
   */
  sharedListeners?: boolean;
}

export async function serve(opts: ServeOptions, log: (line: string) => void = (l) => process.stdout.write(l + '\n'), hooks: ServeHooks = {}): Promise<Running> {
  // All or nothing: every directory and every listener is checked before anything starts.
  const problems = await preflight(opts, { probe: hooks.sharedListeners !== true });
  if (problems.length > 0) throw new StartupError(problems);

  const metrics = new Metrics();
  // --chat-redis in a single process: the room is relayed through Redis (a cluster primary does
  // this itself and passes its workers a room).
  let relay: SingleProcessRelay | null = null;
  if (opts.chatRedis !== null && hooks.room === undefined) {
    const { redisRelay } = await import('../chat/single-process.js');
    const r = redisRelay(opts.chatRedis, opts.maxOutput, log);
    const inner = hooks.statsProvider;
    hooks = { ...hooks, room: r.room, statsProvider: (local) => ({ ...(inner?.(local) ?? local), chatRelay: r.state() }) as MetricsSnapshot };
    relay = r;
  }
  const provider = hooks.statsProvider;
  const snapshot = provider === undefined ? () => metrics.snapshot() : () => provider(metrics.snapshot());
  const unsentProblem = opts.tcpNotsentLowat > 0 ? unsentLimitProblem() : null;
  if (unsentProblem !== null) process.stderr.write(`muxd: --tcp-notsent-lowat not applied: ${unsentProblem}; each stalled reader may hold up to the kernel's send buffer\n`);
  // One server-wide count of unsent output bytes (--max-output-total), shared by both faces.
  const outputBudget = new ByteBudget(opts.maxOutputTotal);
  const filesDir = path.resolve(opts.filesDir);
  const site = new StaticSite({
    root: path.resolve(opts.root),
    // Uploads are other people's files: served as downloads that never run on our origin.
    mounts: [{ prefix: '/files/', dir: filesDir, download: true }],
    cacheMaxFileBytes: opts.cacheMaxFile,
    cacheControl: { html: opts.cacheControlHtml, immutable: opts.cacheControlImmutable, other: opts.cacheControlOther },
  });
  const named = endpoints(opts);
  // Ready lines are held until every face is up: a half-started server never looks ready.
  let held: string[] | null = [];
  const startLog = (line: string): void => {
    if (held !== null) held.push(line);
    else log(line);
  };
  const [httpStart, binaryStart] = await Promise.allSettled([
    startHttpServer({
      endpoint: named.http.endpoint,
      handler: opts.statsPath === null ? site : withStatsRoute(site, opts.statsPath, snapshot),
      parserFactory: parserFactory(opts.parser),
      limits: { maxRequestLine: opts.maxRequestLine, maxHeadBytes: opts.maxHead, maxHeaders: opts.maxHeaders, maxBodyBytes: opts.maxBody },
      maxConnections: opts.maxConnections,
      maxConnectionsPerIp: opts.maxConnectionsPerIp,
      tcpNotsentLowat: opts.tcpNotsentLowat,
      backlog: opts.listenBacklog,
      socketMode: opts.socketMode,
      headTimeoutMs: opts.headTimeoutMs,
      idleTimeoutMs: opts.idleTimeoutMs,
      sendTimeoutMs: opts.sendTimeoutMs,
      maxPipeline: opts.maxPipeline,
      maxOutputBytes: opts.maxOutput,
      outputBudget,
      accessLog: opts.accessLog,
      metrics,
      log: startLog,
    }),
    startBinaryServer({
      endpoint: named.binary.endpoint,
      maxConnections: opts.maxConnections,
      maxConnectionsPerIp: opts.maxConnectionsPerIp,
      tcpNotsentLowat: opts.tcpNotsentLowat,
      backlog: opts.listenBacklog,
      socketMode: opts.socketMode,
      maxFrame: opts.maxFrame,
      maxUpload: opts.maxUpload,
      maxTransfers: opts.maxTransfers,
      maxTransfersTotal: opts.maxTransfersTotal,
      transferTimeoutMs: opts.transferTimeoutMs,
      uploadToken: opts.uploadToken,
      helloTimeoutMs: opts.binaryHelloTimeoutMs,
      outputBudget,
      filesDir,
      adminToken: opts.adminToken,
      maxOutputBytes: opts.maxOutput,
      idleTimeoutMs: opts.binaryIdleTimeoutMs,
      metrics,
      snapshot,
      room: hooks.room?.(metrics),
      log: startLog,
    }),
  ]);
  if (httpStart.status === 'rejected' || binaryStart.status === 'rejected') {
    // Something bound between the check and now: close what did start, report what did not.
    const failed: string[] = [];
    const started: Promise<void>[] = [];
    if (httpStart.status === 'rejected') failed.push(describeListenError(named.http, httpStart.reason));
    else started.push(httpStart.value.close());
    if (binaryStart.status === 'rejected') failed.push(describeListenError(named.binary, binaryStart.reason));
    else started.push(binaryStart.value.close());
    await Promise.all(started);
    site.close();
    metrics.close();
    throw new StartupError(failed);
  }
  const http = httpStart.value;
  const binary = binaryStart.value;
  // MX/1 over UDP last: its members join the room the TCP face made.
  let udp: UdpServer | null = null;
  if (opts.udpPort !== null) {
    const udpLimits = { maxFrameBytes: opts.maxFrame, maxUploadBytes: opts.maxUpload, maxSayBytes: MAX_SAY_BYTES, maxOutputBytes: opts.maxOutput, maxDatagramBytes: MAX_DATAGRAM };
    try {
      udp = await startUdpServer({
        host: opts.host,
        // "Default: the MX/1 port number", also when that number was chosen by the kernel.
        port: opts.udpPort === 0 && opts.binaryPort === 0 && binary.listener.port !== 0 ? binary.listener.port : opts.udpPort,
        room: binary.room,
        metrics,
        adminDigest: tokenDigest(opts.adminToken),
        stats: () => Buffer.from(JSON.stringify({ chatUsers: binary.room.size, ...snapshot(), limits: udpLimits }), 'utf8'),
        memberTimeoutMs: opts.udpMemberTimeoutMs,
        maxMembers: opts.maxConnections,
        log: startLog,
      });
    } catch (err) {
      await Promise.all([http.close(), binary.close()]);
      site.close();
      metrics.close();
      throw new StartupError([describeListenError({ flag: '--udp-port', endpoint: { host: opts.host, port: opts.udpPort } }, err)]);
    }
  }
  const listeners = [http.listener, binary.listener];
  const ready = held;
  held = null;
  for (const line of ready) log(line);

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      // First, synchronously: an exit that cannot wait still leaves no socket file behind.
      if (hooks.sharedListeners !== true) for (const l of listeners) l.removeSocketFile();
      await Promise.all([http.close(), binary.close(), udp?.close()]);
      site.close();
      metrics.close();
      await binary.store.removeStaleTemps().catch(() => 0);
      await relay?.close();
    })());

  let stopping: Promise<ShutdownReport> | null = null;
  const shutdown = (timeoutMs = opts.shutdownTimeoutMs): Promise<ShutdownReport> =>
    (stopping ??= (async () => {
      // UDP has nothing to drain but its members: they hear the server is going down.
      udp?.drain();
      const report = await drainListeners(listeners, timeoutMs, log);
      if (report.cut > 0) {
        log(`muxd: shutdown timeout (${formatMs(timeoutMs)}) passed: cut ${report.cut} connection${report.cut === 1 ? '' : 's'} with work in flight`);
      }
      await close();
      log('muxd stopped');
      return report;
    })());

  return { http, binary, udp, metrics, listeners, shutdown, close, reopenLogs: () => AccessLog.reopenAll() };
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

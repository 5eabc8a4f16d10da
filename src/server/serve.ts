// `muxd serve`: both faces in one process, one thread, one event loop, assembled from the
// listener table (listeners.ts). It starts whole or not at all, and stops gracefully: see
// startAll() and shutdown() below. The CLI and a cluster worker both call serve().
import path from 'node:path';
import { Metrics, type MetricsSnapshot } from '../loop/metrics.js';
import { unsentLimitProblem } from '../loop/unsent-limit.js';
import { ByteBudget, SlotBudget } from '../loop/budget.js';
import type { Listener } from '../loop/listener.js';
import { drainListeners, type ShutdownReport } from '../loop/shutdown.js';
import { AccessLog } from '../http/access-log.js';
import { StaticSite } from '../http/static/site.js';
import { withStatsRoute } from '../http/stats-route.js';
import type { Room } from '../chat/room.js';
import type { SingleProcessRelay } from '../chat/single-process.js';
import { activeListeners, type ListenerRow, type NamedEndpoint, type ServerContext, type Started } from './listeners.js';
import type { ReadyListener } from './ready.js';
import { describeListenError, preflight } from './preflight.js';
import type { ServeOptions } from './options.js';
import { loadTlsMaterial, newTicketKeys, TlsState, validityWarning, type TlsMaterial } from './tls.js';

export type { ShutdownReport } from '../loop/shutdown.js';

export interface RunningListener extends Started {
  row: ListenerRow;
  ready: ReadyListener;
}

export interface Running {
  metrics: Metrics;
  /** Every listener of this process, in table order. */
  started: RunningListener[];
  /** The stream listeners among them (what a drain waits for). */
  listeners: Listener[];
  /** What each listener announced, in table order. */
  ready: ReadyListener[];
  /** Pushes an ANNOUNCEMENT to every chat member; returns the number of recipients. */
  announce(text: string): number;
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
  /**
   * SIGHUP: re-read --tls-cert and --tls-key for new handshakes (open connections keep theirs).
   * A pair that fails keeps the one in force. Returns the one line to log; null without TLS.
   */
  reloadTls(): string | null;
  /** A cluster worker: the primary's pair and ticket keys for new handshakes. */
  setTls(material: TlsMaterial, ticketKeys: Buffer): void;
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
  /**
   * false: the ready lines are not printed, only returned in Running.ready (a cluster primary
   * prints one set for all of its workers). Default true.
   */
  printReady?: boolean;
  /**
   * The TLS pair and session ticket keys (a cluster worker: the primary's, so a session resumes
   * on any worker). Default: read from --tls-cert/--tls-key, with ticket keys of this process.
   */
  tls?: { material: TlsMaterial; ticketKeys: Buffer };
}

interface StageResult {
  up: { started: RunningListener; release(): void }[];
  failed: string[];
}

/**
 * Starts the rows of one stage together. Each row's lines wait in its own buffer until
 * release(), so a half-started server never looks ready and the ready lines print in table order.
 */
async function startStage(rows: { row: ListenerRow; at: NamedEndpoint }[], ctx: ServerContext, log: (line: string) => void): Promise<StageResult> {
  const results = await Promise.allSettled(
    rows.map(async ({ row, at }) => {
      let held: string[] | null = [];
      const started = await row.start(at, ctx, (line) => {
        if (held !== null) held.push(line);
        else log(line);
      });
      const release = (): void => {
        const lines = held ?? [];
        held = null;
        for (const line of lines) log(line);
      };
      return { started: { ...started, row, ready: { name: row.name, display: started.display } }, release };
    }),
  );
  const up: StageResult['up'] = [];
  const failed: string[] = [];
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') up.push(r.value);
    else failed.push(describeListenError(rows[i]!.at, r.reason));
  });
  return { up, failed };
}

export async function serve(opts: ServeOptions, log: (line: string) => void = (l) => process.stdout.write(l + '\n'), hooks: ServeHooks = {}): Promise<Running> {
  // All or nothing: every directory and every listener is checked before anything starts.
  const problems = await preflight(opts, { probe: hooks.sharedListeners !== true, tlsFiles: hooks.tls === undefined });
  if (problems.length > 0) throw new StartupError(problems);

  const metrics = new Metrics();
  // --chat-redis in a single process: the room is relayed through Redis (a cluster primary does
  // this itself and passes its workers a room).
  let relay: SingleProcessRelay | null = null;
  if (opts.chat.redis !== null && hooks.room === undefined) {
    const { redisRelay } = await import('../chat/single-process.js');
    const r = redisRelay(opts.chat.redis, opts.limits.maxOutput, log);
    const inner = hooks.statsProvider;
    hooks = { ...hooks, room: r.room, statsProvider: (local) => ({ ...(inner?.(local) ?? local), chatRelay: r.state() }) as MetricsSnapshot };
    relay = r;
  }
  const provider = hooks.statsProvider;
  const snapshot = provider === undefined ? () => metrics.snapshot() : () => provider(metrics.snapshot());
  const unsentProblem = opts.listen.tcpNotsentLowat > 0 ? unsentLimitProblem() : null;
  if (unsentProblem !== null) process.stderr.write(`muxd: --tcp-notsent-lowat not applied: ${unsentProblem}; each stalled reader may hold up to the kernel's send buffer\n`);
  const filesDir = path.resolve(opts.files.dir);
  const site = new StaticSite({
    root: path.resolve(opts.http.root),
    // Uploads are other people's files: served as downloads that never run on our origin.
    mounts: [{ prefix: '/files/', dir: filesDir, download: true }],
    cacheMaxFileBytes: opts.http.cacheMaxFile,
    cacheControl: { html: opts.http.cacheControlHtml, immutable: opts.http.cacheControlImmutable, other: opts.http.cacheControlOther },
  });
  let tls: TlsState | null = null;
  const { cert: certFile, key: keyFile } = opts.tls;
  if (certFile !== null && keyFile !== null) {
    if (hooks.tls !== undefined) tls = new TlsState(hooks.tls.material, hooks.tls.ticketKeys, opts.tls.minVersion);
    else {
      const loaded = loadTlsMaterial(certFile, keyFile);
      // Preflight read the same files a moment ago; a change in between is reported the same way.
      if ('problems' in loaded) throw new StartupError(loaded.problems);
      const warning = validityWarning(certFile, loaded.cert, Date.now());
      if (warning !== null) process.stderr.write(warning + '\n');
      tls = new TlsState(loaded.material, newTicketKeys(), opts.tls.minVersion);
    }
  }
  const ctx: ServerContext = {
    opts,
    metrics,
    handler: opts.http.statsPath === null ? site : withStatsRoute(site, opts.http.statsPath, snapshot),
    outputBudget: new ByteBudget(opts.limits.maxOutputTotal),
    transfers: new SlotBudget(opts.files.maxTransfersTotal),
    filesDir,
    snapshot,
    room: hooks.room?.(metrics),
    binary: null,
    tls,
    httpsPort: opts.tls.httpsPort,
    printReady: hooks.printReady !== false,
  };

  // Rows that join another's state start once the first stage is up; a failure anywhere closes
  // whatever did start and reports every listener that could not.
  const active = activeListeners(opts);
  const up: StageResult['up'] = [];
  const failed: string[] = [];
  for (const stage of ['first', 'joins'] as const) {
    const result = await startStage(
      active.filter((l) => l.row.stage === stage),
      ctx,
      log,
    );
    up.push(...result.up);
    failed.push(...result.failed);
    if (failed.length > 0) break;
  }
  if (failed.length > 0) {
    await Promise.all(up.map((u) => u.started.close()));
    site.close();
    metrics.close();
    throw new StartupError(failed);
  }
  const order = (u: { started: RunningListener }): number => active.findIndex((l) => l.row === u.started.row);
  up.sort((a, b) => order(a) - order(b));
  for (const u of up) u.release();
  const started = up.map((u) => u.started);
  const listeners = started.flatMap((s) => (s.listener === null ? [] : [s.listener]));
  const binary = ctx.binary;

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      // First, synchronously: an exit that cannot wait still leaves no socket file behind.
      if (hooks.sharedListeners !== true) for (const l of listeners) l.removeSocketFile();
      await Promise.all(started.map((s) => s.close()));
      site.close();
      metrics.close();
      await binary?.store.removeStaleTemps().catch(() => 0);
      await relay?.close();
    })());

  let stopping: Promise<ShutdownReport> | null = null;
  const shutdown = (timeoutMs = opts.limits.shutdownTimeoutMs): Promise<ShutdownReport> =>
    (stopping ??= (async () => {
      // UDP has nothing to drain but its members: they hear the server is going down.
      for (const s of started) s.drain();
      const report = await drainListeners(listeners, timeoutMs, log);
      if (report.cut > 0) {
        log(`muxd: shutdown timeout (${formatMs(timeoutMs)}) passed: cut ${report.cut} connection${report.cut === 1 ? '' : 's'} with work in flight`);
      }
      await close();
      log('muxd stopped');
      return report;
    })());

  return {
    metrics,
    started,
    listeners,
    ready: started.map((s) => s.ready),
    announce: (text) => binary?.announce(text) ?? 0,
    shutdown,
    close,
    reopenLogs: () => AccessLog.reopenAll(),
    reloadTls: () => {
      if (tls === null || certFile === null || keyFile === null) return null;
      const loaded = loadTlsMaterial(certFile, keyFile);
      if ('problems' in loaded) return `muxd: TLS reload failed, the certificate in force stays: ${loaded.problems.join('; ')}`;
      try {
        tls.update(loaded.material);
      } catch (err) {
        return `muxd: TLS reload failed, the certificate in force stays: --tls-cert ${certFile}: ${(err as Error).message}`;
      }
      return `muxd: TLS certificate reloaded from ${certFile} (valid from ${loaded.cert.validFrom} to ${loaded.cert.validTo}); new handshakes use it`;
    },
    setTls: (material, ticketKeys) => tls?.update(material, ticketKeys),
  };
}

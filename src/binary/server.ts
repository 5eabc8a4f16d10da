// The MX/1 server: a listener (src/loop) whose connections each get a StreamConnection (the
// stream driver around an MxCore); one chat room, one file store and one transfer budget
// shared by all of them.
import { ByteBudget, SlotBudget } from '../loop/budget.js';
import type { Endpoint, Listener } from '../loop/listener.js';
import { listen } from '../loop/listener.js';
import type { ListenTls } from '../loop/tls.js';
import type { Metrics, MetricsSnapshot } from '../loop/metrics.js';
import type { BytePipe } from '../loop/pipe.js';
import { FileStore, type StoreIo } from '../store/files.js';
import { encodeFrame } from '../wire/frame.js';
import { encodeError } from '../wire/payloads.js';
import { ErrorCode, MAX_SAY_BYTES, Type } from '../wire/protocol.js';
import { tokenDigest } from './core.js';
import { LocalRoom, type Room } from '../chat/room.js';
import { statsSource } from './stats.js';
import { downloadPool } from './file-effects.js';
import { StreamConnection, type StreamContext } from './stream.js';

export interface BinaryServerOptions {
  endpoint: Endpoint;
  maxConnections: number;
  /** Open connections per client address; 0 or absent = no limit. */
  maxConnectionsPerIp?: number;
  /** TCP_NOTSENT_LOWAT for accepted TCP sockets; 0 or absent = the kernel's default. */
  tcpNotsentLowat?: number;
  /** The accept queue's length (see listener.ts); default Node's 511. */
  backlog?: number;
  /** Permission bits of a Unix socket file. */
  socketMode?: number;
  maxFrame: number;
  maxUpload: number;
  filesDir: string;
  adminToken: string | null;
  /** A client's buffered output above this is disconnected (chat) / paused (downloads). */
  maxOutputBytes: number;
  /** Concurrent uploads + downloads per connection (default 16); beyond it PUT/GET get ERROR 51. */
  maxTransfers?: number;
  /** Concurrent uploads + downloads of the whole server (default 256); beyond it ERROR 51. */
  maxTransfersTotal?: number;
  /** The server-wide transfer budget, when the caller shares one (else one is made from maxTransfersTotal). */
  transfers?: SlotBudget;
  /** Unsent output of the whole server (--max-output-total), shared with HTTP: download chunks shrink as it fills. */
  outputBudget?: ByteBudget;
  /** A transfer without progress for this long is aborted with ERROR 27 (default 30 s). */
  transferTimeoutMs?: number;
  /** PUT needs AUTH with this token; null/unset = PUT only from loopback and Unix-socket peers. */
  uploadToken?: string | null;
  /** A new connection must send a whole first frame within this (default 10 s). */
  helloTimeoutMs?: number;
  idleTimeoutMs: number;
  metrics: Metrics;
  /** What STATS reports (default: metrics.snapshot(); a cluster worker reports the whole server). */
  snapshot?: () => MetricsSnapshot;
  log?: (line: string) => void;
  /** false: the listener prints no ready line (see ListenOptions.printReady). */
  printReady?: boolean;
  /** The chat room; default a LocalRoom of this process. */
  room?: Room;
  /** Test seam: how the store opens temp files (inject ENOSPC). */
  storeIo?: StoreIo;
  /** Test hook: a download is waiting for 'drain' because the pipe holds its high-water mark. */
  onDownloadPaused?: (pipe: BytePipe) => void;
  /** MX/1 over TLS (src/loop/tls.ts): the listener is then named "binary-tls". */
  tls?: ListenTls;
}

export interface BinaryServer {
  listener: Listener;
  room: Room;
  store: FileStore;
  transfers: SlotBudget;
  /** Pushes an ANNOUNCEMENT to every joined user; returns the number of recipients. */
  announce(text: string): number;
  /**
   * Runs MX/1 on a pipe another listener accepted (a WebSocket upgraded on the HTTP port), with
   * this server's room, store, budgets, hello and idle timeouts and --max-output: its peer is an
   * ordinary connection and chat member. The caller's listener sweeps and drains the result.
   */
  adopt(pipe: BytePipe): StreamConnection;
  close(): Promise<void>;
}

export const DEFAULT_MAX_TRANSFERS = 16;
export const DEFAULT_MAX_TRANSFERS_TOTAL = 256;
export const DEFAULT_TRANSFER_TIMEOUT_MS = 30_000;
export const DEFAULT_HELLO_TIMEOUT_MS = 10_000;

export async function startBinaryServer(opts: BinaryServerOptions): Promise<BinaryServer> {
  const log = opts.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const { metrics } = opts;
  const store = await FileStore.open(opts.filesDir, opts.maxUpload, opts.storeIo);
  const room =
    opts.room ??
    new LocalRoom(opts.maxOutputBytes, (member) => {
      metrics.count('binary.slowConsumersDropped');
      log(`binary: dropped ${member.name}: output backlog over ${opts.maxOutputBytes} bytes`);
    });
  const transfers = opts.transfers ?? new SlotBudget(opts.maxTransfersTotal ?? DEFAULT_MAX_TRANSFERS_TOTAL);
  metrics.gauge('chatUsers', () => room.size);
  metrics.gauge('binaryTransfers', () => transfers.used);
  const snapshot = opts.snapshot ?? (() => metrics.snapshot());

  const limits = { maxFrameBytes: opts.maxFrame, maxUploadBytes: opts.maxUpload, maxSayBytes: MAX_SAY_BYTES, maxOutputBytes: opts.maxOutputBytes };
  const ctx: StreamContext = {
    room,
    store,
    metrics,
    maxUpload: opts.maxUpload,
    maxFrame: opts.maxFrame,
    maxOutputBytes: opts.maxOutputBytes,
    maxTransfers: opts.maxTransfers ?? DEFAULT_MAX_TRANSFERS,
    transfers,
    pool: downloadPool(opts.outputBudget ?? new ByteBudget(256 * 1024 * 1024)),
    transferTimeoutMs: opts.transferTimeoutMs ?? DEFAULT_TRANSFER_TIMEOUT_MS,
    idleTimeoutMs: opts.idleTimeoutMs,
    helloTimeoutMs: opts.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS,
    adminDigest: tokenDigest(opts.adminToken),
    uploadDigest: tokenDigest(opts.uploadToken ?? null),
    // Limits are included so a client can size its frames without knowing the server's flags.
    // A whole-server snapshot carries its own chatUsers, which wins over this process's count.
    stats: statsSource(() => ({ chatUsers: room.size, ...snapshot(), limits })),
    log,
  };
  const paused = opts.onDownloadPaused;

  // Past a connection cap: ERROR 51 (retryable) naming the limit, then close.
  const refusal = (text: string): Buffer => Buffer.concat(encodeFrame(Type.ERROR, 0, encodeError(ErrorCode.BUSY, text)));
  const refuseTotal = refusal(`busy: too many connections (limit ${opts.maxConnections})`);
  const refusePerIp = refusal(`busy: too many connections from your address (limit ${opts.maxConnectionsPerIp ?? 0})`);
  const listener = await listen({
    name: opts.tls === undefined ? 'binary' : 'binary-tls',
    endpoint: opts.endpoint,
    tls: opts.tls,
    maxConnections: opts.maxConnections,
    metrics,
    log: opts.log,
    printReady: opts.printReady,
    // A client may half-close after its last request and still read every reply (StreamConnection.onEnd).
    allowHalfOpen: true,
    // The test hook names the socket: each connection then gets its own context.
    onConnection: (pipe) => new StreamConnection(pipe, paused === undefined ? ctx : { ...ctx, onDownloadPaused: () => paused(pipe) }),
    maxConnectionsPerIp: opts.maxConnectionsPerIp,
    tcpNotsentLowat: opts.tcpNotsentLowat,
    backlog: opts.backlog,
    socketMode: opts.socketMode,
    onRefuse: (socket, { reason }) => socket.end(reason === 'max-connections-per-ip' ? refusePerIp : refuseTotal),
  });

  return {
    listener,
    room,
    store,
    transfers,
    announce: (text) => room.announce(text),
    adopt: (pipe) => new StreamConnection(pipe, ctx),
    close: () => listener.close(),
  };
}

// The MX/1 server: a listener (src/loop) whose connections each get a Session; one chat room and
// one file store shared by all of them.
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Endpoint, Listener } from '../loop/listener.js';
import { listen } from '../loop/listener.js';
import type { Metrics, MetricsSnapshot } from '../loop/metrics.js';
import { FileStore } from '../store/files.js';
import { encodeFrame } from '../wire/frame.js';
import { encodeError } from '../wire/payloads.js';
import { ErrorCode, MAX_SAY_BYTES, Type } from '../wire/protocol.js';
import { ChatRoom } from './chat.js';
import { Session } from './session.js';

export interface BinaryServerOptions {
  endpoint: Endpoint;
  maxConnections: number;
  maxFrame: number;
  maxUpload: number;
  filesDir: string;
  adminToken: string | null;
  /** A client's buffered output above this is disconnected (chat) / paused (downloads). */
  maxOutputBytes: number;
  /** Concurrent uploads + downloads per connection (default 16); beyond it PUT/GET get ERROR 50. */
  maxTransfers?: number;
  idleTimeoutMs: number;
  metrics: Metrics;
  /** What STATS reports (default: metrics.snapshot(); a cluster worker reports the whole server). */
  snapshot?: () => MetricsSnapshot;
  log?: (line: string) => void;
  /** Test hook: a download is waiting for 'drain' because the socket's buffer is over half the limit. */
  onDownloadPaused?: (socket: Socket) => void;
}

export interface BinaryServer {
  listener: Listener;
  /** Pushes an ANNOUNCEMENT to every joined user; returns the number of recipients. */
  announce(text: string): number;
  close(): Promise<void>;
}

export const DEFAULT_MAX_TRANSFERS = 16;

export async function startBinaryServer(opts: BinaryServerOptions): Promise<BinaryServer> {
  const log = opts.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const { metrics } = opts;
  const store = await FileStore.open(opts.filesDir, opts.maxUpload);
  const room = new ChatRoom(opts.maxOutputBytes, (member) => {
    metrics.count('binary.slowConsumersDropped');
    log(`binary: dropped ${member.name}: output backlog over ${opts.maxOutputBytes} bytes`);
  });
  metrics.gauge('chatUsers', () => room.size);
  const snapshot = opts.snapshot ?? (() => metrics.snapshot());
  const adminDigest = opts.adminToken === null || opts.adminToken === '' ? null : createHash('sha256').update(opts.adminToken, 'utf8').digest();

  const limits = { maxFrameBytes: opts.maxFrame, maxUploadBytes: opts.maxUpload, maxSayBytes: MAX_SAY_BYTES, maxOutputBytes: opts.maxOutputBytes };
  const ctx = {
    room,
    store,
    metrics,
    maxFrame: opts.maxFrame,
    maxOutputBytes: opts.maxOutputBytes,
    maxTransfers: opts.maxTransfers ?? DEFAULT_MAX_TRANSFERS,
    idleTimeoutMs: opts.idleTimeoutMs,
    adminDigest,
    // Limits are included so a client can size its frames without knowing the server's flags.
    // A whole-server snapshot carries its own chatUsers, which wins over this process's count.
    stats: (): Buffer => Buffer.from(JSON.stringify({ chatUsers: room.size, ...snapshot(), limits }), 'utf8'),
    log,
    onDownloadPaused: opts.onDownloadPaused,
  };

  const refusal = Buffer.concat(encodeFrame(Type.ERROR, 0, encodeError(ErrorCode.INTERNAL, 'too many connections')));
  const listener = await listen({
    name: 'binary',
    endpoint: opts.endpoint,
    maxConnections: opts.maxConnections,
    metrics,
    log: opts.log,
    // A client may half-close after its last request and still read every reply (Session.onEnd).
    allowHalfOpen: true,
    onConnection: (socket) => new Session(socket, ctx),
    onRefuse: (socket) => socket.end(refusal),
  });

  return {
    listener,
    announce: (text) => room.announce(text),
    close: () => listener.close(),
  };
}

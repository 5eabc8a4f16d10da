// The HTTP face: a listener whose connections speak HTTP/1.1 to a Handler.
import type { Server, Socket } from 'node:net';
import { listen, type Endpoint, type Handoff, type Listener } from '../loop/listener.js';
import type { ListenTls } from '../loop/tls.js';
import type { Metrics } from '../loop/metrics.js';
import { AccessLog } from './access-log.js';
import { HttpConnection } from './connection.js';
import { httpDate } from '../loop/clock.js';
import { errorReply } from './status.js';
import type { Handler, ParserFactory, ParserLimits, UpgradeProtocol } from './types.js';
import { ByteBudget } from '../loop/budget.js';
import { ChunkPool } from './chunk-pool.js';

export interface HttpServerOptions {
  endpoint: Endpoint;
  handler: Handler;
  parserFactory: ParserFactory;
  limits: ParserLimits;
  maxConnections: number;
  /** Open connections per client address; 0 or absent = no limit. */
  maxConnectionsPerIp?: number;
  /** TCP_NOTSENT_LOWAT for accepted TCP sockets; 0 or absent = the kernel's default. */
  tcpNotsentLowat?: number;
  /** The accept queue's length (see listener.ts); default Node's 511. */
  backlog?: number;
  /** Permission bits of a Unix socket file. */
  socketMode?: number;
  headTimeoutMs: number;
  idleTimeoutMs: number;
  sendTimeoutMs: number;
  maxPipeline: number;
  maxOutputBytes: number;
  /**
   * Unsent output of the whole server (--max-output-total): file read chunks shrink as it
   * fills. serve.ts shares one with the MX/1 face; default: a budget of 256 MiB of its own.
   */
  outputBudget?: ByteBudget;
  /** A file path, "-" for stdout, or null for no access log. */
  accessLog: string | null;
  metrics: Metrics;
  log?: (line: string) => void;
  /** false: the listener prints no ready line (see ListenOptions.printReady). */
  printReady?: boolean;
  /**
   * Protocols a handler may switch a connection to (an answer { upgrade: name, reply: 101 }),
   * by name. HTTP knows none itself; src/server registers them. An upgrade to a name not here
   * is answered 500 and the connection closed. Default: none.
   */
  upgrades?: ReadonlyMap<string, UpgradeProtocol>;
  /** Builds the listening server (see ListenOptions.createServer). */
  createServer?: (opts: { allowHalfOpen: boolean }) => Server;
  /** HTTPS: TLS on every connection (src/loop/tls.ts); the listener is then named "https". */
  tls?: ListenTls;
}

export interface HttpServer {
  listener: Listener;
  close(): Promise<void>;
}

export async function startHttpServer(opts: HttpServerOptions): Promise<HttpServer> {
  const accessLog = opts.accessLog === null ? null : new AccessLog(opts.accessLog);
  const { metrics } = opts;
  const pool = new ChunkPool(opts.outputBudget ?? new ByteBudget(256 * 1024 * 1024));
  metrics.counters['http.requests'] = 0;
  const onRequest = (): void => {
    metrics.counters['http.requests']!++;
  };
  const scheme = opts.tls === undefined ? 'http' : 'https';
  const listener = await listen({
    name: scheme,
    display: (address) => ('path' in opts.endpoint ? address : `${scheme}://${address}`),
    endpoint: opts.endpoint,
    maxConnections: opts.maxConnections,
    metrics,
    allowHalfOpen: true,
    log: opts.log,
    printReady: opts.printReady,
    createServer: opts.createServer,
    tls: opts.tls,
    onConnection: (pipe, handoff: Handoff, acceptedAt: number) =>
      new HttpConnection(pipe, {
        handler: opts.handler,
        parserFactory: opts.parserFactory,
        limits: opts.limits,
        headTimeoutMs: opts.headTimeoutMs,
        idleTimeoutMs: opts.idleTimeoutMs,
        sendTimeoutMs: opts.sendTimeoutMs,
        maxPipeline: opts.maxPipeline,
        maxOutputBytes: opts.maxOutputBytes,
        accessLog,
        pool,
        onRequest,
        upgrades: opts.upgrades,
        onUpgrade: handoff,
        acceptedAt,
      }),
    maxConnectionsPerIp: opts.maxConnectionsPerIp,
    tcpNotsentLowat: opts.tcpNotsentLowat,
    backlog: opts.backlog,
    socketMode: opts.socketMode,
    onRefuse: (socket: Socket) => {
      // At a connection cap (in total or for this address): a 503 that tells the client to come back, then close.
      const reply = errorReply(503, { close: true, extraHeaders: 'Retry-After: 1\r\n' });
      socket.end(reply.head + 'Date: ' + httpDate() + '\r\nConnection: close\r\n\r\n' + (reply.body[0] as Buffer).toString('latin1'), 'latin1');
    },
  });
  return {
    listener,
    close: async () => {
      await listener.close();
      await accessLog?.close();
    },
  };
}

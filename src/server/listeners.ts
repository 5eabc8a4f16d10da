// The listener table: every listener `muxd serve` can run, one row per face and transport. A row
// says when it is on and where it listens (from the options) and how its server starts; serve()
// starts the rows that are on, all or none, and drains them together. A new transport (TLS, a
// WebSocket path) is one more row and the factory its start uses.
import type { Endpoint, Listener } from '../loop/listener.js';
import type { ByteBudget, SlotBudget } from '../loop/budget.js';
import type { Metrics, MetricsSnapshot } from '../loop/metrics.js';
import { startHttpServer } from '../http/server.js';
import type { Handler } from '../http/types.js';
import { parserFactory } from '../http/parsers.js';
import { startBinaryServer, type BinaryServer } from '../binary/server.js';
import type { Room } from '../chat/room.js';
import { tokenDigest } from '../binary/core.js';
import { startUdpServer } from '../binary/udp/server.js';
import { statsSource } from '../binary/stats.js';
import { MAX_SAY_BYTES } from '../wire/protocol.js';
import { MAX_DATAGRAM } from '../wire/udp.js';
import type { ServeOptions } from './options.js';
import { WS_UPGRADE, withWsRoute, wsUpgrade } from './ws-route.js';
import type { ListenTls } from '../loop/tls.js';
import { httpDate } from '../loop/clock.js';
import { plainHttpOnHttpsPort, withHsts, withHttpsRedirect } from '../http/https.js';
import { LocalRoom } from '../chat/room.js';
import type { TlsState } from './tls.js';

export type Face = 'http' | 'binary';
export type Transport = 'tcp' | 'unix' | 'udp' | 'tls';

/** A listener as the operator named it: the flag and the endpoint it gives. */
export interface NamedEndpoint {
  flag: string;
  endpoint: Endpoint;
}

/** What every listener of one server shares; serve() builds it once. */
export interface ServerContext {
  opts: ServeOptions;
  metrics: Metrics;
  /** The site, with the stats route when there is one. */
  handler: Handler;
  /** One server-wide count of unsent output bytes (--max-output-total), shared by both faces. */
  outputBudget: ByteBudget;
  /** One server-wide count of transfers (--max-transfers-total), shared by every MX/1 listener. */
  transfers: SlotBudget;
  filesDir: string;
  snapshot: () => MetricsSnapshot;
  /** The chat room from the hooks (a cluster worker's relayed room); undefined until the first MX/1 row makes one for every MX/1 listener. */
  room: Room | undefined;
  /** The MX/1 face, once its first listener is up: the room and store the others join. */
  binary: BinaryServer | null;
  /** The context new TLS handshakes use (null = no --tls-cert/--tls-key: no TLS listener). */
  tls: TlsState | null;
  /** The HTTPS listener's port once it listens (the --https-redirect target). */
  httpsPort: number;
  /** false: listeners print no ready line (serve()'s caller prints them, from Started.display). */
  printReady: boolean;
}

/** A listener that is up, as its row's start reports it. */
export interface Started {
  /** A stream listener, drained at shutdown; null for a datagram socket. */
  listener: Listener | null;
  port: number;
  /** Its address as its ready line shows it (http://127.0.0.1:8080, a socket path, ...). */
  display: string;
  /** Graceful stop of what drainListeners() cannot drain (UDP members hear the server is going). */
  drain(): void;
  close(): Promise<void>;
}

export interface ListenerRow {
  face: Face;
  transport: Transport;
  /** The name its ready line and metrics go by. */
  name: string;
  /**
   * 'first' rows start together; 'joins' rows start once those are up, because they join state
   * a first row made (UDP members join the room of the MX/1 stream face).
   */
  stage: 'first' | 'joins';
  /** Where it listens, or null when the options turn this row off. */
  endpoint(opts: ServeOptions): NamedEndpoint | null;
  start(at: NamedEndpoint, ctx: ServerContext, log: (line: string) => void): Promise<Started>;
}

/** What differs between the HTTP rows: how requests reach them (and, for HTTPS, TLS on each connection). */
export interface HttpRowOptions {
  /** 'https' on a TLS listener: the WebSocket route's own origin is https://Host. */
  scheme: 'http' | 'https';
  tls?: ListenTls;
}

async function startHttp(at: NamedEndpoint, ctx: ServerContext, log: (line: string) => void, row: HttpRowOptions = { scheme: 'http' }): Promise<Started> {
  const { opts } = ctx;
  // MX/1 over WebSocket on every HTTP listener (--ws-path off: none).
  const ws = opts.ws.path;
  const handler = ws === null ? ctx.handler : withWsRoute(ctx.handler, { path: ws, scheme: row.scheme, origins: opts.ws.origins });
  const upgrades =
    ws === null
      ? undefined
      : new Map([[WS_UPGRADE, wsUpgrade({ binary: () => ctx.binary, metrics: ctx.metrics, maxPayload: opts.mx.maxFrame, pingIntervalMs: opts.ws.pingIntervalMs, listener: row.scheme })]]);
  const http = await startHttpServer({
    endpoint: at.endpoint,
    handler: httpHandler(ctx, row.tls !== undefined, handler),
    upgrades,
    tls: row.tls,
    parserFactory: parserFactory(opts.http.parser),
    limits: { maxRequestLine: opts.http.maxRequestLine, maxHeadBytes: opts.http.maxHead, maxHeaders: opts.http.maxHeaders, maxBodyBytes: opts.http.maxBody },
    maxConnections: opts.listen.maxConnections,
    maxConnectionsPerIp: opts.listen.maxConnectionsPerIp,
    tcpNotsentLowat: opts.listen.tcpNotsentLowat,
    backlog: opts.listen.backlog,
    socketMode: opts.listen.socketMode,
    headTimeoutMs: opts.http.headTimeoutMs,
    idleTimeoutMs: opts.http.idleTimeoutMs,
    sendTimeoutMs: opts.http.sendTimeoutMs,
    maxPipeline: opts.http.maxPipeline,
    maxOutputBytes: opts.limits.maxOutput,
    outputBudget: ctx.outputBudget,
    accessLog: opts.http.accessLog,
    metrics: ctx.metrics,
    log,
    printReady: ctx.printReady,
  });
  if (row.tls !== undefined) ctx.httpsPort = http.listener.port;
  return { listener: http.listener, port: http.listener.port, display: http.listener.display, drain: () => undefined, close: () => http.close() };
}

// --- TLS (issue 16): the HTTPS and MX/1-over-TLS rows start the same faces over src/loop/tls.ts.

/**
 * Around one HTTP listener's handler (the site, the stats and WebSocket routes): HSTS on HTTPS, the
 * 308 redirect on plain HTTP (a ws:// upgrade included: it must move to wss:// too), each when asked.
 */
function httpHandler(ctx: ServerContext, secure: boolean, inner: ServerContext['handler']): ServerContext['handler'] {
  const t = ctx.opts.tls;
  if (secure) return t.hsts === null ? inner : withHsts(inner, t.hsts);
  if (!t.httpsRedirect || ctx.tls === null) return inner;
  return withHttpsRedirect(inner, { httpsPort: () => ctx.httpsPort, statsPath: ctx.opts.http.statsPath });
}

function listenTls(ctx: ServerContext, alpn: string, handshakeTimeoutMs: number, onPlaintext?: ListenTls['onPlaintext']): ListenTls {
  const state = ctx.tls;
  if (state === null) throw new Error('a TLS listener needs --tls-cert and --tls-key');
  return { context: () => state.context(), alpn: [alpn], handshakeTimeoutMs, onPlaintext, handshakesPerIp: ctx.opts.tls.handshakesPerIp };
}

function startHttps(at: NamedEndpoint, ctx: ServerContext, log: (line: string) => void): Promise<Started> {
  const { opts } = ctx;
  const host = 'path' in at.endpoint ? '127.0.0.1' : at.endpoint.host.includes(':') ? `[${at.endpoint.host}]` : at.endpoint.host;
  // The head timeout runs from accept, so a handshake may take no longer than it either.
  const tls = listenTls(ctx, 'http/1.1', Math.min(opts.tls.handshakeTimeoutMs, opts.http.headTimeoutMs), (socket, first) => {
    socket.end(plainHttpOnHttpsPort(first, host, ctx.httpsPort, httpDate()));
  });
  return startHttp(at, ctx, log, { scheme: 'https', tls });
}

function startBinaryTls(at: NamedEndpoint, ctx: ServerContext, log: (line: string) => void): Promise<Started> {
  // ALPN "mx1" when the client offers ALPN; a client that offers none still connects.
  return startBinary(at, ctx, log, listenTls(ctx, 'mx1', ctx.opts.tls.handshakeTimeoutMs));
}

function tlsEndpoint(flag: string, o: ServeOptions, port: number): NamedEndpoint | null {
  return o.tls.cert === null || o.tls.key === null ? null : tcp(flag, o, port);
}

async function startBinary(at: NamedEndpoint, ctx: ServerContext, log: (line: string) => void, tls?: ListenTls): Promise<Started> {
  const { opts } = ctx;
  // Two MX/1 listeners (plain and TLS) start together: one room for both, made before either awaits.
  ctx.room ??= new LocalRoom(opts.limits.maxOutput, (member) => {
    ctx.metrics.count('binary.slowConsumersDropped');
    log(`binary: dropped ${member.name}: output backlog over ${opts.limits.maxOutput} bytes`);
  });
  const binary = await startBinaryServer({
    endpoint: at.endpoint,
    tls,
    maxConnections: opts.listen.maxConnections,
    maxConnectionsPerIp: opts.listen.maxConnectionsPerIp,
    tcpNotsentLowat: opts.listen.tcpNotsentLowat,
    backlog: opts.listen.backlog,
    socketMode: opts.listen.socketMode,
    maxFrame: opts.mx.maxFrame,
    maxUpload: opts.files.maxUpload,
    maxTransfers: opts.files.maxTransfers,
    maxTransfersTotal: opts.files.maxTransfersTotal,
    transfers: ctx.transfers,
    transferTimeoutMs: opts.files.transferTimeoutMs,
    uploadToken: opts.files.uploadToken,
    helloTimeoutMs: opts.mx.helloTimeoutMs,
    outputBudget: ctx.outputBudget,
    filesDir: ctx.filesDir,
    adminToken: opts.mx.adminToken,
    maxOutputBytes: opts.limits.maxOutput,
    idleTimeoutMs: opts.mx.idleTimeoutMs,
    metrics: ctx.metrics,
    snapshot: ctx.snapshot,
    room: ctx.room,
    log,
    printReady: ctx.printReady,
  });
  ctx.binary ??= binary;
  return { listener: binary.listener, port: binary.listener.port, display: binary.listener.display, drain: () => undefined, close: () => binary.close() };
}

async function startUdp(at: NamedEndpoint, ctx: ServerContext, log: (line: string) => void): Promise<Started> {
  const { opts } = ctx;
  const binary = ctx.binary;
  if (binary === null || 'path' in at.endpoint) throw new Error('MX/1 over UDP needs the MX/1 stream face and a port');
  const udpLimits = { maxFrameBytes: opts.mx.maxFrame, maxUploadBytes: opts.files.maxUpload, maxSayBytes: MAX_SAY_BYTES, maxOutputBytes: opts.limits.maxOutput, maxDatagramBytes: MAX_DATAGRAM };
  const udp = await startUdpServer({
    host: at.endpoint.host,
    // "Default: the MX/1 port number", also when that number was chosen by the kernel.
    port: at.endpoint.port === 0 && opts.listen.binaryPort === 0 && binary.listener.port !== 0 ? binary.listener.port : at.endpoint.port,
    room: binary.room,
    metrics: ctx.metrics,
    adminDigest: tokenDigest(opts.mx.adminToken),
    // Built to fit one datagram by the core (src/binary/stats.ts): a big report is cut, not dropped.
    stats: statsSource(() => ({ chatUsers: binary.room.size, ...ctx.snapshot(), limits: udpLimits })),
    memberTimeoutMs: opts.mx.udpMemberTimeoutMs,
    maxMembers: opts.listen.maxConnections,
    log,
    printReady: ctx.printReady,
  });
  return { listener: null, port: udp.port, display: udp.address, drain: () => udp.drain(), close: () => udp.close() };
}

function tcp(flag: string, o: ServeOptions, port: number): NamedEndpoint {
  return { flag, endpoint: { host: o.listen.host, port } };
}

/** In the order their ready lines print. */
export const LISTENERS: readonly ListenerRow[] = [
  { face: 'http', transport: 'unix', name: 'http', stage: 'first', start: (at, ctx, log) => startHttp(at, ctx, log, { scheme: 'http' }), endpoint: (o) => (o.listen.httpSocket === null ? null : { flag: '--http-socket', endpoint: { path: o.listen.httpSocket } }) },
  { face: 'http', transport: 'tcp', name: 'http', stage: 'first', start: (at, ctx, log) => startHttp(at, ctx, log, { scheme: 'http' }), endpoint: (o) => (o.listen.httpSocket !== null || o.listen.httpPort === null ? null : tcp('--http-port', o, o.listen.httpPort)) },
  { face: 'http', transport: 'tls', name: 'https', stage: 'first', start: startHttps, endpoint: (o) => tlsEndpoint('--https-port', o, o.tls.httpsPort) },
  { face: 'binary', transport: 'unix', name: 'binary', stage: 'first', start: startBinary, endpoint: (o) => (o.listen.binarySocket === null ? null : { flag: '--binary-socket', endpoint: { path: o.listen.binarySocket } }) },
  { face: 'binary', transport: 'tcp', name: 'binary', stage: 'first', start: startBinary, endpoint: (o) => (o.listen.binarySocket !== null || o.listen.binaryPort === null ? null : tcp('--binary-port', o, o.listen.binaryPort)) },
  { face: 'binary', transport: 'tls', name: 'binary-tls', stage: 'first', start: startBinaryTls, endpoint: (o) => tlsEndpoint('--binary-tls-port', o, o.tls.binaryTlsPort) },
  { face: 'binary', transport: 'udp', name: 'udp', stage: 'joins', start: startUdp, endpoint: (o) => (o.listen.udpPort === null ? null : tcp('--udp-port', o, o.listen.udpPort)) },
];

/** The rows these options turn on, each with its endpoint. */
export function activeListeners(opts: ServeOptions): { row: ListenerRow; at: NamedEndpoint }[] {
  const out: { row: ListenerRow; at: NamedEndpoint }[] = [];
  for (const r of LISTENERS) {
    const at = r.endpoint(opts);
    if (at !== null) out.push({ row: r, at });
  }
  return out;
}

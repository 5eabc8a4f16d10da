// `muxd serve`: both faces in one process, one thread, one event loop.
import { closeSync, openSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { Metrics } from '../loop/metrics.js';
import { startHttpServer, type HttpServer } from '../http/server.js';
import { parserFactory } from '../http/parsers.js';
import { StaticSite } from '../http/static/site.js';
import { withStatsRoute } from '../http/stats-route.js';
import { startBinaryServer, type BinaryServer } from '../binary/server.js';
import { tokenDigest } from '../binary/core.js';
import { startUdpServer, type UdpServer } from '../binary/udp/server.js';
import { MAX_SAY_BYTES } from '../wire/protocol.js';
import { MAX_DATAGRAM } from '../wire/udp.js';
import { UsageError, type ServeOptions } from './serve-options.js';

export interface Running {
  http: HttpServer;
  binary: BinaryServer;
  /** MX/1 over UDP; null with --udp-port off. */
  udp: UdpServer | null;
  metrics: Metrics;
  close(): Promise<void>;
}

export async function serve(opts: ServeOptions, log: (line: string) => void = (l) => process.stdout.write(l + '\n')): Promise<Running> {
  if (opts.accessLog !== null && opts.accessLog !== '-') checkWritable('--access-log', opts.accessLog);
  const metrics = new Metrics();
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
    handler: opts.statsPath === null ? site : withStatsRoute(site, opts.statsPath, () => metrics.snapshot()),
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
    log,
  });
  // MX/1 over UDP last: its members join the room the TCP face made.
  const udpLimits = { maxFrameBytes: opts.maxFrame, maxUploadBytes: opts.maxUpload, maxSayBytes: MAX_SAY_BYTES, maxOutputBytes: opts.maxOutput, maxDatagramBytes: MAX_DATAGRAM };
  const udp = opts.udpPort === null ? null : await startUdpServer({
    host: opts.host,
    port: opts.udpPort,
    room: binary.room,
    metrics,
    adminDigest: tokenDigest(opts.adminToken),
    stats: () => Buffer.from(JSON.stringify({ ...metrics.snapshot(), chatUsers: binary.room.size, limits: udpLimits }), 'utf8'),
    memberTimeoutMs: opts.udpMemberTimeoutMs,
    maxMembers: opts.maxConnections,
    log,
  });
  return {
    http,
    binary,
    udp,
    metrics,
    close: async () => {
      await Promise.all([http.close(), binary.close(), udp?.close()]);
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

// The UDP driver: one node:dgram socket feeding the sans-IO face (face.ts), a coarse timer for
// member timeouts, and the bound on what waits in the socket's send queue.
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { MAX_DATAGRAM } from '../../wire/udp.js';
import { UdpFace, type UdpFaceOptions } from './face.js';

/** Datagrams queued in the socket (the kernel's buffer full) beyond which replies and pushes are dropped. */
export const MAX_SEND_QUEUE = 1024;
const SWEEP_MAX_MS = 1000;

/** The face's options; the server supplies the socket (send) and a default log. */
export interface UdpServerOptions extends Omit<UdpFaceOptions, 'send' | 'log'> {
  host: string;
  /** 0 = any free port. */
  port: number;
  log?: (line: string) => void;
  /** false: no ready line (the caller announces `address` itself, or not at all). Default true. */
  printReady?: boolean;
}

export interface UdpServer {
  /** "127.0.0.1:9000" or "[::1]:9000": also what its ready line shows. */
  readonly address: string;
  readonly port: number;
  readonly face: UdpFace;
  /** Graceful shutdown: members get the shutdown ANNOUNCEMENT and leave; requests get ERROR 51. */
  drain(): void;
  /** Every UDP member leaves the room, then the socket closes. Idempotent. */
  close(): Promise<void>;
}

export async function startUdpServer(opts: UdpServerOptions): Promise<UdpServer> {
  const log = opts.log ?? ((line: string) => process.stdout.write(line + '\n'));
  const family = net.isIP(opts.host) !== 0 ? net.isIP(opts.host) : (await lookup(opts.host)).family;
  const socket = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4' });
  const face = new UdpFace({
    room: opts.room,
    metrics: opts.metrics,
    adminDigest: opts.adminDigest,
    stats: opts.stats,
    memberTimeoutMs: opts.memberTimeoutMs,
    maxMembers: opts.maxMembers,
    maxAddresses: opts.maxAddresses,
    cookies: opts.cookies,
    log,
    send: (datagram, address, port) => {
      if (closed || socket.getSendQueueCount() >= MAX_SEND_QUEUE) return false;
      socket.send(datagram, port, address, (err) => {
        // EMSGSIZE, ENETUNREACH, ...: that datagram is lost, as UDP datagrams may be.
        if (err) opts.metrics.count('udp.sendErrors');
      });
      return true;
    },
  });
  opts.metrics.gauge('udpMembers', () => face.memberCount);

  let closed = false;
  socket.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => {
    if (closed) return;
    face.handle(msg, rinfo.address, rinfo.port, Date.now());
  });

  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ port: opts.port, address: opts.host, exclusive: true }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  // After the bind, errors (ICMP reports on some systems) concern one peer, never the face.
  socket.on('error', (err) => process.emitWarning(`udp socket: ${err.message}`));
  // Room for a burst of full-size datagrams in both directions.
  try {
    socket.setRecvBufferSize(Math.max(socket.getRecvBufferSize(), 4 * MAX_DATAGRAM));
  } catch {
    // a system limit below it: keep the default
  }

  const sweeper = setInterval(() => face.sweep(Date.now()), Math.min(SWEEP_MAX_MS, Math.max(10, Math.floor(opts.memberTimeoutMs / 4))));
  sweeper.unref();

  const info = socket.address();
  const address = info.family === 'IPv6' ? `[${info.address}]:${info.port}` : `${info.address}:${info.port}`;
  if (opts.printReady !== false) log(`muxd udp listening on ${address}`);

  let closing: Promise<void> | null = null;
  return {
    address,
    port: info.port,
    face,
    drain: () => face.drain(),
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        clearInterval(sweeper);
        face.close();
        closed = true;
        socket.close(() => resolve());
      });
      return closing;
    },
  };
}

// A listening socket that accepts connections for one protocol, caps how many are open,
// counts them and hands each accepted socket to the protocol. It knows no protocol itself.
import net, { type AddressInfo, type Socket } from 'node:net';
import type { Metrics } from './metrics.js';
import { Sweeper, type Timed } from './sweeper.js';

export type Endpoint = { host: string; port: number } | { path: string };

export interface ListenOptions {
  /** Short protocol name: it keys the metrics and starts the ready line ("http", "binary"). */
  name: string;
  /** How the ready line shows the address, e.g. (a) => `http://${a}`. */
  display?: (address: string) => string;
  endpoint: Endpoint;
  maxConnections: number;
  metrics: Metrics;
  /** Called once per accepted socket; a returned Timed gets its deadlines swept. */
  onConnection(socket: Socket): Timed | void;
  /** Called instead of onConnection when the cap is reached: answer briefly, then end. */
  onRefuse(socket: Socket): void;
  /** Keep our side writable after the peer half-closes, to finish answering it. */
  allowHalfOpen?: boolean;
  /** Where the ready line goes; default stdout. */
  log?: (line: string) => void;
}

export interface Listener {
  readonly name: string;
  /** "127.0.0.1:8080", "[::1]:8080" or a Unix socket path. */
  readonly address: string;
  readonly port: number;
  readonly sockets: ReadonlySet<Socket>;
  close(): Promise<void>;
}

export function formatAddress(info: AddressInfo | string | null): string {
  if (info === null) return '';
  if (typeof info === 'string') return info;
  return info.family === 'IPv6' ? `[${info.address}]:${info.port}` : `${info.address}:${info.port}`;
}

export async function listen(opts: ListenOptions): Promise<Listener> {
  const { name, metrics } = opts;
  const sockets = new Set<Socket>();
  const sweeper = new Sweeper();
  metrics.open[name] = 0;
  metrics.accepted[name] = 0;
  metrics.refused[name] = 0;

  const server = net.createServer({ noDelay: true, allowHalfOpen: opts.allowHalfOpen ?? false }, (socket) => {
    if (sockets.size >= opts.maxConnections) {
      metrics.refused[name]!++;
      socket.on('error', () => socket.destroy());
      opts.onRefuse(socket);
      return;
    }
    sockets.add(socket);
    metrics.open[name]!++;
    metrics.accepted[name]!++;
    let timed: Timed | void = undefined;
    socket.once('close', () => {
      sockets.delete(socket);
      metrics.open[name]!--;
      if (timed) sweeper.delete(timed);
    });
    timed = opts.onConnection(socket);
    if (timed && !socket.destroyed) sweeper.add(timed);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      resolve();
    };
    if ('path' in opts.endpoint) server.listen(opts.endpoint.path, done);
    else server.listen(opts.endpoint.port, opts.endpoint.host, done);
  });
  server.on('error', (err) => process.emitWarning(`${name} listener: ${err.message}`));

  const info = server.address();
  const address = formatAddress(info);
  const port = info !== null && typeof info === 'object' ? info.port : 0;
  const display = opts.display ? opts.display(address) : address;
  (opts.log ?? ((line: string) => process.stdout.write(line + '\n')))(`muxd ${name} listening on ${display}`);

  return {
    name,
    address,
    port,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        sweeper.stop();
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

// A listening socket that accepts connections for one protocol, caps how many are open (in
// total and per client address), counts them, hands each accepted socket to the protocol and,
// at shutdown, drains them. It knows no protocol itself.
//
// One listener for every transport (Go's Server.Serve(listener)): the server comes from a
// factory, net.createServer by default. With `tls` the same listener serves TLS: a connection is
// admitted, capped (in total and per address) and given TCP_NOTSENT_LOWAT at TCP accept, before
// any handshake work, so a handshake flood is bounded by the same caps; it counts as open from
// accept until its TCP socket closes. A TLS connection refused at a cap is closed without a
// word (there is no TLS session yet to answer in), and counted as refused. The handshake runs
// in tls.ts on the TCP socket the listener accepted (so the listener keeps that socket in hand,
// and never needs Node's internals to find it); the protocol gets the TLSSocket once the
// handshake is done; one that fails or never finishes closes the TCP socket and never reaches it.
import { chmodSync, closeSync, lstatSync, openSync, unlinkSync } from 'node:fs';
import net, { type AddressInfo, type Socket } from 'node:net';
import type { Metrics } from './metrics.js';
import { Sweeper, type Timed } from './sweeper.js';
import { coarseNow } from './clock.js';
import { limitUnsent } from './unsent-limit.js';
import { HandshakeBudget, initTlsCounters, startHandshake, type ListenTls } from './tls.js';
import type { BytePipe } from './pipe.js';

export type Endpoint = { host: string; port: number } | { path: string };

/**
 * What a protocol returns from onConnection: its deadlines are swept, and at shutdown the
 * listener drains it, then aborts what is left at the timeout.
 */
export interface Connection extends Timed {
  /** Graceful shutdown: take no new requests; finish what is in flight; close when done
   *  (an idle connection closes at once). Idempotent. */
  drain?(): void;
  /** The shutdown timeout passed: abort what is left (an ERROR frame where the protocol has
   *  one; temp files removed), then destroy the socket. Returns true if work was cut. */
  abort?(): boolean;
}

/** Replaces the Connection the listener keeps for one pipe (see ListenOptions.onConnection). */
export type Handoff = (next: Connection) => void;

/** Why a connection was refused; the protocol turns it into its own answer. */
export interface Refusal {
  reason: 'max-connections' | 'max-connections-per-ip';
  /** The limit that was hit (the flag's value). */
  limit: number;
}

export interface ListenOptions {
  /** Short protocol name: it keys the metrics and starts the ready line ("http", "binary"). */
  name: string;
  /** How the ready line shows the address, e.g. (a) => `http://${a}`. */
  display?: (address: string) => string;
  endpoint: Endpoint;
  maxConnections: number;
  /** Open connections per client address (IPv4-mapped IPv6 counts as IPv4); 0 = no limit.
   *  Unix-socket peers have no address and are not counted. */
  maxConnectionsPerIp?: number;
  /** TCP_NOTSENT_LOWAT for each accepted TCP socket (see unsent-limit.ts); 0 = the kernel's default. */
  tcpNotsentLowat?: number;
  /** Length of the kernel's accept queue (clamped by net.core.somaxconn); default DEFAULT_BACKLOG. */
  backlog?: number;
  /** Permission bits for a Unix socket file, applied right after listen. */
  socketMode?: number;
  metrics: Metrics;
  /**
   * Called once per accepted connection (after its handshake, on TLS) with its pipe (a
   * net.Socket, or a tls.TLSSocket, taken as the BytePipe every driver reads and writes through:
   * a protocol never needs the socket itself), and `acceptedAt` (coarseNow() at TCP accept: a
   * deadline from accept includes the handshake). A returned Connection gets its deadlines swept
   * and is drained at shutdown; `handoff` replaces it with another protocol's Connection on the
   * same pipe (an HTTP upgrade), which the listener then sweeps, drains and aborts instead. The
   * listener keeps the socket itself (Listener.sockets) for what only a socket has.
   */
  onConnection(pipe: BytePipe, handoff: Handoff, acceptedAt: number): Connection | void;
  /** Called instead of onConnection when a cap is reached: answer briefly, then end. Plain
   *  (non-TLS) listeners only: a TLS one closes the connection (see the top of this file). It
   *  gets the net.Socket, not a pipe: no protocol runs on it, and its one answer goes out with
   *  end(data), which a BytePipe does not have. */
  onRefuse(socket: Socket, refusal: Refusal): void;
  /** Keep our side writable after the peer half-closes, to finish answering it. */
  allowHalfOpen?: boolean;
  /**
   * Builds the listening server; default net.createServer({ noDelay: true, allowHalfOpen }).
   * The listener adds its own listeners; give the server none for 'connection'.
   */
  createServer?: (opts: { allowHalfOpen: boolean }) => net.Server;
  /** TLS on every accepted connection (see tls.ts); absent = plain. */
  tls?: ListenTls;
  /** Where the ready line goes; default stdout. */
  log?: (line: string) => void;
  /** false: no ready line (the caller announces Listener.display itself, or not at all). Default true. */
  printReady?: boolean;
}

export interface Listener {
  readonly name: string;
  /** "127.0.0.1:8080", "[::1]:8080" or a Unix socket path. */
  readonly address: string;
  /** The address as the ready line shows it (ListenOptions.display applied), e.g. "http://127.0.0.1:8080". */
  readonly display: string;
  readonly port: number;
  /** The Unix socket path, or null on TCP. */
  readonly path: string | null;
  readonly sockets: ReadonlySet<Socket>;
  /** Stops accepting (the listening socket closes, a Unix socket file is removed); open
   *  connections are untouched. Idempotent. */
  stopAccepting(): void;
  /** Asks every open connection to finish and close (Connection.drain); one whose protocol has
   *  no drain() is closed at once. */
  drain(): void;
  /** Resolves once no connection is open. */
  idle(): Promise<void>;
  /** Aborts every connection still open (Connection.abort, then destroy); returns how many had
   *  work cut (a connection without abort() that was still open counts as cut). */
  abort(): number;
  /** Hard stop: stop accepting and destroy every connection now. */
  close(): Promise<void>;
  /** Removes our Unix socket file now, synchronously, if it is still the one we created (for
   *  exits that cannot wait for close()). */
  removeSocketFile(): void;
}

export function formatAddress(info: AddressInfo | string | null): string {
  if (info === null) return '';
  if (typeof info === 'string') return info;
  return info.family === 'IPv6' ? `[${info.address}]:${info.port}` : `${info.address}:${info.port}`;
}

/** The key a client is counted under: "::ffff:1.2.3.4" is the IPv4 client 1.2.3.4. */
export function addressKey(remote: string): string {
  return remote.startsWith('::ffff:') && remote.includes('.') ? remote.slice(7) : remote;
}

// EMFILE. libuv already sheds for us: it keeps one spare descriptor per loop and, when accept()
// fails with EMFILE/ENFILE, closes it, accepts and closes every pending connection, and reopens
// it, so the listen socket is not left readable (no spin) and nobody else is reset. Only when the
// spare could not be reopened (another thread took the descriptor) does the server emit
// 'error', and libuv retries accept() at once. For that case we keep a spare of our own: give it
// up so the next accept() succeeds, close that newest connection, take the spare back.
let spareFd = -1;
let shedNext = 0;
function takeSpare(): void {
  if (spareFd !== -1) return;
  try {
    spareFd = openSync('/dev/null', 'r');
  } catch {
    spareFd = -1;
  }
}
function giveUpSpare(): boolean {
  if (spareFd === -1) return false;
  closeSync(spareFd);
  spareFd = -1;
  return true;
}

function fileId(file: string): string {
  const st = lstatSync(file, { bigint: true });
  return st.isSocket() ? `${st.dev}:${st.ino}` : 'not a socket';
}

/** One admitted connection. */
interface Entry {
  /** What the protocol reads and writes: the socket itself, or its TLSSocket once the handshake is done. */
  pipe: Socket | null;
  conn: Connection | null;
  /** Its TCP socket has closed. */
  closed: boolean;
}

/** Warnings about one recurring condition at most this often. */
const WARN_EVERY_MS = 10_000;

/** Node's own default accept queue. */
export const DEFAULT_BACKLOG = 511;

export async function listen(opts: ListenOptions): Promise<Listener> {
  const { name, metrics } = opts;
  const perIpLimit = opts.maxConnectionsPerIp ?? 0;
  const unsentLimit = opts.tcpNotsentLowat ?? 0;
  /** Admitted TCP (or Unix) sockets: what the caps and `open` count. */
  const sockets = new Set<Socket>();
  /** Per admitted socket: its pipe once the protocol has it (the socket itself, or its TLSSocket) and the Connection. */
  const entries = new Map<Socket, Entry>();
  const perIp = new Map<string, number>();
  const sweeper = new Sweeper();
  metrics.open[name] = 0;
  metrics.accepted[name] = 0;
  metrics.refused[name] = 0;
  const refusedTotal = `${name}.refused.maxConnections`;
  const refusedPerIp = `${name}.refused.maxConnectionsPerIp`;
  const acceptErrors = `${name}.acceptErrors`;
  metrics.counters[refusedTotal] = 0;
  metrics.counters[refusedPerIp] = 0;
  metrics.counters[acceptErrors] = 0;
  let idleWaiters: (() => void)[] = [];
  let lastWarning = 0;
  takeSpare();

  const allowHalfOpen = opts.allowHalfOpen ?? false;
  const server = opts.createServer ? opts.createServer({ allowHalfOpen }) : net.createServer({ noDelay: true, allowHalfOpen });
  const secure = opts.tls;
  if (secure !== undefined) initTlsCounters(metrics, name);
  // Handshakes in progress per address (tls.ts): a flood from one address waits its own turn.
  const handshakes = new HandshakeBudget(secure?.handshakesPerIp ?? 0);

  const refuse = (socket: Socket, refusal: Refusal, counter: string): void => {
    metrics.refused[name]!++;
    metrics.counters[counter]!++;
    socket.on('error', () => socket.destroy());
    if (secure !== undefined) socket.destroy();
    else opts.onRefuse(socket, refusal);
  };

  /** Hands an admitted connection's pipe to the protocol. */
  const start = (entry: Entry, pipe: Socket, acceptedAt: number): void => {
    entry.pipe = pipe;
    const handoff: Handoff = (next) => {
      if (entry.conn) sweeper.delete(entry.conn);
      entry.conn = next;
      if (!entry.closed) sweeper.add(next);
    };
    const conn = opts.onConnection(pipe, handoff, acceptedAt) ?? null;
    // The protocol may have handed off already, or closed the pipe at once.
    if (entry.conn === null && conn !== null && !entry.closed && !pipe.destroyed) {
      entry.conn = conn;
      sweeper.add(conn);
    }
  };

  // Every TCP accept, plain or TLS.
  server.on('connection', (socket: Socket) => {
    if (shedNext > 0) {
      // Accepted with our spare descriptor (see EMFILE above): shed it, take the spare back.
      shedNext--;
      socket.destroy();
      takeSpare();
      return;
    }
    // A TCP peer has an address (read once here, cached by Node for everyone after us); one
    // that has none already reset the connection. Unix-socket peers have none by nature.
    let key: string | null = null;
    if (!('path' in opts.endpoint)) {
      const remote = socket.remoteAddress;
      if (remote === undefined) {
        socket.destroy();
        return;
      }
      key = addressKey(remote);
    }
    if (sockets.size >= opts.maxConnections) {
      refuse(socket, { reason: 'max-connections', limit: opts.maxConnections }, refusedTotal);
      return;
    }
    if (key !== null && perIpLimit > 0) {
      const n = perIp.get(key) ?? 0;
      if (n >= perIpLimit) {
        refuse(socket, { reason: 'max-connections-per-ip', limit: perIpLimit }, refusedPerIp);
        return;
      }
      perIp.set(key, n + 1);
    }
    // On the TCP socket, under TLS too: it bounds the ciphertext the kernel holds unsent.
    if (key !== null && unsentLimit > 0) limitUnsent(socket, unsentLimit);
    sockets.add(socket);
    metrics.open[name]!++;
    metrics.accepted[name]!++;
    const entry: Entry = { pipe: null, conn: null, closed: false };
    entries.set(socket, entry);
    socket.once('close', () => {
      entry.closed = true;
      sockets.delete(socket);
      entries.delete(socket);
      metrics.open[name]!--;
      if (key !== null && perIpLimit > 0) {
        const n = perIp.get(key)! - 1;
        if (n === 0) perIp.delete(key);
        else perIp.set(key, n);
      }
      if (entry.conn) sweeper.delete(entry.conn);
      if (sockets.size === 0 && idleWaiters.length > 0) {
        const waiters = idleWaiters;
        idleWaiters = [];
        for (const w of waiters) w();
      }
    });
    const acceptedAt = coarseNow();
    if (secure === undefined) {
      start(entry, socket, acceptedAt);
      return;
    }
    // Until its handshake is done, the handshake is the connection swept and drained.
    const handshake = startHandshake(socket, secure, name, metrics, (pipe) => {
      sweeper.delete(handshake);
      entry.conn = null;
      if (entry.closed) pipe.destroy();
      else start(entry, pipe, acceptedAt);
    }, handshakes, key);
    entry.conn = handshake;
    sweeper.add(handshake);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      resolve();
    };
    // The accept queue: a connection that finds it full loses its handshake and retries only
    // after TCP's retransmission timeout (200 ms and up), so a burst deeper than the queue costs
    // everyone in it. The kernel clamps this to net.core.somaxconn.
    const backlog = opts.backlog ?? DEFAULT_BACKLOG;
    if ('path' in opts.endpoint) server.listen({ path: opts.endpoint.path, backlog }, done);
    else server.listen({ port: opts.endpoint.port, host: opts.endpoint.host, backlog }, done);
  });
  server.on('error', (err: NodeJS.ErrnoException) => {
    metrics.counters[acceptErrors]!++;
    if ((err.code === 'EMFILE' || err.code === 'ENFILE') && giveUpSpare()) shedNext++;
    const now = Date.now();
    if (now - lastWarning >= WARN_EVERY_MS) {
      lastWarning = now;
      process.stderr.write(`muxd: ${name} listener: ${err.message} (shedding new connections; counted in ${acceptErrors})\n`);
    }
  });

  const socketPath = 'path' in opts.endpoint ? opts.endpoint.path : null;
  // The file we created. While we listen, its inode stays ours (the bound socket holds it), so
  // a matching inode is our file; once we stop, libuv has unlinked it and any file there is not ours.
  let socketId = '';
  if (socketPath !== null) {
    try {
      if (opts.socketMode !== undefined) chmodSync(socketPath, opts.socketMode);
      socketId = fileId(socketPath);
    } catch (err) {
      server.close();
      throw err;
    }
  }

  const info = server.address();
  const address = formatAddress(info);
  const port = info !== null && typeof info === 'object' ? info.port : 0;
  const display = opts.display ? opts.display(address) : address;
  if (opts.printReady !== false) (opts.log ?? ((line: string) => process.stdout.write(line + '\n')))(`muxd ${name} listening on ${display}`);

  let accepting = true;
  const stopAccepting = (): void => {
    if (!accepting) return;
    accepting = false;
    server.close();
  };
  const idle = (): Promise<void> =>
    sockets.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => idleWaiters.push(resolve));

  return {
    name,
    address,
    display,
    port,
    path: socketPath,
    sockets,
    stopAccepting,
    drain: () => {
      for (const [socket, entry] of [...entries]) {
        if (entry.conn?.drain) entry.conn.drain();
        else (entry.pipe ?? socket).destroy();
      }
    },
    idle,
    abort: () => {
      let cut = 0;
      for (const [socket, entry] of [...entries]) {
        if (entry.conn?.abort) {
          if (entry.conn.abort()) cut++;
        } else cut++;
        (entry.pipe ?? socket).destroy();
      }
      return cut;
    },
    close: async () => {
      sweeper.stop();
      stopAccepting();
      for (const [socket, entry] of [...entries]) (entry.pipe ?? socket).destroy();
      await idle();
    },
    removeSocketFile: () => {
      if (socketPath === null || socketId === '' || !accepting) return;
      try {
        if (fileId(socketPath) === socketId) unlinkSync(socketPath);
      } catch {
        // Already gone.
      }
    },
  };
}

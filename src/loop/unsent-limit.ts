// TCP_NOTSENT_LOWAT on accepted sockets (Linux >= 3.12): once this many bytes wait unsent in a
// socket, write() takes no more until the peer reads. Without it Linux grows each send buffer
// up to tcp_wmem's maximum (4 MiB by default), and a thousand readers that stop reading make
// the kernel hold gigabytes for us until TCP memory runs out for every socket on the machine.
// Bytes already in flight (sent, not yet acknowledged) are not capped, so a fast reader on a
// long path still gets its full window. Node has no setsockopt for TCP; the N-API package
// sockopt makes the one call per accepted socket.
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

const IPPROTO_TCP = 6;
const TCP_NOTSENT_LOWAT = 25; // include/uapi/linux/tcp.h

interface SockoptModule {
  setsockopt(socket: Socket, level: number, option: number, value: number): void;
  getsockopt(socket: Socket, level: number, option: number): number;
}

let loaded: SockoptModule | string | null = null;

/** The native module, or why it is unavailable (loaded once). */
function sockopt(): SockoptModule | string {
  if (loaded !== null) return loaded;
  if (process.platform !== 'linux') return (loaded = `TCP_NOTSENT_LOWAT is set only on Linux (this is ${process.platform})`);
  try {
    loaded = createRequire(import.meta.url)('sockopt') as SockoptModule;
  } catch (err) {
    loaded = `the sockopt module did not load: ${(err as Error).message.split('\n')[0]}`;
  }
  return loaded;
}

/** Null when the limit can be applied here, else why not (for a start-up warning). */
export function unsentLimitProblem(): string | null {
  const m = sockopt();
  return typeof m === 'string' ? m : null;
}

/**
 * Caps the unsent bytes the kernel keeps for this socket. Best effort: a socket already reset by
 * its peer has no descriptor left to set, and needs no cap.
 */
export function limitUnsent(socket: Socket, bytes: number): void {
  const m = sockopt();
  if (typeof m === 'string') return;
  try {
    m.setsockopt(socket, IPPROTO_TCP, TCP_NOTSENT_LOWAT, bytes);
  } catch {
    // closed under us: nothing to cap
  }
}

/** The socket's current TCP_NOTSENT_LOWAT (for tests); null where it cannot be read. */
export function unsentLimitOf(socket: Socket): number | null {
  const m = sockopt();
  if (typeof m === 'string') return null;
  try {
    return m.getsockopt(socket, IPPROTO_TCP, TCP_NOTSENT_LOWAT);
  } catch {
    return null;
  }
}

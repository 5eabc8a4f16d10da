// TCP_NOTSENT_LOWAT on accepted sockets (Linux >= 3.12): once this many bytes wait unsent in a
// socket, write() takes no more until the peer reads. Without it Linux grows each send buffer
// up to tcp_wmem's maximum (4 MiB by default), and a thousand readers that stop reading make
// the kernel hold gigabytes for us until TCP memory runs out for every socket on the machine.
// Bytes already in flight (sent, not yet acknowledged) are not capped, so a fast reader on a
// long path still gets its full window. Node has no setsockopt for TCP: koffi (a C FFI with
// prebuilt binaries) calls libc's, once per accepted socket, on the descriptor Node keeps in
// socket._handle.fd (not public API, but stable for years and what every setsockopt package
// for Node reads). koffi is required on first use, not imported: loading this module never loads
// it, and the `import type` below is erased from the build. The require is synchronous because
// a socket is capped the moment it is accepted.
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type * as Koffi from 'koffi';

const IPPROTO_TCP = 6;
const TCP_NOTSENT_LOWAT = 25; // include/uapi/linux/tcp.h

interface Sockopt {
  setsockopt(fd: number, level: number, option: number, value: number[], length: number): number;
  getsockopt(fd: number, level: number, option: number, value: number[], length: number[]): number;
}

let loaded: Sockopt | string | null = null;

/** libc's setsockopt/getsockopt through koffi, or why they are unavailable (loaded once). */
function sockopt(): Sockopt | string {
  if (loaded !== null) return loaded;
  if (process.platform !== 'linux') return (loaded = `TCP_NOTSENT_LOWAT is set only on Linux (this is ${process.platform})`);
  try {
    const koffi = createRequire(import.meta.url)('koffi') as typeof Koffi;
    const libc = koffi.load('libc.so.6');
    loaded = {
      setsockopt: libc.func('int setsockopt(int fd, int level, int name, const int *value, uint32_t len)') as Sockopt['setsockopt'],
      getsockopt: libc.func('int getsockopt(int fd, int level, int name, _Out_ int *value, _Inout_ uint32_t *len)') as Sockopt['getsockopt'],
    };
  } catch (err) {
    // koffi is an optional dependency (a client-library install may leave it out): its absence
    // costs this one cap, said once at start, never the server.
    const missing = (err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && /'koffi'/.test((err as Error).message);
    loaded = missing
      ? 'koffi, an optional dependency of muxd, is not installed'
      : `libc's setsockopt could not be loaded through koffi: ${(err as Error).message.split('\n')[0]}`;
  }
  return loaded;
}

/** The descriptor behind a net.Socket, or -1 (closed, or not a plain fd). */
function fdOf(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' ? fd : -1;
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
  const fd = fdOf(socket);
  if (typeof m === 'string' || fd < 0) return;
  m.setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, [bytes], 4);
}

/** The socket's current TCP_NOTSENT_LOWAT (for tests); null where it cannot be read. */
export function unsentLimitOf(socket: Socket): number | null {
  const m = sockopt();
  const fd = fdOf(socket);
  if (typeof m === 'string' || fd < 0) return null;
  const value = [0];
  return m.getsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, value, [4]) === 0 ? value[0]! : null;
}

// TLS beneath a protocol, per accepted TCP socket. The listener admits and caps the TCP socket
// (caps, per-address counts and TCP_NOTSENT_LOWAT all apply to the socket beneath TLS), then this
// peeks at the first bytes before any TLS work: a TLS record (content type 22, handshake, RFC 8446
// §5.1) gets a server-side TLSSocket over the same socket (node:tls, never our own crypto);
// a plaintext request is handed to the protocol to answer in clear (a 400 naming the https://
// URL, as nginx does); anything else is closed. The handshake has its own deadline, swept with
// the protocol deadlines: a client that never finishes (or never sends a ClientHello) is cut.
//
// Handshakes in progress are budgeted per client address (HandshakeBudget): a handshake's heavy
// step (ECDHE and the signature, 1-2 ms of this one thread) runs when its ClientHello is read, so
// one address with N handshakes in flight puts up to N of those into one loop turn, ahead of
// everyone else's. Past the budget a new connection from that address waits its turn in a FIFO
// of its own address, unread (no CPU spent on it), its deadline still running from accept.
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Connection } from './listener.js';
import { coarseNow } from './clock.js';
import type { Metrics } from './metrics.js';

/** A TLS record header's first byte for a handshake message (a ClientHello). */
const TLS_HANDSHAKE = 0x16;

export interface ListenTls {
  /** The context of the next handshake: read per connection, so a reload applies to new ones only. */
  context(): SecureContext;
  /** ALPN names we select from the client's offer (a client that offers none still connects). */
  alpn: readonly string[];
  /** A handshake (from accept, the ClientHello's wait included) not done within this is cut. */
  handshakeTimeoutMs: number;
  /**
   * First bytes that are not TLS but start like a text request (an ASCII letter): answer in
   * clear and end the socket. Absent: such a connection is closed like garbage.
   */
  onPlaintext?(socket: Socket, first: Buffer): void;
  /** Handshakes in progress per client address before the next waits its turn; 0 or absent = no limit. */
  handshakesPerIp?: number;
}

/** Counter names, per listener: `${name}.tls.${key}`. */
export const TLS_COUNTERS = ['handshakes', 'handshakeTimeouts', 'handshakeErrors', 'plaintext', 'notTls', 'handshakesQueued'] as const;

export function initTlsCounters(metrics: Metrics, name: string): void {
  for (const k of TLS_COUNTERS) metrics.counters[`${name}.tls.${k}`] = 0;
}

function discard(): void {
  // Bytes after a plaintext request on a TLS port: dropped.
}

function isLetter(b: number): boolean {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
}

/** One address's handshakes: how many are in progress, and who waits (FIFO, from `head`). */
interface AddressTurns {
  running: number;
  waiting: (() => void)[];
  head: number;
}

/**
 * Per listener: handshakes in progress per client address (the listener's address key, so an
 * IPv4-mapped address is its IPv4 one). Waiting connections are bounded by the listener's
 * connection caps (they are admitted, open connections); one address's queue never delays another's.
 */
export class HandshakeBudget {
  private readonly turns = new Map<string, AddressTurns>();
  constructor(private readonly perAddress: number) {}

  /**
   * Runs `begin` now, or once one of this address's handshakes ends (FIFO). Returns the
   * connection's release: call it once its handshake has ended (secure, failed, not TLS, or
   * its socket closed, waiting or not); later calls do nothing.
   */
  enter(key: string | null, begin: () => void): { queued: boolean; release: () => void } {
    if (key === null || this.perAddress <= 0) {
      begin();
      return { queued: false, release: noop };
    }
    let t = this.turns.get(key);
    if (t === undefined) {
      t = { running: 0, waiting: [], head: 0 };
      this.turns.set(key, t);
    }
    const turns = t;
    let state: 'waiting' | 'running' | 'done' = 'waiting';
    const run = (): void => {
      state = 'running';
      turns.running++;
      begin();
    };
    const release = (): void => {
      const was = state;
      state = 'done';
      if (was === 'running') {
        turns.running--;
        this.next(key, turns);
      }
      // A waiting one that leaves is skipped when its turn comes (`state` is 'done').
    };
    const queued = turns.running >= this.perAddress;
    if (queued) turns.waiting.push(() => (state === 'waiting' ? (run(), true) : false));
    else run();
    return { queued, release };
  }

  private next(key: string, t: AddressTurns): void {
    while (t.running < this.perAddress && t.head < t.waiting.length) {
      // A waiting one whose socket already closed returns false and is passed over.
      t.waiting[t.head]!();
      t.waiting[t.head++] = noop;
    }
    if (t.head === t.waiting.length) {
      t.waiting.length = 0;
      t.head = 0;
    } else if (t.head > 64 && t.head * 2 > t.waiting.length) {
      t.waiting.splice(0, t.head);
      t.head = 0;
    }
    if (t.running === 0 && t.waiting.length === 0) this.turns.delete(key);
  }
}

function noop(): boolean {
  return false;
}

function noopRelease(): void {
  // No budget: nothing to give back.
}

/**
 * Runs one handshake on an admitted socket; `done` gets the TLSSocket once it is secure. The
 * returned Connection is what the listener sweeps and drains until then (a drain or an abort
 * closes a connection still in its handshake: nothing of the protocol has started).
 */
export function startHandshake(socket: Socket, tls: ListenTls, name: string, metrics: Metrics, done: (pipe: TLSSocket) => void, budget?: HandshakeBudget, key: string | null = null): Connection {
  const count = (k: (typeof TLS_COUNTERS)[number]): void => {
    metrics.counters[`${name}.tls.${k}`]!++;
  };
  let answered = false;
  const conn: Connection = {
    deadline: coarseNow() + tls.handshakeTimeoutMs,
    onDeadline: () => {
      // A plaintext request was answered: its client just did not close; not a handshake timeout.
      if (!answered) count('handshakeTimeouts');
      socket.destroy();
    },
    drain: () => socket.destroy(),
    abort: () => {
      socket.destroy();
      return false;
    },
  };
  // Kept for the socket's life: an error beneath TLS closes it (the TLSSocket closes with it),
  // a waiting socket included (a reset is noticed even unread).
  socket.on('error', () => socket.destroy());
  let release = noopRelease;
  const begin = (): void => {
    const onEnd = (): void => {
      socket.destroy();
    };
    socket.once('end', onEnd);
    socket.once('data', (first: Buffer) => {
      socket.pause();
      socket.off('end', onEnd);
      if (first[0] !== TLS_HANDSHAKE) {
        if (tls.onPlaintext !== undefined && isLetter(first[0]!)) {
          count('plaintext');
          answered = true;
          // The rest of the request is read and dropped: closing with unread bytes would send an
          // RST that can destroy the answer before the client reads it (nginx's lingering close).
          // The deadline keeps running: it bounds how long this may take.
          socket.on('data', discard);
          socket.resume();
          tls.onPlaintext(socket, first);
        } else {
          count('notTls');
          socket.destroy();
        }
        release();
        return;
      }
      // The TLSSocket reads what the socket already holds (this first chunk) before the rest.
      socket.unshift(first);
      const pipe = new TLSSocket(socket, { isServer: true, secureContext: tls.context(), ALPNProtocols: tls.alpn.length > 0 ? [...tls.alpn] : undefined });
      // TLS 1.2 renegotiation started by the client: refused by the context's
      // SSL_OP_NO_RENEGOTIATION (src/server/tls.ts); this is Node's own guard on top. TLS 1.3 has none.
      pipe.disableRenegotiation();
      const onTlsError = (): void => {
        count('handshakeErrors');
        pipe.destroy();
        release();
      };
      pipe.on('error', onTlsError);
      // The client half-closed before we saw its Finished (a TLS 1.3 client that closes right
      // after its own handshake ends does): nothing to answer. With allowHalfOpen (both faces)
      // nobody else would close it, and it would hold its address's turn until the deadline.
      const onTlsEnd = (): void => {
        pipe.destroy();
      };
      pipe.once('end', onTlsEnd);
      pipe.once('secure', () => {
        conn.deadline = 0;
        pipe.off('error', onTlsError);
        pipe.off('end', onTlsEnd);
        count('handshakes');
        release();
        done(pipe);
      });
    });
  };
  if (socket.destroyed) return conn;
  const turn = budget === undefined ? { queued: false, release: noopRelease } : budget.enter(key, begin);
  release = turn.release;
  if (turn.queued) count('handshakesQueued');
  // However it ends (secure, failed, cut at its deadline, or gone while waiting): its turn ends.
  socket.once('close', () => release());
  return conn;
}

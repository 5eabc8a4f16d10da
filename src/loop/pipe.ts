// The one connection shape every transport provides (model: nginx's ngx_connection_t, whose
// recv/send functions differ per transport while the HTTP code above never knows which). A
// protocol driver (src/http/connection.ts, src/binary/stream.ts) reads and writes through a
// BytePipe and nothing else: a net.Socket is one as it is, a tls.TLSSocket too (it extends
// net.Socket), and a WebSocket message stream is one through an adapter that turns messages
// into 'data' and writes into frames. The write side is what the Outbox needs (OutboxSocket).
import type { Socket } from 'node:net';
import type { OutboxSocket } from './outbox.js';

export interface BytePipe extends OutboxSocket {
  /** The peer's address; undefined for a Unix-socket peer (and for a TCP peer already gone). */
  readonly remoteAddress?: string | undefined;
  /** Our end has been ended (end() called). */
  readonly writableEnded: boolean;
  /** Bytes as they arrive; 'end' when the peer half-closed; 'close' once, after everything. */
  on(event: 'data', listener: (chunk: Buffer) => void): this;
  on(event: 'drain' | 'end' | 'close', listener: () => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  /** Removes a listener added with on() (a protocol handing the pipe to another one). */
  off(event: 'data', listener: (chunk: Buffer) => void): this;
  off(event: 'drain' | 'end' | 'close', listener: () => void): this;
  off(event: 'error', listener: (err: Error) => void): this;
  /** Delivers an 'end' again: the HTTP face hands a half-closed peer's upgrade on (src/http/types.ts UpgradeProtocol). */
  emit(event: 'end'): boolean;
  /** Stop / restart delivering 'data' (backpressure from the protocol to the peer). */
  pause(): this;
  resume(): this;
  isPaused(): boolean;
  /** Hold small writes until uncork(), so a burst of replies leaves in one segment. */
  cork(): void;
  uncork(): void;
  /** Tear the connection down now; 'close' follows. */
  destroy(err?: Error): this;
  /** TCP keep-alive probes; a no-op for transports without TCP beneath them. */
  setKeepAlive(enable?: boolean, initialDelayMs?: number): this;
}

/** True for loopback peers (127/8, ::1, ::ffff:127.x) and for peers with no address (Unix sockets). */
export function isLocalAddress(remote: string | undefined): boolean {
  if (remote === undefined) return true;
  return remote.startsWith('127.') || remote === '::1' || remote.startsWith('::ffff:127.');
}

/** A net.Socket (and so a tls.TLSSocket) is a BytePipe as it is; this fails to compile if not. */
export const socketAsPipe = (socket: Socket): BytePipe => socket;

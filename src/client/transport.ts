// What the MX/1 client runs over: a thin driver that sends and delivers whole MX/1 frames. TCP,
// Unix sockets and TLS carry frames as a byte stream (StreamTransport, below); WebSocket carries
// one frame per binary message (./ws.ts). The client (./client.ts) holds the requests and the
// events and never sees which one it runs on.
import type { Socket } from 'node:net';
import { FrameDecoder, WireError, type Frame } from '../wire/frame.js';
import { LocalCode, MuxError } from './errors.js';

export interface TransportHandlers {
  /** One MX/1 frame from the server; its payload may be a view of received bytes. */
  frame(frame: Frame): void;
  /**
   * The connection failed or the server ended it for a reason worth telling: `failure` is what
   * pending and later requests are rejected with; `cause` is what an 'error' listener is given
   * (the socket's own error, or `failure` itself). The transport destroys itself afterwards.
   */
  error(cause: Error, failure: MuxError): void;
  /** The server ended the connection in an orderly way (a WebSocket close 1000/1001): why. */
  ended?(failure: MuxError): void;
  /** The write buffer has room again. */
  drain(): void;
  /** Last call: the connection is gone. */
  close(hadError: boolean): void;
}

export interface Transport {
  /** Installs the handlers; frames already received are delivered from here on. Called once. */
  start(handlers: TransportHandlers): void;
  /**
   * Sends one MX/1 frame given as parts (header, payload) from encodeFrame. False when the write
   * buffer is over its high-water mark: wait for drain() before sending much more.
   */
  send(parts: readonly Buffer[]): boolean;
  /** Stops delivering frames and reading (a download sink is full); resume() takes up again. */
  pause(): void;
  resume(): void;
  /** Ends politely: a FIN, or the WebSocket closing handshake. close() follows. */
  end(): void;
  /** Ends at once. close() follows. */
  destroy(): void;
  /** True once the connection can send no more. */
  readonly destroyed: boolean;
  /** For messages: "127.0.0.1:9000", "ws://…", a socket path. */
  readonly where: string;
}

/**
 * What both drivers share: a socket beneath (TCP, Unix or TLS) and frames delivered by pump(),
 * which stops while a handler has paused delivery (a download sink is full). resume() delivers
 * what is already decoded before the socket reads again, so frames keep their order.
 */
export abstract class SocketTransport implements Transport {
  protected readonly socket: Socket;
  protected handlers: TransportHandlers | null = null;
  protected paused = false;
  readonly where: string;

  constructor(socket: Socket, where: string) {
    this.socket = socket;
    this.where = where;
    socket.setNoDelay(true);
  }

  abstract start(handlers: TransportHandlers): void;
  abstract send(parts: readonly Buffer[]): boolean;
  abstract end(): void;
  abstract destroy(): void;
  abstract get destroyed(): boolean;
  /** Delivers frames until none is complete, or until a handler pauses us (see more()). */
  protected abstract pump(): void;

  /** pump()'s loop condition: delivery is not paused and the socket is still there. */
  protected more(): boolean {
    return !this.paused && !this.socket.destroyed;
  }

  pause(): void {
    this.paused = true;
    this.socket.pause();
  }

  resume(): void {
    this.paused = false;
    this.pump();
    // A frame handler may have paused again.
    if (this.more()) this.socket.resume();
  }
}

/**
 * MX/1 over a byte stream (net.Socket or tls.TLSSocket): the frame decoder from src/wire cuts
 * frames out of the stream; one writev per frame.
 */
export class StreamTransport extends SocketTransport {
  private readonly decoder: FrameDecoder;

  constructor(socket: Socket, maxFrame: number, where: string) {
    super(socket, where);
    this.decoder = new FrameDecoder(maxFrame);
  }

  start(handlers: TransportHandlers): void {
    this.handlers = handlers;
    const socket = this.socket;
    socket.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      this.pump();
    });
    socket.on('error', (err: Error) => {
      handlers.error(err, new MuxError(LocalCode.CLOSED, `connection error: ${err.message}`));
    });
    socket.on('drain', () => handlers.drain());
    socket.on('close', (hadError: boolean) => handlers.close(hadError));
  }

  get destroyed(): boolean {
    return this.socket.destroyed || this.socket.writableEnded;
  }

  send(parts: readonly Buffer[]): boolean {
    const socket = this.socket;
    socket.cork();
    let flushed = true;
    for (const part of parts) flushed = socket.write(part);
    socket.uncork();
    return flushed;
  }

  end(): void {
    this.socket.end();
    // A paused socket never sees the server's FIN; reading is needed for 'close'.
    this.socket.resume();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Delivers decoded frames until none is complete, or until a handler pauses us. */
  protected pump(): void {
    const h = this.handlers;
    if (h === null) return;
    while (this.more()) {
      let frame: Frame | null;
      try {
        frame = this.decoder.next();
      } catch (err) {
        // The server's byte stream can no longer be framed: give up on the connection.
        const code = err instanceof WireError ? err.code : LocalCode.PROTOCOL;
        const failure = new MuxError(code, `bad frame from server: ${(err as Error).message}`);
        h.error(failure, failure);
        this.socket.destroy();
        return;
      }
      if (frame === null) return;
      h.frame(frame);
    }
  }
}

// The WebSocket side of the MX/1 load generator (RFC 6455), as light as its TCP mode: the opening
// handshake (src/ws's sans-IO client half), masked client frames encoded once per slot like the
// TCP mode's frames, and a deframer that strips the server's (unmasked) frame headers and hands
// the binary payload bytes straight to the MX/1 FrameScanner: one MX/1 frame per binary message,
// so the payloads of the binary frames, back to back, are exactly the MX/1 byte stream.
import { randomFillSync } from 'node:crypto';
import type { Socket } from 'node:net';
import { checkServerHandshake, clientHandshake, type ClientHandshake } from '../../src/ws/client-handshake.js';
import { ClientFrameEncoder } from '../../src/ws/sender.js';

export const WS_OP = { CONTINUATION: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;
export const DEFAULT_WS_PATH = '/.well-known/muxd/mx';
/** A server's handshake answer bigger than this is not one. */
const MAX_HEAD = 16 * 1024;

export interface WsEvents {
  /** Payload bytes of binary (and continuation) frames, in order: the MX/1 stream. */
  data(bytes: Buffer): void;
  /** A whole control frame (ping, pong, close) with its payload (at most 125 bytes). */
  control(opcode: number, payload: Buffer): void;
}

/**
 * Reads server frames (never masked, RFC 6455 §5.1). Headers split across chunks are assembled
 * in a 10-byte buffer; data payloads are forwarded as views into the pushed chunk, never copied.
 * A text frame, a masked frame or an RSV bit is thrown as an error: the server must not send them.
 */
export class WsDeframer {
  private readonly head = Buffer.alloc(10);
  private headFill = 0;
  private opcode = 0;
  private remaining = 0;
  private inPayload = false;
  private control: Buffer[] | null = null;

  constructor(private readonly on: WsEvents) {}

  push(chunk: Buffer): void {
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (!this.inPayload) {
        if (this.headFill === 0) {
          const size = headerSize(chunk, pos, end - pos);
          if (size > 0) {
            this.startFrame(chunk, pos);
            pos += size;
            if (this.remaining === 0) this.finish();
            continue;
          }
        }
        // Slow path: gather the header byte by byte until its size is known and complete.
        this.head[this.headFill++] = chunk[pos++]!;
        const size = headerSize(this.head, 0, this.headFill);
        if (size === 0) continue;
        this.headFill = 0;
        this.startFrame(this.head, 0);
        if (this.remaining === 0) this.finish();
        continue;
      }
      const take = Math.min(this.remaining, end - pos);
      const part = chunk.subarray(pos, pos + take);
      if (this.control !== null) this.control.push(part);
      else this.on.data(part);
      pos += take;
      this.remaining -= take;
      if (this.remaining === 0) this.finish();
    }
  }

  private startFrame(src: Buffer, at: number): void {
    const b0 = src[at]!;
    const b1 = src[at + 1]!;
    if ((b0 & 0x70) !== 0) throw new Error('ws: a server frame with an RSV bit set');
    if ((b1 & 0x80) !== 0) throw new Error('ws: a masked server frame');
    this.opcode = b0 & 0x0f;
    if (this.opcode === WS_OP.TEXT) throw new Error('ws: a text message (MX/1 is binary)');
    const len7 = b1 & 0x7f;
    this.remaining = len7 < 126 ? len7 : len7 === 126 ? src.readUInt16BE(at + 2) : src.readUInt32BE(at + 2) * 0x1_0000_0000 + src.readUInt32BE(at + 6);
    this.inPayload = true;
    this.control = this.opcode >= 0x8 ? [] : null;
  }

  private finish(): void {
    this.inPayload = false;
    const control = this.control;
    if (control === null) return;
    this.control = null;
    this.on.control(this.opcode, control.length === 1 ? control[0]! : Buffer.concat(control));
  }
}

/** The size of the frame header starting at `at` when `avail` bytes of it are there; 0 when incomplete. */
function headerSize(b: Buffer, at: number, avail: number): number {
  if (avail < 2) return 0;
  const len7 = b[at + 1]! & 0x7f;
  const size = len7 < 126 ? 2 : len7 === 126 ? 4 : 10;
  return avail >= size ? size : 0;
}

/** Masked client frames (RFC 6455 §5.3), keys from the CSPRNG. */
export function clientEncoder(): ClientFrameEncoder {
  return new ClientFrameEncoder((b) => randomFillSync(b));
}

/**
 * The opening handshake on a connected socket: writes the request, reads the 101 and checks it.
 * Resolves with the bytes that came right behind the head (the first frame bytes), if any.
 */
export function wsHandshake(socket: Socket, host: string, port: number, wsPath: string): Promise<Buffer> {
  const sent: ClientHandshake = clientHandshake({ host: `${host}:${port}`, path: wsPath, random: (b) => randomFillSync(b) });
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > MAX_HEAD) fail(new Error('ws: no end of the handshake answer in 16 KiB'));
        return;
      }
      cleanup();
      const { status, headers } = parseResponseHead(buf.toString('latin1', 0, end));
      const verdict = checkServerHandshake(status, headers, sent);
      if (!verdict.ok) return reject(new Error(`ws handshake to ${wsPath}: ${verdict.reason}`));
      resolve(buf.subarray(end + 4));
    };
    const onEnd = (): void => fail(new Error('ws: the server closed the connection during the handshake'));
    const fail = (e: Error): void => {
      cleanup();
      reject(e);
    };
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', fail);
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', fail);
    socket.write(sent.head);
  });
}

/** Status code and lower-cased header fields of a response head (without the blank line). */
export function parseResponseHead(head: string): { status: number; headers: [string, string][] } {
  const lines = head.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.push([line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()]);
  }
  return { status: m ? Number(m[1]) : 0, headers };
}

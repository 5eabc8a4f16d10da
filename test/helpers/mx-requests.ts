// What every MX/1 test client asks of its connection, whatever carries the frames (a raw socket,
// a WebSocket): a request and its reply by id, an expected ERROR, a push. Each client supplies
// send() and next().
import type { Frame } from '../../src/wire/frame.js';
import { decodeError } from '../../src/wire/payloads.js';
import { Type } from '../../src/wire/protocol.js';

export abstract class MxRequests {
  abstract send(type: number, id: number, payload?: Buffer): void;
  /** The next frame (already received or future) that matches; `what` names it in a timeout's message. */
  abstract next(match?: (f: Frame) => boolean, what?: string): Promise<Frame>;

  reply(id: number): Promise<Frame> {
    return this.next((f) => f.id === id && f.type !== Type.DATA, `the reply to id ${id}`);
  }

  /** Sends a request and waits for the frame with its id (reply or error). */
  async request(type: number, id: number, payload?: Buffer): Promise<Frame> {
    this.send(type, id, payload);
    return this.reply(id);
  }

  async expectError(type: number, id: number, payload?: Buffer): Promise<{ code: number; message: string }> {
    const f = await this.request(type, id, payload);
    if (f.type !== Type.ERROR) throw new Error(`expected ERROR, got type 0x${f.type.toString(16)}`);
    return decodeError(f.payload);
  }

  push(type: number): Promise<Frame> {
    return this.next((f) => f.type === type && f.id === 0, `a push of type 0x${type.toString(16)}`);
  }
}

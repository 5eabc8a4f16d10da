// The chat seam. A Room holds members as delivery sinks, not sockets: a TCP or Unix connection,
// a UDP peer, a member on another process or machine are all a ChatSink, so a new transport
// plugs in without touching the protocol core. LocalRoom is the room of one process.
//
// Rules every Room keeps (docs/protocol.md "Chat"): names unique under foldName; USER_JOINED to
// the others on join, USER_LEFT on leave or drop; one sender's messages reach every member in
// the order sent; the sender is not echoed; a member whose sink has more than the room's
// output limit unsent is dropped rather than buffered for ever.
import { ErrorCode, HEADER_SIZE, Type } from '../wire/protocol.js';
import { writeFrame } from '../wire/frame.js';
import { foldName } from './names.js';

/** A server push (id 0), encoded once and shared by every recipient. */
export interface Push {
  readonly type: number;
  /** The payload alone (a view into `frame`). */
  readonly payload: Buffer;
  /** The whole frame, header and payload: stream sinks write it as it is, datagram sinks send it. */
  readonly frame: Buffer;
}

export function encodePush(type: number, payload: Uint8Array): Push {
  const frame = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  writeFrame(frame, 0, type, 0, payload);
  return { type, payload: frame.subarray(HEADER_SIZE), frame };
}

/** Where a member's pushes go. Delivery is synchronous and must not re-enter the room. */
export interface ChatSink {
  deliver(push: Push): void;
  /** Pushed bytes the member has not taken yet (0 for datagrams): past the limit it is dropped. */
  backlog(): number;
  /** The room dropped this member (slow consumer): cut it off. It has already left. */
  dropped(reason: string): void;
}

export interface Member {
  readonly name: string;
  readonly key: string;
  readonly sink: ChatSink;
}

export type JoinResult =
  | { ok: true; member: Member; names: string[] }
  /** code: NAME_TAKEN (11), or CHAT_RELAY_UNAVAILABLE (52) for a room that spans processes. */
  | { ok: false; code: number; message: string };

export interface Room {
  /** Members now (this process's view). */
  readonly size: number;
  /**
   * Adds a member under an already validated name. The answer may come later (a relay may have
   * to ask another process whether the name is free): `done` is called exactly once, at once
   * for a local room. Names in JOIN_OK are the room's names, joiner included, in join order.
   */
  join(name: string, sink: ChatSink, done: (result: JoinResult) => void): void;
  /** Idempotent: leaving twice, or after a drop, does nothing. */
  leave(member: Member): void;
  /** `text` is validated UTF-8, 1..MAX_SAY_BYTES. */
  say(from: Member, text: Buffer): void;
  /** Pushes an ANNOUNCEMENT to every member; returns how many got it. */
  announce(text: string): number;
  /** Names in join order. */
  names(): string[];
}

export class LocalRoom implements Room {
  private readonly members = new Map<string, Member>();
  private readonly maxOutputBytes: number;
  private readonly onDrop: (member: Member) => void;
  /** Members found over the limit during a fan-out, dropped after it (drops fan out USER_LEFT too). */
  private readonly overflowing: Member[] = [];
  private dropping = false;

  constructor(maxOutputBytes: number, onDrop: (member: Member) => void = () => undefined) {
    this.maxOutputBytes = maxOutputBytes;
    this.onDrop = onDrop;
  }

  get size(): number {
    return this.members.size;
  }

  names(): string[] {
    return Array.from(this.members.values(), (m) => m.name);
  }

  join(name: string, sink: ChatSink, done: (result: JoinResult) => void): void {
    const key = foldName(name);
    if (this.members.has(key)) {
      done({ ok: false, code: ErrorCode.NAME_TAKEN, message: `name ${name} is taken` });
      return;
    }
    const member: Member = { name, key, sink };
    this.members.set(key, member);
    this.broadcast(encodePush(Type.USER_JOINED, Buffer.from(name, 'utf8')), member);
    // Not dropped by its own join's fan-out (it is excluded): it is still a member.
    done({ ok: true, member, names: this.names() });
  }

  leave(member: Member): void {
    if (this.members.get(member.key) !== member) return;
    this.members.delete(member.key);
    this.broadcast(encodePush(Type.USER_LEFT, Buffer.from(member.name, 'utf8')), null);
  }

  say(from: Member, text: Buffer): void {
    // The text is already validated UTF-8 bytes: reuse them, no decode/encode round trip.
    const name = Buffer.from(from.name, 'utf8');
    const payload = Buffer.allocUnsafe(2 + name.length + text.length);
    payload.writeUInt16BE(name.length, 0);
    name.copy(payload, 2);
    text.copy(payload, 2 + name.length);
    this.broadcast(encodePush(Type.MESSAGE, payload), from);
  }

  announce(text: string): number {
    return this.broadcast(encodePush(Type.ANNOUNCEMENT, Buffer.from(text, 'utf8')), null);
  }

  private broadcast(push: Push, except: Member | null): number {
    let sent = 0;
    for (const m of this.members.values()) {
      if (m === except) continue;
      m.sink.deliver(push);
      sent++;
      if (m.sink.backlog() > this.maxOutputBytes) this.overflowing.push(m);
    }
    this.dropOverflowing();
    return sent;
  }

  private dropOverflowing(): void {
    if (this.dropping) return;
    this.dropping = true;
    try {
      for (let m = this.overflowing.shift(); m !== undefined; m = this.overflowing.shift()) {
        if (this.members.get(m.key) !== m) continue;
        this.onDrop(m);
        this.leave(m);
        m.sink.dropped(`output backlog over ${this.maxOutputBytes} bytes`);
      }
    } finally {
      this.dropping = false;
    }
  }
}

// The chat room: one per server. Pushes are encoded once and the same Buffers written to every
// recipient; writes happen synchronously in frame order, so one sender's messages keep their order.
// A member whose unsent output grows past maxOutputBytes is dropped rather than buffered forever.
import type { Socket } from 'node:net';
import { encodeFrame } from '../wire/frame.js';
import { Type } from '../wire/protocol.js';
import { foldName } from './names.js';

export interface Member {
  readonly name: string;
  readonly key: string;
  readonly socket: Socket;
}

export class ChatRoom {
  private readonly members = new Map<string, Member>();
  private readonly maxOutputBytes: number;
  private readonly onDrop: (member: Member) => void;
  /** Members found over the limit during a fan-out, dropped after it (drops fan out USER_LEFT too). */
  private readonly overflowing: Member[] = [];
  private dropping = false;

  constructor(maxOutputBytes: number, onDrop: (member: Member) => void) {
    this.maxOutputBytes = maxOutputBytes;
    this.onDrop = onDrop;
  }

  get size(): number {
    return this.members.size;
  }

  has(name: string): boolean {
    return this.members.has(foldName(name));
  }

  /** Names in join order. */
  names(): string[] {
    return Array.from(this.members.values(), (m) => m.name);
  }

  /** Adds a member (caller validated the name) or returns null when the name is taken. */
  join(name: string, socket: Socket): Member | null {
    const key = foldName(name);
    if (this.members.has(key)) return null;
    const member: Member = { name, key, socket };
    this.members.set(key, member);
    this.broadcast(encodeFrame(Type.USER_JOINED, 0, Buffer.from(name, 'utf8')), member);
    return member;
  }

  leave(member: Member): void {
    if (this.members.get(member.key) !== member) return;
    this.members.delete(member.key);
    this.broadcast(encodeFrame(Type.USER_LEFT, 0, Buffer.from(member.name, 'utf8')), null);
  }

  say(from: Member, text: Buffer): void {
    // The text is already validated UTF-8 bytes: reuse them, no decode/encode round trip.
    const name = Buffer.from(from.name, 'utf8');
    const payload = Buffer.allocUnsafe(2 + name.length + text.length);
    payload.writeUInt16BE(name.length, 0);
    name.copy(payload, 2);
    text.copy(payload, 2 + name.length);
    this.broadcast(encodeFrame(Type.MESSAGE, 0, payload), from);
  }

  /** Pushes an ANNOUNCEMENT to every member; returns how many got it. */
  announce(text: string): number {
    return this.broadcast(encodeFrame(Type.ANNOUNCEMENT, 0, Buffer.from(text, 'utf8')), null);
  }

  private broadcast(frame: Buffer[], except: Member | null): number {
    let sent = 0;
    for (const m of this.members.values()) {
      if (m === except) continue;
      const s = m.socket;
      if (s.destroyed || !s.writable) continue;
      s.cork();
      for (const part of frame) s.write(part);
      s.uncork();
      sent++;
      if (s.writableLength > this.maxOutputBytes) this.overflowing.push(m);
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
        m.socket.destroy();
      }
    } finally {
      this.dropping = false;
    }
  }
}

// A one-process room with the Room seam's rules (names unique by foldName, the sender not echoed),
// for testing the UDP face without the MX/1 core.
import { writeFrame } from '../../src/wire/frame.js';
import { ErrorCode, HEADER_SIZE, Type } from '../../src/wire/protocol.js';
import { foldName } from '../../src/binary/names.js';
import type { ChatSink, JoinResult, Member, Push, Room } from '../../src/binary/udp/room-port.js';

function push(type: number, payload: Buffer): Push {
  const frame = Buffer.alloc(HEADER_SIZE + payload.length);
  writeFrame(frame, 0, type, 0, payload);
  return { type, payload: frame.subarray(HEADER_SIZE), frame };
}

export class FakeRoom implements Room {
  readonly members = new Map<string, Member>();
  get size(): number {
    return this.members.size;
  }
  names(): string[] {
    return [...this.members.values()].map((m) => m.name);
  }
  join(name: string, sink: ChatSink, done: (r: JoinResult) => void): void {
    const key = foldName(name);
    if (this.members.has(key)) return done({ ok: false, code: ErrorCode.NAME_TAKEN, message: `name ${name} is taken` });
    const m = { name, key, sink };
    this.members.set(key, m);
    this.fan(push(Type.USER_JOINED, Buffer.from(name)), m);
    done({ ok: true, member: m, names: this.names() });
  }
  leave(m: Member): void {
    if (this.members.get(m.key) !== m) return;
    this.members.delete(m.key);
    this.fan(push(Type.USER_LEFT, Buffer.from(m.name)), null);
  }
  say(from: Member, text: Buffer): void {
    const n = Buffer.from(from.name);
    const p = Buffer.alloc(2 + n.length + text.length);
    p.writeUInt16BE(n.length, 0);
    n.copy(p, 2);
    text.copy(p, 2 + n.length);
    this.fan(push(Type.MESSAGE, p), from);
  }
  announce(text: string): number {
    return this.fan(push(Type.ANNOUNCEMENT, Buffer.from(text)), null);
  }
  private fan(p: Push, except: Member | null): number {
    let n = 0;
    for (const m of this.members.values()) {
      if (m === except) continue;
      m.sink.deliver(p);
      n++;
    }
    return n;
  }
}

/** A TCP-like member: records what it is pushed. */
export class RecordingSink implements ChatSink {
  readonly pushes: { type: number; payload: string }[] = [];
  deliver(p: Push): void {
    this.pushes.push({ type: p.type, payload: p.payload.toString('utf8') });
  }
  backlog(): number {
    return 0;
  }
  dropped(): void {}
}

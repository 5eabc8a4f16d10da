// The chat room of one serving process when the room spans processes: a Room (room.ts)
// whose members are this process's sinks, and whose every change goes up to a hub and comes back
// down in the hub's order. Nothing is delivered on the way up: the sender's own worker hears its
// message when every other process does, so all members see one order of events.
//
// Sans-IO: requests leave through `up`, the hub's events come in through apply(); no socket,
// timer or IPC here (test/chat/relayed-room.test.ts drives it with tables).
import { encodePush, type ChatSink, type JoinResult, type Member, type Push, type Room } from './room.js';
import { foldName } from './names.js';
import { Type } from '../wire/protocol.js';
import type { ChatDown, ChatUp } from './events.js';

interface LocalMember extends Member {
  /** Number within this process, carried by the hub as `origin`. */
  readonly m: number;
}

interface PendingJoin {
  name: string;
  sink: ChatSink;
  done: (result: JoinResult) => void;
}

export class RelayedRoom implements Room {
  /** This process's members, by member number. */
  private readonly members = new Map<number, LocalMember>();
  private readonly pending = new Map<number, PendingJoin>();
  /** The whole room as the hub last told it: fold key -> name, in join order. */
  private readonly roster = new Map<string, string>();
  private nextM = 0;
  private readonly overflowing: LocalMember[] = [];

  constructor(
    private readonly up: (request: ChatUp) => void,
    private readonly maxOutputBytes: number,
    /** A member was cut off: `slow` for an output backlog, else its name was lost by the relay. */
    private readonly onDrop: (member: Member, reason: string, slow: boolean) => void = () => undefined,
  ) {}

  /** The whole room (every process), as the hub last told it. */
  get size(): number {
    return this.roster.size;
  }

  /** Members served by this process. */
  get localSize(): number {
    return this.members.size;
  }

  names(): string[] {
    return [...this.roster.values()];
  }

  join(name: string, sink: ChatSink, done: (result: JoinResult) => void): void {
    const m = ++this.nextM;
    this.pending.set(m, { name, sink, done });
    this.up({ c: 'join', m, name });
  }

  leave(member: Member): void {
    const m = (member as LocalMember).m;
    if (this.members.get(m) !== member) return;
    this.members.delete(m);
    this.up({ c: 'leave', m });
  }

  say(from: Member, text: Buffer): void {
    const m = (from as LocalMember).m;
    if (this.members.get(m) !== from) return;
    // Validated UTF-8 (MxCore checked it): the string round trip is lossless.
    this.up({ c: 'say', m, text: text.toString('utf8') });
  }

  /** Returns the size of the whole room: the announcement reaches all of it through the hub. */
  announce(text: string): number {
    this.up({ c: 'announce', text });
    return this.roster.size;
  }

  /** One event from the hub, in the hub's order. */
  apply(event: ChatDown): void {
    switch (event.c) {
      case 'roster':
        return this.resync(event.names);
      case 'joined': {
        this.roster.set(foldName(event.name), event.name);
        const pending = event.origin === undefined ? undefined : this.pending.get(event.origin);
        const push = encodePush(Type.USER_JOINED, Buffer.from(event.name, 'utf8'));
        if (pending === undefined || event.origin === undefined) {
          this.broadcast(push, 0);
          return;
        }
        this.pending.delete(event.origin);
        const member: LocalMember = { name: pending.name, key: foldName(pending.name), sink: pending.sink, m: event.origin };
        this.broadcast(push, 0);
        this.members.set(member.m, member);
        pending.done({ ok: true, member, names: this.names() });
        return;
      }
      case 'left': {
        const key = foldName(event.name);
        this.roster.delete(key);
        if (event.origin === undefined) this.evict(key, 'the chat relay no longer holds this name');
        this.broadcast(encodePush(Type.USER_LEFT, Buffer.from(event.name, 'utf8')), 0);
        return;
      }
      case 'said': {
        const name = Buffer.from(event.name, 'utf8');
        const text = Buffer.from(event.text, 'utf8');
        const payload = Buffer.allocUnsafe(2 + name.length + text.length);
        payload.writeUInt16BE(name.length, 0);
        name.copy(payload, 2);
        text.copy(payload, 2 + name.length);
        this.broadcast(encodePush(Type.MESSAGE, payload), event.origin ?? 0);
        return;
      }
      case 'announced':
        this.broadcast(encodePush(Type.ANNOUNCEMENT, Buffer.from(event.text, 'utf8')), 0);
        return;
      case 'refused': {
        const pending = this.pending.get(event.m);
        if (pending === undefined) return;
        this.pending.delete(event.m);
        pending.done({ ok: false, code: event.code, message: event.message });
        return;
      }
    }
  }

  /** The hub's whole view replaces ours; a local member it does not list has lost its name. */
  private resync(names: string[]): void {
    this.roster.clear();
    for (const name of names) this.roster.set(foldName(name), name);
    for (const member of [...this.members.values()]) {
      if (!this.roster.has(member.key)) this.evict(member.key, 'the chat relay no longer holds this name');
    }
  }

  /** A local member whose name the hub dropped without being asked (a lost claim): cut it off. */
  private evict(key: string, reason: string): void {
    for (const member of this.members.values()) {
      if (member.key !== key) continue;
      this.members.delete(member.m);
      this.onDrop(member, reason, false);
      member.sink.dropped(reason);
      return;
    }
  }

  /** Delivers to every local member but `except` (a member number; 0 = none); drops slow ones. */
  private broadcast(push: Push, except: number): void {
    for (const member of this.members.values()) {
      if (member.m === except) continue;
      member.sink.deliver(push);
      if (member.sink.backlog() > this.maxOutputBytes) this.overflowing.push(member);
    }
    for (let member = this.overflowing.shift(); member !== undefined; member = this.overflowing.shift()) {
      if (this.members.get(member.m) !== member) continue;
      const reason = `output backlog over ${this.maxOutputBytes} bytes`;
      this.members.delete(member.m);
      this.onDrop(member, reason, true);
      member.sink.dropped(reason);
      // The others hear USER_LEFT when the hub sends the leave back down.
      this.up({ c: 'leave', m: member.m });
    }
  }
}

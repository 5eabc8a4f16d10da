// The hub of a chat room shared by the workers of one server: it runs in the cluster primary,
// decides who holds each name (first request to arrive wins) and sends every event to every
// worker in the one order it handled them. Pure: owners (workers) are numbers, output goes
// through `send`; the primary wires it to IPC (test/chat/relayed-room.test.ts drives it directly).
import { foldName } from './names.js';
import { ErrorCode } from '../wire/protocol.js';
import type { ChatDown, ChatUp } from './events.js';

export interface HubOutput {
  /** Delivers one event to one owner (a worker), in call order. */
  send(owner: number, event: ChatDown): void;
}

interface Holder {
  name: string;
  owner: number;
  m: number;
}

/** What every hub offers the primary (LocalArbiter here; the Redis relay too). */
export interface ChatHub {
  /** An owner started: it is sent the roster, then every later event. */
  attach(owner: number): void;
  /** An owner is gone (a worker exited, crashed included): its members leave. */
  detach(owner: number): void;
  handle(owner: number, request: ChatUp): void;
  /** An announcement from the operator's terminal. */
  announce(text: string): void;
  /** Members in the whole room. */
  readonly size: number;
  /** For STATS: what the relay is doing. */
  state(): Record<string, unknown>;
  close(): Promise<void>;
}

export class LocalArbiter implements ChatHub {
  /** fold key -> holder, in join order. */
  private readonly holders = new Map<string, Holder>();
  /** owner -> (member number -> fold key). */
  private readonly byOwner = new Map<number, Map<number, string>>();

  constructor(private readonly out: HubOutput) {}

  get size(): number {
    return this.holders.size;
  }

  attach(owner: number): void {
    if (this.byOwner.has(owner)) return;
    this.byOwner.set(owner, new Map());
    this.out.send(owner, { c: 'roster', names: this.names() });
  }

  detach(owner: number): void {
    const members = this.byOwner.get(owner);
    if (members === undefined) return;
    this.byOwner.delete(owner);
    for (const key of members.values()) {
      const holder = this.holders.get(key);
      if (holder === undefined) continue;
      this.holders.delete(key);
      this.broadcast({ c: 'left', name: holder.name }, -1, 0);
    }
  }

  handle(owner: number, request: ChatUp): void {
    if (!this.byOwner.has(owner)) this.attach(owner);
    const members = this.byOwner.get(owner)!;
    switch (request.c) {
      case 'join': {
        if (members.has(request.m)) return; // a repeated request: the first is being answered
        const key = foldName(request.name);
        if (this.holders.has(key)) {
          this.out.send(owner, { c: 'refused', m: request.m, code: ErrorCode.NAME_TAKEN, message: `name ${request.name} is taken` });
          return;
        }
        this.holders.set(key, { name: request.name, owner, m: request.m });
        members.set(request.m, key);
        this.broadcast({ c: 'joined', name: request.name }, owner, request.m);
        return;
      }
      case 'leave': {
        const key = members.get(request.m);
        if (key === undefined) return;
        members.delete(request.m);
        const holder = this.holders.get(key);
        if (holder === undefined) return;
        this.holders.delete(key);
        this.broadcast({ c: 'left', name: holder.name }, owner, request.m);
        return;
      }
      case 'say': {
        // Only a member of this owner speaks under its name.
        const key = members.get(request.m);
        const holder = key === undefined ? undefined : this.holders.get(key);
        if (holder === undefined) return;
        this.broadcast({ c: 'said', name: holder.name, text: request.text }, owner, request.m);
        return;
      }
      case 'announce':
        this.announce(request.text);
        return;
    }
  }

  announce(text: string): void {
    this.broadcast({ c: 'announced', text }, -1, 0);
  }

  names(): string[] {
    return Array.from(this.holders.values(), (h) => h.name);
  }

  state(): Record<string, unknown> {
    return { mode: 'workers', members: this.holders.size };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** The origin owner's copy names its member; the others' do not. */
  private broadcast(event: ChatDown, origin: number, m: number): void {
    for (const owner of this.byOwner.keys()) this.out.send(owner, owner === origin ? ({ ...event, origin: m } as ChatDown) : event);
  }
}

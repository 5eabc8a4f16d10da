// The part of the chat Room the UDP face uses. Structurally the Room / ChatSink seam of the MX/1
// core (src/binary/room.ts on branch mx-core): any Room that keeps these rules serves TCP and UDP
// members alike. Replaced by an import of that module once it is merged.
export interface Push {
  readonly type: number;
  readonly payload: Buffer;
  /** The whole frame, header and payload: a datagram sink sends it as it is. */
  readonly frame: Buffer;
}

export interface ChatSink {
  deliver(push: Push): void;
  backlog(): number;
  dropped(reason: string): void;
}

export interface Member {
  readonly name: string;
  readonly key: string;
  readonly sink: ChatSink;
}

export type JoinResult = { ok: true; member: Member; names: string[] } | { ok: false; code: number; message: string };

export interface Room {
  readonly size: number;
  join(name: string, sink: ChatSink, done: (result: JoinResult) => void): void;
  leave(member: Member): void;
  say(from: Member, text: Buffer): void;
  announce(text: string): number;
  names(): string[];
}

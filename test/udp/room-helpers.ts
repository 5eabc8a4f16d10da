// Helpers for the UDP tests: the real room of one process, and a TCP-like member that records
// what it is pushed.
import { LocalRoom, type ChatSink, type Member, type Push } from '../../src/chat/room.js';

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

/** A LocalRoom with one recording member already in it. */
export function roomWith(name: string): { room: LocalRoom; sink: RecordingSink; member: Member } {
  const room = new LocalRoom(4 * 1024 * 1024);
  const sink = new RecordingSink();
  let member: Member | null = null;
  room.join(name, sink, (r) => {
    if (r.ok) member = r.member;
  });
  if (member === null) throw new Error('join failed');
  return { room, sink, member };
}

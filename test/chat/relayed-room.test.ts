// The room across processes without processes: RelayedRooms wired to a LocalArbiter in memory,
// with a queue standing in for IPC (so messages arrive later, in order, as over a channel) and
// recording sinks standing in for sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChatSink, JoinResult, Member, Push } from '../../src/chat/room.js';
import { LocalArbiter } from '../../src/chat/arbiter.js';
import type { ChatDown, ChatUp } from '../../src/chat/events.js';
import { RelayedRoom } from '../../src/chat/relayed-room.js';
import { ErrorCode, Type } from '../../src/wire/protocol.js';

class Sink implements ChatSink {
  readonly got: string[] = [];
  dropReason: string | null = null;
  backlogBytes = 0;
  deliver(push: Push): void {
    const p = push.payload;
    switch (push.type) {
      case Type.USER_JOINED:
        this.got.push(`joined ${p.toString('utf8')}`);
        break;
      case Type.USER_LEFT:
        this.got.push(`left ${p.toString('utf8')}`);
        break;
      case Type.MESSAGE: {
        const n = p.readUInt16BE(0);
        this.got.push(`${p.toString('utf8', 2, 2 + n)}: ${p.toString('utf8', 2 + n)}`);
        break;
      }
      case Type.ANNOUNCEMENT:
        this.got.push(`announce ${p.toString('utf8')}`);
        break;
    }
  }
  backlog(): number {
    return this.backlogBytes;
  }
  dropped(reason: string): void {
    this.dropReason = reason;
  }
}

/** N processes' rooms around one hub; `flush` delivers everything queued, in order. */
function cluster(n: number, maxOutput = 1 << 20) {
  const queue: (() => void)[] = [];
  const rooms: RelayedRoom[] = [];
  const hub = new LocalArbiter({ send: (owner: number, down: ChatDown) => queue.push(() => rooms[owner]!.apply(down)) });
  for (let i = 0; i < n; i++) {
    const owner = i;
    rooms.push(new RelayedRoom((up: ChatUp) => queue.push(() => hub.handle(owner, up)), maxOutput));
    hub.attach(owner);
  }
  const flush = (): void => {
    for (let step = queue.shift(); step !== undefined; step = queue.shift()) step();
  };
  flush();
  const join = (room: number, name: string, sink = new Sink()): { sink: Sink; result: () => JoinResult | null } => {
    let result: JoinResult | null = null;
    rooms[room]!.join(name, sink, (r) => (result = r));
    return { sink, result: () => result };
  };
  return { hub, rooms, flush, join };
}

function member(r: JoinResult | null): Member {
  assert.ok(r !== null && r.ok, `joined: ${JSON.stringify(r)}`);
  return r.member;
}

test('members on different processes see each other join, talk and leave; the sender is not echoed', () => {
  const { rooms, flush, join } = cluster(2);
  const ada = join(0, 'ada');
  flush();
  const bob = join(1, 'bob');
  flush();
  assert.deepEqual((bob.result() as { names: string[] }).names, ['ada', 'bob']);
  rooms[0]!.say(member(ada.result()), Buffer.from('hi'));
  rooms[1]!.say(member(bob.result()), Buffer.from('hello'));
  flush();
  rooms[1]!.leave(member(bob.result()));
  flush();
  assert.deepEqual(ada.sink.got, ['joined bob', 'bob: hello', 'left bob']);
  assert.deepEqual(bob.sink.got, ['ada: hi']);
  assert.deepEqual(rooms[0]!.names(), ['ada']);
  assert.equal(rooms[1]!.size, 1);
});

test('names are unique across processes: of two racing joins, the first to reach the hub wins', () => {
  const { flush, join } = cluster(2);
  const a = join(0, 'Ada');
  const b = join(1, 'ADA');
  flush();
  assert.equal(a.result()?.ok, true);
  assert.deepEqual(b.result(), { ok: false, code: ErrorCode.NAME_TAKEN, message: 'name ADA is taken' });
});

test('a name is free again once its holder left', () => {
  const { rooms, flush, join } = cluster(2);
  const a = join(0, 'ada');
  flush();
  rooms[0]!.leave(member(a.result()));
  const b = join(1, 'ada');
  flush();
  assert.equal(b.result()?.ok, true);
});

test('every member sees every event once, in one order shared by all', () => {
  const { rooms, flush, join } = cluster(3);
  const people = [join(0, 'a'), join(1, 'b'), join(2, 'c'), join(0, 'd')];
  flush();
  const members = people.map((p) => member(p.result()));
  const owner = [0, 1, 2, 0];
  // Interleaved senders on every process, before the hub has seen any of it.
  for (let i = 0; i < 20; i++) for (let s = 0; s < 4; s++) rooms[owner[s]!]!.say(members[s]!, Buffer.from(`${i}`));
  rooms[1]!.announce('news');
  flush();
  const messages = people.map((p) => p.sink.got.filter((g) => !g.startsWith('joined')));
  for (let s = 0; s < 4; s++) {
    const got = messages[s]!;
    assert.equal(got.length, 3 * 20 + 1, `member ${s}`);
    assert.equal(got.filter((g) => g === 'announce news').length, 1);
    // Each other sender's messages in the order sent.
    for (let t = 0; t < 4; t++) {
      if (t === s) continue;
      const from = got.filter((g) => g.startsWith(`${'abcd'[t]}: `)).map((g) => Number(g.split(': ')[1]));
      assert.deepEqual(from, Array.from({ length: 20 }, (_, i) => i));
    }
  }
  // One order: any two members agree on the relative order of the messages both received.
  const common = (x: string[], y: string[]) => x.filter((g) => y.includes(g));
  assert.deepEqual(common(messages[0]!, messages[1]!), common(messages[1]!, messages[0]!));
  assert.deepEqual(common(messages[2]!, messages[3]!), common(messages[3]!, messages[2]!));
});

test('a process that goes away: its members are announced as left and their names are free', () => {
  const { hub, rooms, flush, join } = cluster(2);
  const a = join(0, 'ada');
  const b = join(1, 'bob');
  flush();
  hub.detach(1);
  flush();
  assert.deepEqual(a.sink.got, ['joined bob', 'left bob']);
  assert.deepEqual(rooms[0]!.names(), ['ada']);
  assert.equal(hub.size, 1);
  assert.equal(b.result()?.ok, true);
});

test('a new process first hears the room as it stands', () => {
  const out: [number, ChatDown][] = [];
  const hub = new LocalArbiter({ send: (o, d) => out.push([o, d]) });
  hub.attach(1);
  hub.handle(1, { c: 'join', m: 1, name: 'ada' });
  out.length = 0;
  hub.attach(7);
  assert.deepEqual(out, [[7, { c: 'roster', names: ['ada'] }]]);
});

test('a slow member is dropped on its own process; the others hear it leave', () => {
  const { rooms, flush, join } = cluster(2, 100);
  const slow = join(0, 'slow');
  const ada = join(1, 'ada');
  flush();
  slow.sink.backlogBytes = 101;
  rooms[1]!.say(member(ada.result()), Buffer.from('x'));
  flush();
  assert.match(slow.sink.dropReason ?? '', /output backlog over 100 bytes/);
  assert.deepEqual(ada.sink.got, ['left slow']);
  assert.deepEqual(rooms[1]!.names(), ['ada']);
});

test('the hub refuses a say from a member it does not know, and a second join of one member number', () => {
  const out: [number, ChatDown][] = [];
  const hub = new LocalArbiter({ send: (o, d) => out.push([o, d]) });
  hub.attach(1);
  hub.attach(2);
  out.length = 0;
  hub.handle(1, { c: 'say', m: 5, text: 'spoof' });
  assert.deepEqual(out, []);
  hub.handle(1, { c: 'join', m: 5, name: 'ada' });
  hub.handle(1, { c: 'join', m: 5, name: 'eve' });
  assert.deepEqual(out, [
    [1, { c: 'joined', name: 'ada', origin: 5 }],
    [2, { c: 'joined', name: 'ada' }],
  ]);
});

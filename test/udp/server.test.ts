// The UDP driver with real datagrams on loopback (the room is a stand-in here; serve.test.ts
// runs the real one with TCP members): bad datagrams, the cookie round trip through the client,
// address spoofing, member timeout, and the client's resends.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { Metrics } from '../../src/loop/metrics.js';
import { writeFrame } from '../../src/wire/frame.js';
import { decodeError } from '../../src/wire/payloads.js';
import { ErrorCode, Type } from '../../src/wire/protocol.js';
import { cookieFromError, encodeUdpJoin } from '../../src/wire/udp.js';
import { connectUdp, MuxError } from '../../src/client/index.js';
import { startUdpServer, type UdpServer } from '../../src/binary/udp/server.js';
import { roomWith } from './room-helpers.js';

function frame(type: number, id: number, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const p = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const b = Buffer.alloc(12 + p.length);
  writeFrame(b, 0, type, id, p);
  return b;
}

/** A raw UDP peer that records every datagram it receives. */
class Peer {
  readonly got: Buffer[] = [];
  private waiters: (() => void)[] = [];
  private constructor(readonly socket: dgram.Socket) {
    socket.on('message', (m: Buffer) => {
      this.got.push(m);
      for (const w of this.waiters.splice(0)) w();
    });
  }
  static async open(address = '127.0.0.1'): Promise<Peer> {
    const s = dgram.createSocket('udp4');
    s.bind(0, address);
    await once(s, 'listening');
    return new Peer(s);
  }
  get port(): number {
    return this.socket.address().port;
  }
  send(d: Buffer, port: number): void {
    this.socket.send(d, port, '127.0.0.1');
  }
  /** The next datagram (or null after `ms`). */
  async next(ms = 3000): Promise<Buffer | null> {
    const seen = this.got.length;
    const deadline = Date.now() + ms;
    while (this.got.length === seen && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, deadline - Date.now());
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.got.length > seen ? this.got[seen]! : null;
  }
  get bytes(): number {
    return this.got.reduce((n, d) => n + d.length, 0);
  }
  close(): void {
    this.socket.close();
  }
}

let server: UdpServer;
const { room, sink: tcp, member: bob } = roomWith('tcpbob');
const metrics = new Metrics();

before(async () => {
  server = await startUdpServer({
    host: '127.0.0.1',
    port: 0,
    room,
    metrics,
    adminDigest: null,
    stats: () => Buffer.from(JSON.stringify({ ...metrics.snapshot(), chatUsers: room.size })),
    memberTimeoutMs: 1500,
    maxMembers: 100,
    log: () => undefined,
  });
});

after(async () => {
  await server.close();
  metrics.close();
});

test('malformed datagrams get ERROR 1/2/4 and the server keeps going', async () => {
  const p = await Peer.open();
  try {
    const cases: [string, Buffer, number, number][] = [
      ['bad magic', Buffer.from('GET / HTTP/1.0\r\n\r\n'), ErrorCode.BAD_MAGIC_OR_VERSION, 0],
      ['bad version', Buffer.from('4d580201000000070000000000000000', 'hex'), ErrorCode.BAD_MAGIC_OR_VERSION, 0],
      ['short header', Buffer.from('4d58010100000007000000', 'hex'), ErrorCode.MALFORMED, 0],
      ['length too large', Buffer.from('4d5801010000000700ffffff', 'hex'), ErrorCode.FRAME_TOO_LARGE, 7],
      ['length beyond the datagram', Buffer.from('4d58010100000008000000206869', 'hex'), ErrorCode.MALFORMED, 8],
      ['trailing bytes', Buffer.concat([frame(Type.PING, 9, 'x'), Buffer.from('junk')]), ErrorCode.MALFORMED, 9],
    ];
    for (const [what, d, code, id] of cases) {
      p.send(d, server.port);
      const r = await p.next();
      assert.ok(r, `${what}: no answer`);
      assert.equal(r[3], Type.ERROR, what);
      assert.equal(r.readUInt32BE(4), id, what);
      assert.equal(decodeError(r.subarray(12)).code, code, what);
    }
    // A reply type is never answered (loop protection); a PING still is.
    p.send(frame(Type.PING_OK, 10, 'x'), server.port);
    p.send(frame(Type.PING, 11, 'still here'), server.port);
    const r = await p.next();
    assert.equal(r![3], Type.PING_OK);
    assert.equal(r!.readUInt32BE(4), 11);
    assert.equal(r!.subarray(12).toString(), 'still here');
  } finally {
    p.close();
  }
});

test('the client does the cookie round trip; a UDP member and a TCP member chat both ways', async () => {
  const c = await connectUdp({ port: server.port, timeoutMs: 3000 });
  try {
    assert.deepEqual(await c.join('ada'), ['tcpbob', 'ada']);
    assert.deepEqual(tcp.pushes.at(-1), { type: Type.USER_JOINED, payload: 'ada' });
    const got = once(c, 'message');
    room.say(bob, Buffer.from('hi ada'));
    assert.deepEqual(await got, ['tcpbob', 'hi ada']);
    await c.say('hi bob');
    assert.equal(tcp.pushes.at(-1)!.type, Type.MESSAGE);
    const stats = await c.stats();
    assert.equal(typeof stats.uptimeSeconds, 'number');
    assert.deepEqual(await c.names(), ['tcpbob', 'ada']);
    await c.leave();
    assert.deepEqual(tcp.pushes.at(-1), { type: Type.USER_LEFT, payload: 'ada' });
  } finally {
    await c.close();
  }
  assert.ok((metrics.counters['udp.cookiesSent'] ?? 0) >= 1);
});

test('spoofing: a JOIN "from" a victim never makes the server push chat traffic to it', async () => {
  const victim = await Peer.open('127.0.0.1');
  const attacker = await Peer.open('127.0.0.2');
  try {
    // The attacker's own cookie is no good for the victim's address.
    attacker.send(frame(Type.JOIN, 1, 'mallory'), server.port);
    const e = await attacker.next();
    const cookie = cookieFromError(e!.subarray(12));
    assert.ok(cookie);
    // What a forged source address would deliver: JOINs that appear to come from the victim.
    const sentBytes: number[] = [];
    for (const [id, p] of [[1, encodeUdpJoin('victim', null)], [2, encodeUdpJoin('victim', cookie)]] as const) {
      const d = frame(Type.JOIN, id, p);
      sentBytes.push(d.length);
      victim.send(d, server.port);
      await victim.next();
    }
    // Chat traffic flows in the room meanwhile.
    for (let k = 0; k < 20; k++) room.say(bob, Buffer.from('a fairly long chat message to amplify '.repeat(10)));
    room.announce('an announcement');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(victim.got.length, 2, 'two small ERROR 15s, nothing more');
    for (const d of victim.got) assert.equal(decodeError(d.subarray(12)).code, ErrorCode.COOKIE_REQUIRED);
    const inBytes = sentBytes.reduce((a, b) => a + b, 0);
    assert.ok(victim.bytes <= 3 * inBytes, `${victim.bytes} bytes sent for ${inBytes} received`);
    assert.ok(!room.names().includes('victim'));
  } finally {
    victim.close();
    attacker.close();
  }
});

test('a silent member leaves after --udp-member-timeout: USER_LEFT to the others', async () => {
  const c = await connectUdp({ port: server.port, timeoutMs: 3000, keepaliveMs: 60_000 });
  try {
    await c.join('sleepy');
    assert.ok(room.names().includes('sleepy'));
    const deadline = Date.now() + 10_000;
    while (room.names().includes('sleepy') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.ok(!room.names().includes('sleepy'), 'still a member after the timeout');
    assert.deepEqual(tcp.pushes.at(-1), { type: Type.USER_LEFT, payload: 'sleepy' });
  } finally {
    await c.close();
  }
});

test('keepalive PINGs keep a joined client a member past the timeout', async () => {
  const c = await connectUdp({ port: server.port, timeoutMs: 3000, keepaliveMs: 300 });
  try {
    await c.join('awake');
    await new Promise((r) => setTimeout(r, 3500));
    assert.ok(room.names().includes('awake'));
  } finally {
    await c.close();
  }
  // close() sent a LEAVE: gone without waiting for the timeout.
  const deadline = Date.now() + 2000;
  while (room.names().includes('awake') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(!room.names().includes('awake'));
});

test('the client resends an unanswered request with the same id, and times out in the end', async () => {
  // A fake server that drops the first copy of every request and answers the second.
  const fake = await Peer.open();
  const seen = new Map<number, number>();
  fake.socket.on('message', (m: Buffer, r: dgram.RemoteInfo) => {
    const id = m.readUInt32BE(4);
    seen.set(id, (seen.get(id) ?? 0) + 1);
    if (seen.get(id) === 2 && m[3] !== Type.SAY) fake.socket.send(frame(m[3]! | 0x80, id, m.subarray(12)), r.port, r.address);
  });
  const c = await connectUdp({ port: fake.port, timeoutMs: 1000, retries: 4 });
  try {
    assert.equal((await c.ping(Buffer.from('x'))).toString(), 'x');
    assert.ok(seen.get(1)! >= 2, 'resent with the same id');
    // SAY is resent too, but this server never answers it.
    await assert.rejects(c.say('lost'), (err: unknown) => err instanceof MuxError && err.code === -1);
    assert.equal(seen.get(2), 5, '1 + 4 retries');
    // ANNOUNCE is never resent.
    await assert.rejects(c.announce('t', 'x'), (err: unknown) => err instanceof MuxError && err.code === -1);
    assert.equal(seen.get(3), 1);
  } finally {
    await c.close();
    fake.close();
  }
});

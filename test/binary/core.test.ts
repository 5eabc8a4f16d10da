// MxCore without a socket: frame vector tables (request frames in, frames and effects out), the
// store's results fed back by hand as events. Every rule of the protocol core is checked here with bytes
// alone; the raw-socket tests next to this one check the stream driver around it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { SlotBudget } from '../../src/loop/budget.js';
import { Metrics } from '../../src/loop/metrics.js';
import { MxCore, AUTH_LOCKOUT_MS, SHUTDOWN_NOTICE, type CoreConfig, type Output, type Transport } from '../../src/binary/core.js';
import { statsSource } from '../../src/binary/stats.js';
import type { FileEffect, FileEvent, TransfersConfig } from '../../src/binary/transfers.js';
import { LocalRoom, type ChatSink, type Push, type Room } from '../../src/chat/room.js';
import { StoreError } from '../../src/store/files.js';
import * as P from '../../src/wire/payloads.js';
import { ErrorCode, Type } from '../../src/wire/protocol.js';

const sha = (b: Buffer | string): Buffer => createHash('sha256').update(b).digest();
const metrics = new Metrics();
test.after(() => metrics.close());

interface Out {
  type: number;
  id: number;
  payload: Buffer;
}

/** An Output that records frames; effects are polled from the core's transfers part and written as text. */
class FakeIO implements Output {
  readonly out: Out[] = [];
  readonly pushes: Push[] = [];
  core: MxCore | null = null;
  sentBytes = 0;
  backlogBytes = 0;
  droppedWith: string | null = null;
  readonly sink: ChatSink = {
    deliver: (p) => this.pushes.push(p),
    backlog: () => this.backlogBytes,
    dropped: (reason) => {
      this.droppedWith = reason;
    },
  };
  send(type: number, id: number, payload?: Buffer): void {
    this.out.push({ type, id, payload: Buffer.from(payload ?? Buffer.alloc(0)) });
  }
  error(id: number, code: number, message: string): void {
    this.send(Type.ERROR, id, P.encodeError(code, message));
  }
  /** Frames as [type, id] pairs, cleared. */
  take(): Out[] {
    return this.out.splice(0);
  }
  /** The effects queued since the last call, as text. */
  takeEffects(): string[] {
    const files = this.core?.files;
    const out: string[] = [];
    if (!files) return out;
    for (let e = files.poll(); e !== undefined; e = files.poll()) out.push(describe(e));
    return out;
  }
}

function describe(e: FileEffect): string {
  switch (e.kind) {
    case 'open':
      return `openRead ${e.t} ${e.name}`;
    case 'send':
      return `send ${e.t} ${e.id} ${e.position} ${e.end}`;
    case 'close':
      return `closeRead ${e.t}`;
    case 'list':
      return `list ${e.t}`;
    case 'begin':
      return `beginUpload ${e.t} ${e.name} ${e.size}`;
    case 'write':
      return `writeUpload ${e.t} ${e.bytes.length}`;
    case 'commit':
      return `commitUpload ${e.t}`;
    case 'abort':
      return `abortUpload ${e.t}`;
  }
}

/** Feeds a driver's result back to the core's transfers part. */
function ev(core: MxCore, event: FileEvent, now = 0): void {
  core.files!.handle(event, now);
}

type Cfg = CoreConfig & TransfersConfig;

function config(over: Partial<Cfg> = {}): Cfg {
  return {
    room: new LocalRoom(1 << 20),
    metrics,
    maxUpload: 1000,
    maxTransfers: 4,
    transfers: new SlotBudget(8),
    transferTimeoutMs: 30_000,
    adminDigest: sha('sesame'),
    uploadDigest: null,
    stats: () => Buffer.from('{"ok":true}'),
    log: () => undefined,
    ...over,
  };
}

const TCP_LOCAL: Transport = { name: 'streams', maxReply: 1 << 20, local: true };
const TCP_REMOTE: Transport = { name: 'streams', maxReply: 1 << 20, local: false };
const DATAGRAM: Transport = { name: 'datagrams', maxReply: 65_507 - 12, local: false };

/** A core as its driver builds it: a datagram driver provides no transfers part. */
function coreFor(cfg: Cfg, transport: Transport, io: FakeIO): MxCore {
  const files = transport.name === 'datagrams' ? undefined : { ...cfg, taken: () => io.sentBytes };
  const core = new MxCore(cfg, transport, io, files);
  io.core = core;
  return core;
}

function make(over: Partial<Cfg> = {}, transport: Transport = TCP_LOCAL): { core: MxCore; io: FakeIO; cfg: Cfg } {
  const io = new FakeIO();
  const cfg = config(over);
  return { core: coreFor(cfg, transport, io), io, cfg };
}

const frame = (type: number, id: number, payload: Buffer = Buffer.alloc(0)) => ({ type, id, payload });
const str16 = (s: string): Buffer => P.encodeStr16(s);
const errorOf = (o: Out | undefined): { code: number; message: string } => {
  assert.ok(o, 'a frame was sent');
  assert.equal(o.type, Type.ERROR, `expected ERROR, got 0x${o.type.toString(16)}`);
  return P.decodeError(o.payload);
};

// ---- one request, one answer -------------------------------------------------------------

interface Vector {
  name: string;
  transport?: Transport;
  cfg?: Partial<Cfg>;
  type: number;
  payload?: Buffer;
  /** Expected reply type, or an error code. */
  reply?: number;
  error?: number;
  /** A pattern the error text must match. */
  text?: RegExp;
  check?: (payload: Buffer) => void;
}

const vectors: Vector[] = [
  { name: 'PING echoes', type: Type.PING, payload: Buffer.from('abc'), reply: Type.PING_OK, check: (p) => assert.equal(p.toString(), 'abc') },
  { name: 'PING empty', type: Type.PING, reply: Type.PING_OK, check: (p) => assert.equal(p.length, 0) },
  { name: 'PING over datagrams', transport: DATAGRAM, type: Type.PING, reply: Type.PING_OK },
  { name: 'STATS', type: Type.STATS, reply: Type.STATS_OK, check: (p) => assert.deepEqual(JSON.parse(p.toString()), { ok: true }) },
  { name: 'STATS with payload', type: Type.STATS, payload: Buffer.from('x'), error: ErrorCode.MALFORMED },
  { name: 'NAMES empty room', type: Type.NAMES, reply: Type.NAMES_OK, check: (p) => assert.deepEqual(P.decodeNames(p), []) },
  { name: 'NAMES with payload', type: Type.NAMES, payload: Buffer.from('x'), error: ErrorCode.MALFORMED },
  { name: 'LEAVE not joined', type: Type.LEAVE, error: ErrorCode.NOT_JOINED },
  { name: 'LEAVE with payload', type: Type.LEAVE, payload: Buffer.from('x'), error: ErrorCode.MALFORMED },
  { name: 'SAY not joined', type: Type.SAY, payload: Buffer.from('hi'), error: ErrorCode.NOT_JOINED },
  { name: 'JOIN empty name', type: Type.JOIN, error: ErrorCode.INVALID_NAME },
  { name: 'JOIN reserved name', type: Type.JOIN, payload: Buffer.from('Admin'), error: ErrorCode.INVALID_NAME },
  { name: 'JOIN bad UTF-8', type: Type.JOIN, payload: Buffer.from([0xff, 0xfe]), error: ErrorCode.MALFORMED },
  { name: 'JOIN space', type: Type.JOIN, payload: Buffer.from('a b'), error: ErrorCode.INVALID_NAME },
  { name: 'unknown type 0x04', type: 0x04, error: ErrorCode.UNKNOWN_TYPE, text: /0x04/ },
  { name: 'a reply type sent as request', type: Type.PING_OK, error: ErrorCode.UNKNOWN_TYPE },
  { name: 'a push type sent as request', type: Type.MESSAGE, error: ErrorCode.UNKNOWN_TYPE },
  { name: 'ANNOUNCE good token', type: Type.ANNOUNCE, payload: P.encodeAnnounce('sesame', 'hello'), reply: Type.ANNOUNCE_OK },
  { name: 'ANNOUNCE bad token', type: Type.ANNOUNCE, payload: P.encodeAnnounce('nope', 'hello'), error: ErrorCode.FORBIDDEN, text: /bad admin token/ },
  { name: 'ANNOUNCE bad token beats empty text', type: Type.ANNOUNCE, payload: P.encodeAnnounce('nope', ''), error: ErrorCode.FORBIDDEN },
  { name: 'ANNOUNCE empty text', type: Type.ANNOUNCE, payload: P.encodeAnnounce('sesame', ''), error: ErrorCode.MALFORMED },
  { name: 'ANNOUNCE no token configured', cfg: { adminDigest: null }, type: Type.ANNOUNCE, payload: P.encodeAnnounce('sesame', 'x'), error: ErrorCode.FORBIDDEN, text: /disabled/ },
  { name: 'ANNOUNCE short str16', type: Type.ANNOUNCE, payload: Buffer.from([0, 9, 1]), error: ErrorCode.MALFORMED },
  { name: 'PUT short payload', type: Type.PUT, payload: Buffer.alloc(10), error: ErrorCode.MALFORMED },
  { name: 'PUT bad name', type: Type.PUT, payload: P.encodePut(1, sha('x'), '.env'), error: ErrorCode.BAD_FILE_NAME },
  { name: 'PUT too large', type: Type.PUT, payload: P.encodePut(1001, sha('x'), 'a'), error: ErrorCode.FILE_TOO_LARGE },
  { name: 'PUT from a remote peer, no token set', transport: TCP_REMOTE, type: Type.PUT, payload: P.encodePut(1, sha('x'), 'a'), error: ErrorCode.FORBIDDEN, text: /--upload-token/ },
  { name: 'PUT without AUTH, token set', cfg: { uploadDigest: sha('t0k') }, type: Type.PUT, payload: P.encodePut(1, sha('x'), 'a'), error: ErrorCode.FORBIDDEN, text: /AUTH/ },
  { name: 'PUT over datagrams', transport: DATAGRAM, type: Type.PUT, payload: P.encodePut(1, sha('x'), 'a'), error: ErrorCode.UNKNOWN_TYPE, text: /TCP/ },
  { name: 'GET short payload', type: Type.GET, payload: Buffer.alloc(3), error: ErrorCode.MALFORMED },
  { name: 'GET over datagrams', transport: DATAGRAM, type: Type.GET, payload: P.encodeGet(0, 'a'), error: ErrorCode.UNKNOWN_TYPE, text: /TCP/ },
  { name: 'LIST with payload', type: Type.LIST, payload: Buffer.from('x'), error: ErrorCode.MALFORMED },
  { name: 'LIST over datagrams', transport: DATAGRAM, type: Type.LIST, error: ErrorCode.UNKNOWN_TYPE, text: /TCP/ },
  { name: 'AUTH good token', cfg: { uploadDigest: sha('t0k') }, type: Type.AUTH, payload: str16('t0k'), reply: Type.AUTH_OK, check: (p) => assert.equal(p.length, 0) },
  { name: 'AUTH wrong token', cfg: { uploadDigest: sha('t0k') }, type: Type.AUTH, payload: str16('nope'), error: ErrorCode.FORBIDDEN, text: /bad upload token/ },
  { name: 'AUTH no token configured', type: Type.AUTH, payload: str16('t0k'), error: ErrorCode.FORBIDDEN, text: /--upload-token/ },
  { name: 'AUTH trailing bytes', cfg: { uploadDigest: sha('t0k') }, type: Type.AUTH, payload: Buffer.concat([str16('t0k'), Buffer.from('x')]), error: ErrorCode.MALFORMED },
  { name: 'AUTH empty payload', cfg: { uploadDigest: sha('t0k') }, type: Type.AUTH, error: ErrorCode.MALFORMED },
  { name: 'AUTH over datagrams', transport: DATAGRAM, type: Type.AUTH, payload: str16('t0k'), error: ErrorCode.UNKNOWN_TYPE },
];

for (const v of vectors) {
  test(`vector: ${v.name}`, () => {
    const { core, io } = make(v.cfg, v.transport);
    core.handle(frame(v.type, 77, v.payload), 0);
    const out = io.take();
    assert.equal(out.length, 1, 'exactly one frame out');
    assert.equal(out[0]!.id, 77, 'the request id is echoed');
    if (v.error !== undefined) {
      const e = errorOf(out[0]);
      assert.equal(e.code, v.error, e.message);
      if (v.text) assert.match(e.message, v.text);
    } else {
      assert.equal(out[0]!.type, v.reply, out[0]!.type === Type.ERROR ? P.decodeError(out[0]!.payload).message : '');
      v.check?.(out[0]!.payload);
    }
  });
}

// ---- chat ------------------------------------------------------------------------------

test('chat: join, names, say, leave across three cores sharing one room', () => {
  const room = new LocalRoom(1 << 20);
  const [a, b, c] = [make({ room }), make({ room }), make({ room })];
  a.core.handle(frame(Type.JOIN, 1, Buffer.from('alice')), 0);
  assert.deepEqual(P.decodeNames(a.io.take()[0]!.payload), ['alice']);
  b.core.handle(frame(Type.JOIN, 1, Buffer.from('bob')), 0);
  assert.deepEqual(P.decodeNames(b.io.take()[0]!.payload), ['alice', 'bob']);
  assert.deepEqual(a.io.pushes.map((p) => [p.type, p.payload.toString()]), [[Type.USER_JOINED, 'bob']]);
  // Case-folded uniqueness.
  c.core.handle(frame(Type.JOIN, 1, Buffer.from('ALICE')), 0);
  assert.equal(errorOf(c.io.take()[0]).code, ErrorCode.NAME_TAKEN);
  c.core.handle(frame(Type.JOIN, 2, Buffer.from('carol')), 0);
  c.io.take();
  // Already joined.
  c.core.handle(frame(Type.JOIN, 3, Buffer.from('other')), 0);
  assert.equal(errorOf(c.io.take()[0]).code, ErrorCode.ALREADY_JOINED);
  // One sender's messages, in order, to every other member; not echoed.
  a.io.pushes.length = 0;
  b.io.pushes.length = 0;
  for (let k = 0; k < 5; k++) a.core.handle(frame(Type.SAY, 10 + k, Buffer.from(`m${k}`)), 0);
  assert.deepEqual(a.io.take().map((o) => [o.type, o.id]), [10, 11, 12, 13, 14].map((id) => [Type.SAY_OK, id]));
  for (const r of [b, c]) {
    const texts = r.io.pushes.filter((p) => p.type === Type.MESSAGE).map((p) => P.decodeMessage(p.payload));
    assert.deepEqual(texts, [0, 1, 2, 3, 4].map((k) => ({ from: 'alice', text: `m${k}` })));
  }
  assert.equal(a.io.pushes.filter((p) => p.type === Type.MESSAGE).length, 0);
  // SAY bounds.
  a.core.handle(frame(Type.SAY, 20, Buffer.alloc(0)), 0);
  a.core.handle(frame(Type.SAY, 21, Buffer.alloc(4097, 0x61)), 0);
  a.core.handle(frame(Type.SAY, 22, Buffer.alloc(4096, 0x61)), 0);
  assert.deepEqual(a.io.take().map((o) => (o.type === Type.ERROR ? P.decodeError(o.payload).code : o.type)), [ErrorCode.MALFORMED, ErrorCode.MALFORMED, Type.SAY_OK]);
  // LEAVE and close both notify.
  b.io.pushes.length = 0;
  a.core.handle(frame(Type.LEAVE, 30), 0);
  assert.equal(a.io.take()[0]!.type, Type.LEAVE_OK);
  assert.deepEqual(b.io.pushes.map((p) => [p.type, p.payload.toString()]), [[Type.USER_LEFT, 'alice']]);
  c.core.close();
  assert.deepEqual(b.io.pushes.slice(1).map((p) => [p.type, p.payload.toString()]), [[Type.USER_LEFT, 'carol']]);
  b.core.handle(frame(Type.NAMES, 31), 0);
  assert.deepEqual(P.decodeNames(b.io.take()[0]!.payload), ['bob']);
});

test('chat: a member whose sink is over the output limit is dropped; the others see USER_LEFT', () => {
  const room = new LocalRoom(1000);
  const [a, b, slow] = [make({ room }), make({ room }), make({ room })];
  for (const [x, n] of [[a, 'a'], [b, 'b'], [slow, 'slow']] as const) x.core.handle(frame(Type.JOIN, 1, Buffer.from(n)), 0);
  slow.io.backlogBytes = 1001;
  b.io.pushes.length = 0;
  a.core.handle(frame(Type.SAY, 2, Buffer.from('hi')), 0);
  assert.match(slow.io.droppedWith ?? '', /over 1000 bytes/);
  assert.deepEqual(b.io.pushes.map((p) => p.type), [Type.MESSAGE, Type.USER_LEFT]);
  assert.deepEqual(room.names(), ['a', 'b']);
});

test('chat: NAMES and JOIN_OK are cut to the transport max reply (the count says how many)', () => {
  const room = new LocalRoom(1 << 20);
  for (let k = 0; k < 50; k++) make({ room }).core.handle(frame(Type.JOIN, 1, Buffer.from(`member-${String(k).padStart(2, '0')}`)), 0);
  const small: Transport = { name: 'datagrams', maxReply: 100, local: false };
  const x = make({ room }, small);
  x.core.handle(frame(Type.NAMES, 1), 0);
  const names = x.io.take()[0]!;
  assert.ok(names.payload.length <= 100);
  assert.equal(P.decodeNames(names.payload).length, Math.floor((100 - 2) / 11));
  x.core.handle(frame(Type.JOIN, 2, Buffer.from('late')), 0);
  assert.ok(x.io.take()[0]!.payload.length <= 100);
});

test('chat: an asynchronous room (a relay) answers JOIN later; a JOIN in flight refuses another', () => {
  let answer: ((ok: boolean) => void) | null = null;
  const local = new LocalRoom(1 << 20);
  const relay: Room = {
    get size() {
      return local.size;
    },
    join: (name, sink, done) => {
      answer = (ok) => (ok ? local.join(name, sink, done) : done({ ok: false, code: ErrorCode.CHAT_RELAY_UNAVAILABLE, message: 'relay down' }));
    },
    leave: (m) => local.leave(m),
    say: (m, t) => local.say(m, t),
    announce: (t) => local.announce(t),
    names: () => local.names(),
  };
  const { core, io } = make({ room: relay });
  core.handle(frame(Type.JOIN, 1, Buffer.from('zed')), 0);
  assert.deepEqual(io.take(), []);
  assert.equal(core.busy, true);
  core.handle(frame(Type.JOIN, 2, Buffer.from('zed2')), 0);
  assert.equal(errorOf(io.take()[0]).code, ErrorCode.ALREADY_JOINED);
  answer!(true);
  const ok = io.take()[0]!;
  assert.deepEqual([ok.type, ok.id, P.decodeNames(ok.payload)], [Type.JOIN_OK, 1, ['zed']]);
  // A relay that cannot answer: ERROR 52 for that JOIN.
  const other = make({ room: relay });
  other.core.handle(frame(Type.JOIN, 5, Buffer.from('amy')), 0);
  answer!(false);
  assert.equal(errorOf(other.io.take()[0]).code, ErrorCode.CHAT_RELAY_UNAVAILABLE);
  // The connection went away while the relay decided: the name is given back.
  const gone = make({ room: relay });
  gone.core.handle(frame(Type.JOIN, 6, Buffer.from('bea')), 0);
  gone.core.close();
  answer!(true);
  assert.deepEqual(local.names(), ['zed']);
  assert.deepEqual(gone.io.take(), []);
});

// ---- AUTH lockout ----------------------------------------------------------------------

test('AUTH: three failures lock the connection out for AUTH_LOCKOUT_MS, even for the right token', () => {
  const { core, io } = make({ uploadDigest: sha('t0k') }, TCP_REMOTE);
  for (let k = 0; k < 3; k++) core.handle(frame(Type.AUTH, k, str16('bad')), 1000);
  assert.deepEqual(io.take().map((o) => errorOf(o).code), [14, 14, 14]);
  core.handle(frame(Type.AUTH, 9, str16('t0k')), 1000 + AUTH_LOCKOUT_MS - 1);
  assert.match(errorOf(io.take()[0]).message, /locked out/);
  core.handle(frame(Type.AUTH, 10, str16('t0k')), 1000 + AUTH_LOCKOUT_MS);
  assert.equal(io.take()[0]!.type, Type.AUTH_OK);
  // Authenticated: a remote PUT is accepted (the token replaces the loopback rule).
  core.handle(frame(Type.PUT, 11, P.encodePut(1, sha('x'), 'a.txt')), 0);
  assert.deepEqual(io.take(), []);
});

// ---- uploads ---------------------------------------------------------------------------

test('PUT opens nothing until the first DATA; DATA streams, then commit; PUT_OK on the result', () => {
  const { core, io, cfg } = make();
  const body = Buffer.from('hello world');
  core.handle(frame(Type.PUT, 1, P.encodePut(body.length, sha(body), 'a.txt')), 0);
  assert.deepEqual(io.takeEffects(), [], 'no temp file for a PUT alone');
  assert.equal(cfg.transfers.used, 1, 'the slot is held from PUT');
  core.handle(frame(Type.DATA, 1, body.subarray(0, 5)), 1);
  core.handle(frame(Type.DATA, 1, body.subarray(5)), 2);
  assert.deepEqual(io.takeEffects(), ['beginUpload 1 a.txt 11', 'writeUpload 1 5', 'writeUpload 1 6', 'commitUpload 1']);
  // Extra DATA while committing is discarded.
  core.handle(frame(Type.DATA, 1, Buffer.from('X')), 3);
  assert.deepEqual(io.takeEffects(), []);
  assert.deepEqual(io.take(), []);
  ev(core, { kind: 'committed', t: 1, result: { size: 11, sha256: sha(body) } });
  const ok = io.take()[0]!;
  assert.deepEqual([ok.type, ok.id], [Type.PUT_OK, 1]);
  assert.deepEqual(P.decodeFileInfo(ok.payload), { size: 11, sha256: sha(body) });
  assert.equal(cfg.transfers.used, 0);
  assert.equal(core.busy, false);
});

test('PUT of an empty file commits at once; a failed commit answers its code', () => {
  const { core, io } = make();
  core.handle(frame(Type.PUT, 1, P.encodePut(0, sha(''), 'empty')), 0);
  assert.deepEqual(io.takeEffects(), ['beginUpload 1 empty 0', 'commitUpload 1']);
  ev(core, { kind: 'committed', t: 1, result: new StoreError('digest-mismatch', 'checksum mismatch') });
  assert.equal(errorOf(io.take()[0]).code, ErrorCode.CHECKSUM_MISMATCH);
});

test('PUT errors: id in use, DATA beyond size, per-connection and server-wide limits (51)', () => {
  const transfers = new SlotBudget(3);
  const { core, io } = make({ transfers, maxTransfers: 2 });
  core.handle(frame(Type.PUT, 1, P.encodePut(4, sha('abcd'), 'a')), 0);
  core.handle(frame(Type.PUT, 1, P.encodePut(4, sha('abcd'), 'b')), 0);
  assert.equal(errorOf(io.take()[0]).code, ErrorCode.ID_IN_USE);
  core.handle(frame(Type.PUT, 2, P.encodePut(4, sha('abcd'), 'b')), 0);
  core.handle(frame(Type.PUT, 3, P.encodePut(4, sha('abcd'), 'c')), 0);
  const perConn = errorOf(io.take()[0]);
  assert.equal(perConn.code, ErrorCode.BUSY);
  assert.match(perConn.message, /--max-transfers\b/);
  // Another connection of the same server: the server-wide budget (3) has one slot left.
  const other = coreFor(config({ transfers, maxTransfers: 16 }), TCP_LOCAL, new FakeIO());
  other.handle(frame(Type.PUT, 1, P.encodePut(4, sha('abcd'), 'd')), 0);
  const io2 = new FakeIO();
  const third = coreFor(config({ transfers }), TCP_LOCAL, io2);
  third.handle(frame(Type.GET, 1, P.encodeGet(0, 'a')), 0);
  const busy = errorOf(io2.take()[0]);
  assert.equal(busy.code, ErrorCode.BUSY);
  assert.match(busy.message, /--max-transfers-total/);
  // DATA beyond the declared size: ERROR 4, the upload (begun) is aborted, its slot freed once closed.
  core.handle(frame(Type.DATA, 1, Buffer.from('ab')), 0);
  core.handle(frame(Type.DATA, 1, Buffer.from('cde')), 0);
  assert.equal(errorOf(io.take()[0]).code, ErrorCode.MALFORMED);
  assert.deepEqual(io.takeEffects(), ['beginUpload 1 a 4', 'writeUpload 1 2', 'abortUpload 1']);
  assert.equal(transfers.used, 3);
  ev(core, { kind: 'closed', t: 1 });
  assert.equal(transfers.used, 2);
  // A PUT that never got DATA is dropped without any file effect, its slot freed at once.
  core.close();
  assert.deepEqual(io.takeEffects(), []);
  assert.equal(transfers.used, 1);
});

test('transfer timeout: a PUT without DATA progress gets ERROR 27 and its temp file goes at once', () => {
  const { core, io, cfg } = make({ transferTimeoutMs: 1000 });
  core.handle(frame(Type.PUT, 1, P.encodePut(10, sha('0123456789'), 'slow')), 0);
  core.handle(frame(Type.PUT, 2, P.encodePut(10, sha('0123456789'), 'idle')), 0);
  core.handle(frame(Type.DATA, 1, Buffer.from('01234')), 500);
  assert.equal(core.nextDeadline(), 1000);
  core.tick(999);
  assert.deepEqual(io.take(), []);
  core.tick(1000);
  const idle = io.take();
  assert.equal(idle.length, 1);
  assert.equal(idle[0]!.id, 2);
  assert.equal(errorOf(idle[0]).code, ErrorCode.TRANSFER_TIMEOUT);
  assert.equal(core.nextDeadline(), 1500);
  core.tick(1500);
  const slow = io.take()[0]!;
  assert.equal(slow.id, 1);
  assert.match(errorOf(slow).message, /after 5 of 10 bytes/);
  assert.deepEqual(io.takeEffects(), ['beginUpload 1 slow 10', 'writeUpload 1 5', 'abortUpload 1']);
  // Late DATA for the dead upload is discarded; the id is free again.
  core.handle(frame(Type.DATA, 1, Buffer.from('56789')), 1600);
  assert.deepEqual(io.take(), []);
  ev(core, { kind: 'closed', t: 1 });
  assert.equal(cfg.transfers.used, 0);
  assert.equal(core.nextDeadline(), 0);
});

test('a write failure (full disk) answers at once, before the last DATA; later DATA is discarded', () => {
  const { core, io } = make();
  core.handle(frame(Type.PUT, 1, P.encodePut(10, sha('0123456789'), 'big')), 0);
  core.handle(frame(Type.DATA, 1, Buffer.from('012')), 0);
  ev(core, { kind: 'upload-failed', t: 1, error: new StoreError('no-space', 'storage full: 0 bytes free') });
  const e = errorOf(io.take()[0]);
  assert.equal(e.code, ErrorCode.STORAGE_FULL);
  core.handle(frame(Type.DATA, 1, Buffer.from('3456789')), 0);
  assert.deepEqual(io.take(), []);
  assert.deepEqual(io.takeEffects(), ['beginUpload 1 big 10', 'writeUpload 1 3', 'abortUpload 1']);
});

test('half-close: uploads still waiting for DATA get ERROR 4; committing ones are left to finish', () => {
  const { core, io } = make();
  core.handle(frame(Type.PUT, 1, P.encodePut(3, sha('abc'), 'a')), 0);
  core.handle(frame(Type.PUT, 2, P.encodePut(1, sha('x'), 'b')), 0);
  core.handle(frame(Type.DATA, 2, Buffer.from('x')), 0);
  core.halfClosed();
  const out = io.take();
  assert.equal(out.length, 1);
  assert.match(errorOf(out[0]).message, /half-closed after 0 of 3 bytes/);
  assert.equal(core.busy, true, 'the committing upload is still owed its reply');
  ev(core, { kind: 'committed', t: 2, result: { size: 1, sha256: sha('x') } });
  assert.equal(io.take()[0]!.type, Type.PUT_OK);
  assert.equal(core.busy, false);
});

// ---- downloads -------------------------------------------------------------------------

test('GET: open, GET_OK from the opened file, one send effect, id free with the last byte queued', () => {
  const { core, io, cfg } = make();
  core.handle(frame(Type.GET, 7, P.encodeGet(0, 'f.bin')), 0);
  assert.deepEqual(io.takeEffects(), ['openRead 1 f.bin']);
  const size = 64 * 1024 + 10;
  ev(core, { kind: 'opened', t: 1, result: { size, sha256: sha('whole') } });
  const ok = io.take()[0]!;
  assert.deepEqual([ok.type, ok.id], [Type.GET_OK, 7]);
  assert.deepEqual(P.decodeFileInfo(ok.payload), { size, sha256: sha('whole') });
  // The driver sends the DATA frames (paced by the peer: the stream tests check the bounds).
  assert.deepEqual(io.takeEffects(), ['send 1 7 0 65546']);
  ev(core, { kind: 'queued', t: 1, bytes: 65536 });
  assert.equal(core.busy, true, 'the id is held while bytes are still to be queued');
  assert.deepEqual(io.takeEffects(), []);
  ev(core, { kind: 'queued', t: 1, bytes: 10 });
  assert.deepEqual(io.take(), [], 'DATA is the driver\'s; the core sends nothing more');
  assert.equal(core.busy, false, 'the id is free once the last byte is queued');
  assert.deepEqual(io.takeEffects(), ['closeRead 1']);
  assert.equal(cfg.transfers.used, 1, 'the slot is held until the file is closed');
  ev(core, { kind: 'closed', t: 1 });
  assert.equal(cfg.transfers.used, 0);
});

test('GET errors: not found (from the store), offset beyond end, a file that shrank', () => {
  const { core, io, cfg } = make();
  core.handle(frame(Type.GET, 1, P.encodeGet(0, 'nope')), 0);
  ev(core, { kind: 'opened', t: 1, result: new StoreError('not-found', 'no such file: nope') });
  assert.equal(errorOf(io.take()[0]).code, ErrorCode.NOT_FOUND);
  assert.equal(cfg.transfers.used, 0);
  core.handle(frame(Type.GET, 2, P.encodeGet(11, 'ten')), 0);
  ev(core, { kind: 'opened', t: 2, result: { size: 10, sha256: sha('x') } });
  assert.equal(errorOf(io.take()[0]).code, ErrorCode.OFFSET_BEYOND_END);
  core.handle(frame(Type.GET, 3, P.encodeGet(10, 'ten')), 0);
  ev(core, { kind: 'opened', t: 3, result: { size: 10, sha256: sha('x') } });
  assert.deepEqual(io.take().map((o) => o.type), [Type.GET_OK], 'offset == size: GET_OK and no DATA');
  core.handle(frame(Type.GET, 4, P.encodeGet(0, 'ten')), 0);
  ev(core, { kind: 'opened', t: 4, result: { size: 10, sha256: sha('x') } });
  io.take();
  ev(core, { kind: 'read-failed', t: 4, error: new Error('file shrank while being sent') });
  assert.equal(errorOf(io.take()[0]).code, ErrorCode.INTERNAL);
  assert.deepEqual(io.takeEffects(), ['openRead 1 nope', 'openRead 2 ten', 'closeRead 2', 'openRead 3 ten', 'closeRead 3', 'openRead 4 ten', 'send 4 4 0 10', 'closeRead 4']);
});

test('GET transfer timeout: a reader that takes nothing gets ERROR 27; one that takes bytes does not', () => {
  const { core, io } = make({ transferTimeoutMs: 1000 });
  core.handle(frame(Type.GET, 1, P.encodeGet(0, 'f')), 0);
  ev(core, { kind: 'opened', t: 1, result: { size: 1 << 20, sha256: sha('x') } });
  ev(core, { kind: 'queued', t: 1, bytes: 65536 });
  io.take();
  io.sentBytes = 5000; // the reader took something
  core.tick(1000);
  assert.deepEqual(io.take(), []);
  core.tick(1999);
  assert.deepEqual(io.take(), []);
  core.tick(2000);
  const e = io.take()[0];
  assert.equal(errorOf(e).code, ErrorCode.TRANSFER_TIMEOUT);
  assert.match(errorOf(e).message, /took nothing/);
  assert.match(errorOf(e).message, /at byte 65536 of 1048576/);
  assert.deepEqual(io.takeEffects(), ['openRead 1 f', 'send 1 1 0 1048576', 'closeRead 1']);
});

test('LIST: the reply waits for the store and is cut to the max reply', () => {
  const { core, io } = make({}, { name: 'streams', maxReply: 64, local: true });
  core.handle(frame(Type.LIST, 3), 0);
  assert.equal(core.reservedOutput, 64);
  assert.deepEqual(io.takeEffects(), ['list 1']);
  ev(core, { kind: 'listed', t: 1, result: Array.from({ length: 10 }, (_, k) => ({ size: k, name: `file-${k}` })) });
  const list = io.take()[0]!;
  assert.deepEqual([list.type, list.id], [Type.LIST_OK, 3]);
  assert.ok(list.payload.length <= 64);
  assert.equal(P.decodeList(list.payload).length, 3);
  assert.equal(core.reservedOutput, 0);
});

// ---- shutdown --------------------------------------------------------------------------

test('drain: a member is told and leaves; new requests get 51; DATA for an upload in flight is still taken', () => {
  const room = new LocalRoom(1 << 20);
  const other = make({ room });
  other.core.handle(frame(Type.JOIN, 1, Buffer.from('other')), 0);
  const { core, io } = make({ room });
  core.handle(frame(Type.JOIN, 1, Buffer.from('me')), 0);
  core.handle(frame(Type.PUT, 2, P.encodePut(2, sha('ab'), 'f')), 0);
  io.take();
  core.drain();
  assert.deepEqual(io.pushes.map((p) => [p.type, p.payload.toString()]).slice(-1), [[Type.ANNOUNCEMENT, SHUTDOWN_NOTICE]]);
  assert.deepEqual(room.names(), ['other']);
  core.handle(frame(Type.PING, 3), 0);
  const e = errorOf(io.take()[0]);
  assert.equal(e.code, ErrorCode.BUSY);
  assert.match(e.message, /shutting down/);
  core.handle(frame(Type.DATA, 2, Buffer.from('ab')), 0);
  assert.deepEqual(io.takeEffects(), ['beginUpload 1 f 2', 'writeUpload 1 2', 'commitUpload 1']);
  assert.equal(core.busy, true);
  ev(core, { kind: 'committed', t: 1, result: { size: 2, sha256: sha('ab') } });
  assert.equal(io.take()[0]!.type, Type.PUT_OK);
  assert.equal(core.busy, false);
});

test('abort: uploads left get ERROR 51 and are dropped; downloads are cut; reports work was cut', () => {
  const { core, io } = make();
  assert.equal(core.abort(), false, 'nothing in flight');
  core.handle(frame(Type.PUT, 1, P.encodePut(4, sha('abcd'), 'f')), 0);
  core.handle(frame(Type.DATA, 1, Buffer.from('ab')), 0);
  core.handle(frame(Type.GET, 2, P.encodeGet(0, 'g')), 0);
  ev(core, { kind: 'opened', t: 2, result: { size: 100, sha256: sha('g') } });
  io.take();
  io.takeEffects();
  ev(core, { kind: 'queued', t: 2, bytes: 50 });
  io.take();
  io.takeEffects();
  assert.equal(core.abort(), true);
  const e = errorOf(io.take()[0]);
  assert.equal(e.code, ErrorCode.BUSY);
  assert.match(e.message, /shutting down: upload aborted after 2 of 4 bytes/);
  // The download is cut at once: the driver closes its file (after a read in flight lands).
  assert.deepEqual(io.takeEffects(), ['abortUpload 1', 'closeRead 2']);
  // A chunk the driver had queued meanwhile changes nothing.
  ev(core, { kind: 'queued', t: 2, bytes: 50 });
  assert.deepEqual(io.take(), []);
  assert.deepEqual(io.takeEffects(), []);
});

test('a core without a transfers part (datagrams): PUT/GET/LIST/AUTH are ERROR 3 naming the transport, DATA is discarded', () => {
  const { core, io } = make({ uploadDigest: sha('t0k') }, DATAGRAM);
  assert.equal(core.files, null);
  for (const [type, payload] of [[Type.PUT, P.encodePut(1, sha('x'), 'a')], [Type.GET, P.encodeGet(0, 'a')], [Type.LIST, Buffer.alloc(0)], [Type.AUTH, str16('t0k')]] as const) {
    core.handle(frame(type, 5, payload), 0);
    const e = errorOf(io.take()[0]);
    assert.equal(e.code, ErrorCode.UNKNOWN_TYPE);
    assert.match(e.message, /not available over datagrams: use the TCP port/);
  }
  core.handle(frame(Type.DATA, 5, Buffer.from('x')), 0);
  assert.deepEqual(io.take(), []);
  assert.equal(core.busy, false);
  assert.equal(core.nextDeadline(), 0);
});

test('STATS is built for the transport: the whole report when it fits, its fixed part when it does not', () => {
  const report = { uptimeSeconds: 3, chatUsers: 1, limits: { maxFrameBytes: 9 }, counters: { big: 'z'.repeat(500) } };
  const stats = statsSource(() => report);
  const { core, io } = make({ stats }, { name: 'datagrams', maxReply: 200, local: false });
  core.handle(frame(Type.STATS, 1), 0);
  const small = io.take()[0]!;
  assert.ok(small.payload.length <= 200);
  assert.deepEqual(JSON.parse(small.payload.toString()), { truncated: true, uptimeSeconds: 3, chatUsers: 1, limits: { maxFrameBytes: 9 } });
  const tcp = make({ stats });
  tcp.core.handle(frame(Type.STATS, 2), 0);
  assert.deepEqual(JSON.parse(tcp.io.take()[0]!.payload.toString()), report);
});

// Three clients chatting on raw sockets: joins, leaves, messages, announcements, ordering, slow members.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as P from '../../src/wire/payloads.js';
import { ErrorCode, Type } from '../../src/wire/protocol.js';
import { RawClient, startTestServer } from './raw-client.js';

test('three clients: joins, messages in order, sender not echoed, leave and disconnect notices', async () => {
  const ts = await startTestServer();
  const [a, b, c] = await Promise.all([RawClient.connect(ts.port), RawClient.connect(ts.port), RawClient.connect(ts.port)]);
  assert.deepEqual(P.decodeNames((await a.request(Type.JOIN, 1, Buffer.from('alice'))).payload), ['alice']);
  assert.deepEqual(P.decodeNames((await b.request(Type.JOIN, 1, Buffer.from('张三'))).payload), ['alice', '张三']);
  assert.equal(P.decodeText((await a.push(Type.USER_JOINED)).payload), '张三');
  assert.deepEqual(P.decodeNames((await c.request(Type.JOIN, 1, Buffer.from('Ωmega'))).payload), ['alice', '张三', 'Ωmega']);
  assert.equal(P.decodeText((await a.push(Type.USER_JOINED)).payload), 'Ωmega');
  assert.equal(P.decodeText((await b.push(Type.USER_JOINED)).payload), 'Ωmega');

  // Pipelined SAYs from alice arrive at both others in order.
  for (let k = 0; k < 50; k++) a.send(Type.SAY, 100 + k, Buffer.from(`msg ${k}`));
  for (let k = 0; k < 50; k++) assert.equal((await a.reply(100 + k)).type, Type.SAY_OK);
  for (const r of [b, c]) {
    for (let k = 0; k < 50; k++) {
      assert.deepEqual(P.decodeMessage((await r.push(Type.MESSAGE)).payload), { from: 'alice', text: `msg ${k}` });
    }
  }
  // A message from bob reaches alice and carol but never bob himself.
  await b.request(Type.SAY, 2, Buffer.from('你好'));
  assert.deepEqual(P.decodeMessage((await a.push(Type.MESSAGE)).payload), { from: '张三', text: '你好' });
  assert.deepEqual(P.decodeMessage((await c.push(Type.MESSAGE)).payload), { from: '张三', text: '你好' });
  await b.request(Type.PING, 3); // every earlier push to b would have arrived before this reply
  assert.equal(b.frames.filter((f) => f.type === Type.MESSAGE).length, 0, 'sender not echoed');

  // Case-insensitive uniqueness, including non-ASCII (Ω / ω).
  const d = await RawClient.connect(ts.port);
  assert.equal((await d.expectError(Type.JOIN, 1, Buffer.from('ωMEGA'))).code, ErrorCode.NAME_TAKEN);
  assert.equal((await d.expectError(Type.JOIN, 2, Buffer.from('ALICE'))).code, ErrorCode.NAME_TAKEN);
  // NFD input is normalised to NFC before comparing.
  const e = await RawClient.connect(ts.port);
  await e.request(Type.JOIN, 1, Buffer.from('José'.normalize('NFC')));
  assert.equal((await d.expectError(Type.JOIN, 3, Buffer.from('JOSÉ'.normalize('NFD')))).code, ErrorCode.NAME_TAKEN);
  e.close();
  for (const r of [a, b, c]) assert.equal(P.decodeText((await r.push(Type.USER_LEFT)).payload), 'José');

  // Announcement reaches all joined users, not the unjoined one.
  assert.equal(ts.server.announce('hello all'), 3);
  for (const r of [a, b, c]) assert.equal(P.decodeText((await r.push(Type.ANNOUNCEMENT)).payload), 'hello all');
  await d.request(Type.PING, 9);
  assert.equal(d.frames.filter((f) => f.type === Type.ANNOUNCEMENT).length, 0);

  // LEAVE and disconnect both notify the others.
  assert.equal((await c.request(Type.LEAVE, 5)).type, Type.LEAVE_OK);
  assert.equal(P.decodeText((await a.push(Type.USER_LEFT)).payload), 'Ωmega');
  assert.equal(P.decodeText((await b.push(Type.USER_LEFT)).payload), 'Ωmega');
  b.close();
  assert.equal(P.decodeText((await a.push(Type.USER_LEFT)).payload), '张三');
  assert.deepEqual(P.decodeNames((await a.request(Type.NAMES, 6)).payload), ['alice']);

  const stats = JSON.parse((await a.request(Type.STATS, 7)).payload.toString()) as { chatUsers: number; gauges: Record<string, number> };
  assert.equal(stats.chatUsers, 1);
  assert.equal(stats.gauges.chatUsers, 1);
  for (const r of [a, c, d]) r.close();
  await ts.stop();
});

test('a chat member that never reads is disconnected once over maxOutputBytes; others see USER_LEFT', async () => {
  const ts = await startTestServer({ maxOutputBytes: 64 * 1024 });
  const talker = await RawClient.connect(ts.port);
  const sleeper = await RawClient.connect(ts.port);
  const watcher = await RawClient.connect(ts.port);
  await sleeper.request(Type.JOIN, 1, Buffer.from('sleeper'));
  sleeper.socket.pause(); // never reads again: kernel buffers fill, then the server's
  await talker.request(Type.JOIN, 1, Buffer.from('talker'));
  await watcher.request(Type.JOIN, 1, Buffer.from('watcher'));
  const serverSide = [...ts.server.listener.sockets];
  const text = Buffer.alloc(4096, 0x7a);
  let dropped = false;
  const leftSeen = talker.next((f) => f.type === Type.USER_LEFT && P.decodeText(f.payload) === 'sleeper').then(() => {
    dropped = true;
  });
  let id = 10;
  // Up to 64 MiB of chat (far beyond any loopback buffering) until the server gives up on the sleeper.
  for (let round = 0; round < 64 && !dropped; round++) {
    const first = id;
    for (let k = 0; k < 256; k++) talker.send(Type.SAY, id++, text);
    for (let k = first; k < id; k++) await talker.reply(k);
    // Drain the watcher so only the sleeper is slow.
    watcher.frames.splice(0, watcher.frames.length, ...watcher.frames.filter((f) => f.type !== Type.MESSAGE));
    for (const s of serverSide) assert.ok(s.writableLength <= 64 * 1024 + 4096 + 64, 'no server socket buffers beyond the limit');
  }
  await leftSeen;
  assert.ok(dropped);
  assert.equal(P.decodeText((await watcher.next((f) => f.type === Type.USER_LEFT)).payload), 'sleeper');
  assert.deepEqual(P.decodeNames((await talker.request(Type.NAMES, 1)).payload), ['talker', 'watcher']);
  assert.equal(ts.metrics.counters['binary.slowConsumersDropped'], 1);
  for (const r of [talker, sleeper, watcher]) r.close();
  await ts.stop();
});

test('names collide under the documented key (NFC, lower, upper, lower, NFC): ß/ẞ/SS, σ/ς/Σ, ǅ, ﬃ; distinct names still join', async () => {
  const ts = await startTestServer();
  const clients: RawClient[] = [];
  const join = async (name: string): Promise<number> => {
    const c = await RawClient.connect(ts.port);
    clients.push(c);
    const f = await c.request(Type.JOIN, 1, Buffer.from(name, 'utf8'));
    return f.type === Type.ERROR ? P.decodeError(f.payload).code : 0;
  };
  try {
    const groups = [
      ['Straße', 'STRAẞE', 'STRASSE', 'strasse', 'straße'],
      ['ẞa', 'ßA', 'SSa'],
      ['ΟΔΟΣ', 'οδοσ', 'οδος', 'Οδος'],
      ['ǅemal', 'ǄEMAL', 'ǆemal'],
      ['ﬃx', 'FFIX', 'ffix'],
      ['ſam', 'SAM'],
      ['Привет', 'ПРИВЕТ', 'привет'],
      ['İstanbul', 'i\u0307stanbul', 'İSTANBUL'],
    ];
    for (const [first, ...rest] of groups) {
      assert.equal(await join(first!), 0, `${first} joins`);
      for (const other of rest) assert.equal(await join(other), ErrorCode.NAME_TAKEN, `${other} collides with ${first}`);
    }
    // Different keys: dotless ı folds with i/I (ı -> I -> i), dotted İ does not; the letter pair
    // D + Ž is not the digraph ǅ (only compatibility normalisation would merge them); CJK variants differ.
    for (const distinct of ['istanbul', 'DŽemal', '张三', '張三', 'Ω', 'ʼn']) assert.equal(await join(distinct), 0, `${distinct} joins`);
    assert.equal(await join('ıSTANBUL'), ErrorCode.NAME_TAKEN);
    assert.equal(await join('ŉ'), ErrorCode.NAME_TAKEN);
  } finally {
    for (const c of clients) c.close();
    await ts.stop();
  }
});

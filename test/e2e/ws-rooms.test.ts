// WebSocket members are ordinary members of the one room: with `--workers 2` (round-robin puts
// consecutive connections on alternate workers, so the room is the relayed one) and across two
// servers sharing a Redis (--chat-redis), next to TCP members.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startMuxd, type MuxdProcess } from '../helpers/muxd-process.js';
import { redisSkipReason, startRedis, type RedisServer } from '../helpers/redis-server.js';
import { waitFor } from '../helpers/wait.js';
import { RawClient } from '../binary/raw-client.js';
import { WsMxClient } from '../helpers/ws-mx.js';
import { Type } from '../../src/wire/protocol.js';
import * as P from '../../src/wire/payloads.js';
import type { Frame } from '../../src/wire/frame.js';

const TOKEN = 'rooms-token';
let tmp = '';
before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'muxd-ws-rooms-'));
});
after(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

interface Member {
  name: string;
  request(type: number, id: number, payload?: Buffer): Promise<Frame>;
  push(type: number): Promise<Frame>;
  close(): void;
}

const wsMember = async (port: number, name: string): Promise<Member> => {
  const c = await WsMxClient.connect(port);
  return { name, request: (t, i, p) => c.request(t, i, p), push: (t) => c.push(t), close: () => c.close() };
};
const tcpMember = async (port: number, name: string): Promise<Member> => {
  const c = await RawClient.connect(port);
  return { name, request: (t, i, p) => c.request(t, i, p), push: (t) => c.push(t), close: () => c.close() };
};

/** Everyone joins in order (each sees every later join), everyone says one line, everyone hears the others, and an announcement. */
async function oneRoom(members: Member[], announce: Member): Promise<void> {
  for (const m of members) assert.equal((await m.request(Type.JOIN, 1, Buffer.from(m.name))).type, Type.JOIN_OK, m.name);
  for (const [i, m] of members.entries()) {
    for (const later of members.slice(i + 1)) assert.equal(P.decodeText((await m.push(Type.USER_JOINED)).payload), later.name, `${m.name} sees ${later.name} join`);
  }
  for (const m of members) assert.equal((await m.request(Type.SAY, 2, Buffer.from(`hi from ${m.name}`))).type, Type.SAY_OK);
  for (const m of members) {
    const heard: string[] = [];
    for (let k = 0; k < members.length - 1; k++) {
      const msg = P.decodeMessage((await m.push(Type.MESSAGE)).payload);
      heard.push(`${msg.from}: ${msg.text}`);
    }
    const want = members.filter((o) => o !== m).map((o) => `${o.name}: hi from ${o.name}`);
    assert.deepEqual(heard.sort(), want.sort(), `${m.name} hears everyone else`);
  }
  assert.equal((await announce.request(Type.ANNOUNCE, 3, P.encodeAnnounce(TOKEN, 'all hands'))).type, Type.ANNOUNCE_OK);
  for (const m of members) assert.equal(P.decodeText((await m.push(Type.ANNOUNCEMENT)).payload), 'all hands');
  // A WebSocket member that goes away is announced as left.
  const gone = members[0]!;
  gone.close();
  for (const m of members.slice(1)) assert.equal(P.decodeText((await m.push(Type.USER_LEFT)).payload), gone.name);
}

describe('--workers 2', () => {
  let muxd: MuxdProcess;
  before(async () => {
    muxd = await startMuxd(['--workers', '2', '--files-dir', path.join(tmp, 'workers'), '--admin-token', TOKEN, '--udp-port', 'off']);
  });
  after(async () => {
    await muxd?.stop();
  });

  test('two WebSocket members (on alternate workers) and two TCP members share one room', async () => {
    const members = [await wsMember(muxd.httpPort, 'wanda'), await wsMember(muxd.httpPort, 'walt'), await tcpMember(muxd.binaryPort, 'tess'), await tcpMember(muxd.binaryPort, 'tom')];
    try {
      await oneRoom(members, members[1]!);
    } finally {
      for (const m of members) m.close();
    }
  });
});

const redisSkip = redisSkipReason();

describe('--chat-redis', { skip: redisSkip }, () => {
  let redis: RedisServer;
  let one: MuxdProcess;
  let two: MuxdProcess;
  before(async () => {
    redis = await startRedis();
    const common = ['--chat-redis', redis.url, '--admin-token', TOKEN, '--udp-port', 'off'];
    [one, two] = await Promise.all([startMuxd([...common, '--files-dir', path.join(tmp, 'one')]), startMuxd([...common, '--files-dir', path.join(tmp, 'two')])]);
    for (const s of [one, two]) {
      const probe = await RawClient.connect(s.binaryPort);
      await waitFor(
        async () => {
          const st = JSON.parse((await probe.request(Type.STATS, 1)).payload.toString()) as { chatRelay?: { state?: string } };
          return st.chatRelay?.state === 'connected';
        },
        { what: 'the Redis relay to connect', timeoutMs: 15_000, stepMs: 100 },
      );
      probe.close();
    }
  });
  after(async () => {
    await Promise.all([one?.stop(), two?.stop()]);
    await redis?.stop();
  });

  test('WebSocket members on one server, TCP and WebSocket members on the other: one room', async () => {
    const members = [await wsMember(one.httpPort, 'web-one'), await tcpMember(two.binaryPort, 'tcp-two'), await wsMember(two.httpPort, 'web-two'), await tcpMember(one.binaryPort, 'tcp-one')];
    try {
      await oneRoom(members, members[3]!);
    } finally {
      for (const m of members) m.close();
    }
  });
});

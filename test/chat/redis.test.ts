// One chat room across servers through a real Redis (--chat-redis): two muxd servers (one a single
// process, one with two workers), a real redis-server that is killed and restarted mid-test, and a
// server that dies with kill -9.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, MuxError, type MuxClient } from '../../src/client/index.js';
import { ErrorCode } from '../../src/wire/protocol.js';
import { startMuxd, type MuxdProcess } from '../helpers/muxd-process.js';
import { redisSkipReason, startRedis, type RedisServer } from '../helpers/redis-server.js';

const skip = redisSkipReason();
const TOKEN = 'redis-chat-token';

let tmp = '';
let redis: RedisServer;
let one: MuxdProcess;
let two: MuxdProcess;
const clients: MuxClient[] = [];

async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 15000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

interface Person {
  client: MuxClient;
  events: string[];
}

async function person(server: MuxdProcess, name: string | null): Promise<Person> {
  const client = await connect({ port: server.binaryPort, timeoutMs: 10000 });
  clients.push(client);
  const events: string[] = [];
  client.on('userJoined', (n: string) => events.push(`joined ${n}`));
  client.on('userLeft', (n: string) => events.push(`left ${n}`));
  client.on('message', (from: string, text: string) => events.push(`${from}: ${text}`));
  client.on('announcement', (text: string) => events.push(`announce ${text}`));
  if (name !== null) await client.join(name);
  return { client, events };
}

// undefined until the process has its relay figures (a worker gets them with its first whole-server stats).
async function relayState(server: MuxdProcess): Promise<Record<string, unknown> | undefined> {
  const c = await connect({ port: server.binaryPort });
  try {
    return (await c.stats()).chatRelay as Record<string, unknown> | undefined;
  } finally {
    c.close();
  }
}

async function joinError(p: Person, name: string): Promise<number> {
  try {
    await p.client.join(name);
  } catch (err) {
    assert.ok(err instanceof MuxError, String(err));
    return err.code;
  }
  return 0;
}

describe('--chat-redis', { skip }, () => {
  before(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'muxd-redis-'));
    redis = await startRedis();
    const common = ['--chat-redis', redis.url, '--admin-token', TOKEN];
    [one, two] = await Promise.all([
      startMuxd([...common, '--files-dir', path.join(tmp, 'one')]),
      startMuxd([...common, '--workers', '2', '--files-dir', path.join(tmp, 'two')]),
    ]);
    for (const s of [one, two]) await waitFor('the relay connected', async () => ((await relayState(s))?.state === 'connected' ? true : undefined));
  });

  after(async () => {
    for (const c of clients) c.close();
    await Promise.all([one?.stop(), two?.stop()]);
    await redis?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  test('members on two servers share one room: unique names, every event once, one order', async () => {
    const ann = await person(one, 'ann');
    const bob = await person(two, 'bob');
    const cy = await person(two, 'cy');
    assert.deepEqual(await ann.client.names(), ['ann', 'bob', 'cy']);
    // The name is taken on the other server, case-folded.
    const eve = await person(one, null);
    assert.equal(await joinError(eve, 'BOB'), ErrorCode.NAME_TAKEN);
    // Racing for a free name from both servers: exactly one wins.
    const [x, y] = [await person(one, null), await person(two, null)];
    const race = await Promise.allSettled([x.client.join('zed'), y.client.join('ZED')]);
    assert.equal(race.filter((r) => r.status === 'fulfilled').length, 1, JSON.stringify(race));

    const N = 30;
    await Promise.all([ann, bob, cy].map(async (p, i) => {
      for (let k = 0; k < N; k++) await p.client.say(`${'abc'[i]}${k}`);
    }));
    await ann.client.announce(TOKEN, 'hello servers');
    const done = (p: Person) => p.events.filter((e) => e.includes(': ') || e.startsWith('announce')).length >= 2 * N + 1;
    await waitFor('every message everywhere', () => ([ann, bob, cy].every(done) ? true : undefined));
    await sleep(300);
    for (const [i, p] of [ann, bob, cy].entries()) {
      const from = (who: string) => p.events.filter((e) => e.startsWith(`${who}: `)).map((e) => e.split(': ')[1]);
      for (const [j, who] of ['ann', 'bob', 'cy'].entries()) {
        assert.deepEqual(from(who), i === j ? [] : Array.from({ length: N }, (_, k) => `${'abc'[j]}${k}`), `${i} from ${who}`);
      }
      assert.equal(p.events.filter((e) => e === 'announce hello servers').length, 1);
    }
    // One order: ann (server one) and bob (server two) agree on cy's and the others' interleaving.
    const order = (p: Person, except: string[]) => p.events.filter((e) => e.includes(': ') && !except.some((w) => e.startsWith(w + ': ')));
    assert.deepEqual(order(ann, ['ann', 'bob']), order(bob, ['ann', 'bob']));
    for (const p of [ann, bob, cy, x, y, eve]) p.client.close();
    await waitFor('the room empty', async () => ((await relayState(one))?.members === 0 ? true : undefined));
  });

  test('Redis goes away: members keep chatting locally, JOIN answers 52; it comes back: names re-claimed, one room again', async () => {
    const ann = await person(one, 'ann');
    const amy = await person(one, 'amy');
    const bob = await person(two, 'bob');
    await redis.kill();
    await waitFor('both relays notice', async () => ((await relayState(one))?.state !== 'connected' && (await relayState(two))?.state !== 'connected' ? true : undefined));
    // Local chat goes on.
    await ann.client.say('still here?');
    await waitFor('amy hears ann', () => (amy.events.includes('ann: still here?') ? true : undefined));
    // A new JOIN is refused with 52, on either server.
    const late1 = await person(one, null);
    const late2 = await person(two, null);
    assert.equal(await joinError(late1, 'newbie'), ErrorCode.CHAT_RELAY_UNAVAILABLE);
    assert.equal(await joinError(late2, 'newbie'), ErrorCode.CHAT_RELAY_UNAVAILABLE);
    const stats = await relayState(one);
    assert.ok(stats !== undefined, 'STATS carries the relay state');
    assert.equal(stats.mode, 'redis');
    assert.match(String(stats.state), /^(reconnecting|connecting)$/);

    // Redis returns (empty: nothing was saved). The relays reconnect with backoff and re-claim.
    await redis.restart();
    await waitFor('both relays back', async () => ((await relayState(one))?.state === 'connected' && (await relayState(two))?.state === 'connected' ? true : undefined), 20000);
    assert.ok(Number((await relayState(one))?.reconnects) >= 1);
    // ann's name was claimed again: taking it from the other server fails.
    await waitFor('names re-claimed', async () => ((await joinError(late2, 'ANN')) === ErrorCode.NAME_TAKEN ? true : undefined));
    // One room again: a new member on server two and ann on server one talk.
    await late2.client.join('newbie');
    await late2.client.say('hi ann');
    await waitFor('ann hears newbie', () => (ann.events.includes('newbie: hi ann') ? true : undefined));
    await ann.client.say('hi newbie');
    await waitFor('newbie and bob hear ann', () => (bob.events.includes('ann: hi newbie') ? true : undefined));
    for (const p of [ann, amy, bob, late1, late2]) p.client.close();
    await waitFor('the room empty', async () => ((await relayState(two))?.members === 0 ? true : undefined));
  });

  test('a server killed with SIGKILL: the others announce its members as left once its hold expires, and the names are free', async () => {
    const ann = await person(one, 'ann');
    const bob = await person(two, 'bob');
    await waitFor('bob knows ann', async () => ((await bob.client.names()).includes('ann') ? true : undefined));
    one.proc.kill('SIGKILL');
    // Hold 15 s, then the next heartbeat (5 s) of server two notices.
    await waitFor('bob hears ann leave', () => (bob.events.includes('left ann') ? true : undefined), 40000);
    assert.deepEqual(await bob.client.names(), ['bob']);
    const again = await person(two, 'ann');
    assert.ok(again);
    for (const p of [ann, bob, again]) p.client.close();
  });
});

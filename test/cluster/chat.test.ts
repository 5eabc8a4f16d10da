// One chat room across the workers of `muxd serve --workers 2`: real processes, real MX/1 clients.
// Round-robin hands consecutive connections to alternate workers; the stats say where members are.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, MuxError, type MuxClient } from '../../src/client/index.js';
import { ErrorCode } from '../../src/wire/protocol.js';
import { startMuxd, type MuxdProcess } from '../helpers/muxd-process.js';

const TOKEN = 'cluster-chat-token';
let tmp = '';
let muxd: MuxdProcess;
const open: MuxClient[] = [];

async function stats(): Promise<Record<string, any>> {
  return new Promise((resolve, reject) => {
    const s = net.connect(muxd.httpPort, '127.0.0.1');
    let data = '';
    s.setEncoding('utf8');
    s.on('connect', () => s.write('GET /.well-known/muxd/stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n'));
    s.on('data', (c: string) => (data += c));
    s.on('error', reject);
    s.on('close', () => resolve(JSON.parse(data.slice(data.indexOf('\r\n\r\n') + 4)) as Record<string, any>));
  });
}

async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 15000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

interface Person {
  name: string;
  client: MuxClient;
  events: string[];
  closed: boolean;
}

async function person(name: string | null): Promise<Person> {
  const client = await connect({ port: muxd.binaryPort, timeoutMs: 10000 });
  open.push(client);
  const events: string[] = [];
  client.on('userJoined', (n: string) => events.push(`joined ${n}`));
  client.on('userLeft', (n: string) => events.push(`left ${n}`));
  client.on('message', (from: string, text: string) => events.push(`${from}: ${text}`));
  client.on('announcement', (text: string) => events.push(`announce ${text}`));
  const p: Person = { name: name ?? '', client, events, closed: false };
  client.on('close', () => (p.closed = true));
  if (name !== null) await client.join(name);
  return p;
}

before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'muxd-cluster-chat-'));
  muxd = await startMuxd(['--workers', '2', '--files-dir', path.join(tmp, 'files'), '--admin-token', TOKEN]);
  await waitFor('two running workers', async () => ((await stats()).workers?.filter((w: any) => w.state === 'running').length === 2 ? true : undefined));
});

after(async () => {
  for (const c of open) c.close();
  await muxd?.stop();
  await rm(tmp, { recursive: true, force: true });
});

test('members on both workers: every JOIN, MESSAGE, ANNOUNCEMENT and LEAVE once, each sender in order, one order for all', async () => {
  const people: Person[] = [];
  for (const name of ['ann', 'ben', 'cat', 'dan']) people.push(await person(name));
  // The members are spread over both workers. Each worker reports its own count once a second,
  // while chatUsers is the room's: wait until the workers' reports add up to the room.
  const spread = await waitFor('members on both workers', async () => {
    const s = await stats();
    const reported = s.workers.reduce((n: number, w: any) => n + w.chatMembers, 0);
    return s.workers.every((w: any) => w.chatMembers >= 1) && s.chatUsers === 4 && reported === 4 ? s : undefined;
  });
  assert.deepEqual(spread.workers.map((w: any) => w.chatMembers).sort(), [2, 2]);
  assert.deepEqual(await people[0]!.client.names(), ['ann', 'ben', 'cat', 'dan']);

  const N = 40;
  await Promise.all(people.map(async (p) => {
    for (let i = 0; i < N; i++) await p.client.say(`${p.name} ${i}`);
  }));
  await people[1]!.client.announce(TOKEN, 'maintenance at noon');
  await people[3]!.client.leave();
  const expected = 3 * N + 1;
  await waitFor('every message delivered', () => (people.slice(0, 3).every((p) => p.events.filter((e) => !e.startsWith('joined')).length >= expected + 1) ? true : undefined));
  await sleep(200); // anything extra (a duplicate) would arrive by now

  for (const [i, p] of people.slice(0, 3).entries()) {
    // The JOINs of those who came later, once each.
    assert.deepEqual(p.events.filter((e) => e.startsWith('joined')), ['ann', 'ben', 'cat', 'dan'].slice(i + 1).map((n) => `joined ${n}`));
    assert.equal(p.events.filter((e) => e === 'announce maintenance at noon').length, 1);
    assert.equal(p.events.filter((e) => e === 'left dan').length, 1);
    for (const other of people) {
      const got = p.events.filter((e) => e.startsWith(`${other.name}: `));
      if (other === p) assert.deepEqual(got, [], 'no echo');
      else assert.deepEqual(got, Array.from({ length: N }, (_, k) => `${other.name}: ${other.name} ${k}`), `${p.name} from ${other.name}`);
    }
  }
  // One order: two members agree on the relative order of every message both received.
  const messages = (p: Person, without: string[]) => p.events.filter((e) => e.includes(': ') && !without.some((w) => e.startsWith(`${w}: `)));
  assert.deepEqual(messages(people[0]!, ['ann', 'ben']), messages(people[1]!, ['ann', 'ben']));
  assert.deepEqual(messages(people[1]!, ['ben', 'cat']), messages(people[2]!, ['ben', 'cat']));
  for (const p of people.slice(0, 3)) await p.client.leave();
});

test('two clients racing for one name on two workers: exactly one wins', async () => {
  for (let round = 0; round < 8; round++) {
    const [a, b] = [await person(null), await person(null)];
    const name = `racer${round}`;
    const results = await Promise.allSettled([a.client.join(name), b.client.join(name.toUpperCase())]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(won.length, 1, `round ${round}: ${JSON.stringify(results)}`);
    assert.ok(lost[0]!.reason instanceof MuxError && lost[0]!.reason.code === ErrorCode.NAME_TAKEN, String(lost[0]!.reason));
    a.client.close();
    b.client.close();
  }
});

test("a crashed worker's members are announced as left, and their names are free again", async () => {
  const people: Person[] = [];
  for (const name of ['kim', 'lee', 'max', 'ned']) people.push(await person(name));
  const s = await waitFor('members on both workers', async () => {
    const v = await stats();
    return v.workers.every((w: any) => w.chatMembers === 2) ? v : undefined;
  });
  const victim = s.workers[0].pid as number;
  process.kill(victim, 'SIGKILL');
  // Which two were on the victim: the ones whose connection closed.
  const gone = await waitFor('two clients cut off', () => {
    const closed = people.filter((p) => p.closed);
    return closed.length === 2 ? closed : undefined;
  });
  const survivors = people.filter((p) => !gone.includes(p));
  for (const p of survivors) {
    await waitFor(`${p.name} hears both leave`, () => (gone.every((g) => p.events.includes(`left ${g.name}`)) ? true : undefined));
    // (Leaves of earlier tests' clients may still trickle in: only these four names matter.)
    const mine = new Set(people.map((q) => `left ${q.name}`));
    assert.deepEqual(p.events.filter((e) => mine.has(e)).sort(), gone.map((g) => `left ${g.name}`).sort());
  }
  assert.deepEqual((await survivors[0]!.client.names()).sort(), survivors.map((p) => p.name).sort());
  // The names of the dead worker's members can be taken again.
  const again = await person(gone[0]!.name);
  assert.ok(again.client);
  for (const p of [...survivors, again]) p.client.close();
});

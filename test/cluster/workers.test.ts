// `muxd serve --workers N` as an operator runs it: the real command, real worker processes, real
// signals (kill -9 of workers, SIGHUP, SIGTERM), and the kernel's view of the process tree.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '../../src/client/index.js';
import { startMuxd, runMuxd, type MuxdProcess } from '../helpers/muxd-process.js';
import { alive, childrenOf } from './procs.js';

let tmp = '';
before(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'muxd-workers-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function startCluster(n: number, extra: string[] = []): Promise<MuxdProcess> {
  return startMuxd(['--workers', String(n), '--files-dir', path.join(tmp, 'files'), ...extra]);
}

/** Polls until check() returns a value (not undefined) or the time is up. */
async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 15000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** One HTTP request on its own connection: true when a whole 200 response came back. */
function httpOnce(port: number, target = '/'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let data = '';
    s.setEncoding('latin1');
    s.on('connect', () => s.write(`GET ${target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n`));
    s.on('data', (c: string) => (data += c));
    s.on('error', () => resolve(false));
    s.on('close', () => resolve(data.startsWith('HTTP/1.1 200 ')));
  });
}

async function httpStats(port: number): Promise<Record<string, any>> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let data = '';
    s.setEncoding('utf8');
    s.on('connect', () => s.write('GET /.well-known/muxd/stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n'));
    s.on('data', (c: string) => (data += c));
    s.on('error', reject);
    s.on('close', () => {
      const body = data.slice(data.indexOf('\r\n\r\n') + 4);
      try {
        resolve(JSON.parse(body) as Record<string, any>);
      } catch (err) {
        reject(err);
      }
    });
  });
}

/** The pids of the workers the stats show listening. */
async function runningWorkers(port: number): Promise<number[]> {
  const s = await httpStats(port).catch(() => ({}) as Record<string, any>);
  if (!Array.isArray(s.workers)) return [];
  return s.workers
    .filter((w: any) => w.state === 'running')
    .map((w: any) => w.pid as number)
    .sort((a: number, b: number) => a - b);
}

/** The worker pids the kernel shows under the primary (zombies excluded). */
function workerPids(primary: number): number[] {
  return childrenOf(primary)
    .filter((p) => p.state !== 'Z')
    .map((p) => p.pid)
    .sort((a, b) => a - b);
}

function zombies(primary: number): number[] {
  return childrenOf(primary)
    .filter((p) => p.state === 'Z')
    .map((p) => p.pid);
}

function exited(m: MuxdProcess): Promise<{ code: number | null; signal: string | null }> {
  if (m.proc.exitCode !== null || m.proc.signalCode !== null) return Promise.resolve({ code: m.proc.exitCode, signal: m.proc.signalCode });
  return new Promise((resolve) => m.proc.once('exit', (code, signal) => resolve({ code, signal })));
}

describe('--workers 2', () => {
  let muxd: MuxdProcess;
  before(async () => {
    muxd = await startCluster(2);
    await waitFor('two running workers in the stats', async () => {
      const s = await httpStats(muxd.httpPort);
      return Array.isArray(s.workers) && s.workers.filter((w: any) => w.state === 'running').length === 2 ? true : undefined;
    });
  });
  after(async () => {
    await muxd?.stop();
  });

  test('the primary prints one set of ready lines, and forks two workers', () => {
    const out = muxd.output();
    assert.equal(out.match(/^muxd http listening on /gm)?.length, 1, out);
    assert.equal(out.match(/^muxd binary listening on /gm)?.length, 1, out);
    assert.match(out, new RegExp(`^muxd primary pid ${muxd.proc.pid}: 2 workers$`, 'm'));
    assert.equal(workerPids(muxd.proc.pid!).length, 2);
  });

  test('connections are spread over both workers; the stats route reports totals and each worker', async () => {
    const before = await httpStats(muxd.httpPort);
    const n = 40;
    for (let i = 0; i < n; i++) assert.ok(await httpOnce(muxd.httpPort), `request ${i}`);
    // Workers report once a second and the primary aggregates once a second.
    const stats = await waitFor('the requests in the aggregate', async () => {
      const s = await httpStats(muxd.httpPort);
      return s.counters['http.requests'] >= before.counters['http.requests'] + n ? s : undefined;
    });
    const pids = workerPids(muxd.proc.pid!);
    assert.deepEqual(stats.workers.map((w: any) => w.pid).sort((a: number, b: number) => a - b), pids);
    for (const w of stats.workers) {
      assert.ok(w.requests > 0, `worker ${w.slot} served none: ${JSON.stringify(stats.workers)}`);
      for (const key of ['connections', 'requestsPerSec', 'lagMsP99', 'rssBytes', 'restarts']) assert.equal(typeof w[key], 'number', key);
    }
    const perWorker = stats.workers.reduce((a: number, w: any) => a + w.requests, 0);
    assert.equal(perWorker, stats.counters['http.requests'] + (stats.counters['binary.requests'] ?? 0));
    assert.equal(stats.primary.pid, muxd.proc.pid);
    // The whole server's memory includes the primary's and both workers'.
    assert.ok(stats.memory.rssBytes > stats.workers[0].rssBytes + stats.workers[1].rssBytes);
  });

  test('MX/1 STATS and `muxd stats` answer the whole server from whichever worker they reach', async () => {
    const client = await connect({ port: muxd.binaryPort });
    try {
      const stats = await client.stats();
      assert.ok(Array.isArray(stats.workers) && stats.workers.length === 2, JSON.stringify(stats));
      assert.equal(typeof (stats.limits as Record<string, unknown>).maxFrameBytes, 'number');
    } finally {
      client.close();
    }
    const { code, stdout } = await runMuxd(['stats', '--port', String(muxd.binaryPort)]);
    assert.equal(code, 0);
    assert.match(stdout, /^workers\s+2 running/m);
    for (const pid of workerPids(muxd.proc.pid!)) assert.match(stdout, new RegExp(`pid ${pid}\\b`));
  });
});

test('--workers 1 is one process: no primary, no children, no worker breakdown', async () => {
  const muxd = await startCluster(1);
  try {
    assert.deepEqual(childrenOf(muxd.proc.pid!), []);
    const stats = await httpStats(muxd.httpPort);
    assert.equal(stats.workers, undefined);
    assert.doesNotMatch(muxd.output(), /primary/);
  } finally {
    await muxd.stop();
  }
});

test('workers killed with SIGKILL are reaped (never left as zombies) and replaced after a backoff', async () => {
  const muxd = await startCluster(2);
  const primary = muxd.proc.pid!;
  try {
    await waitFor('two workers', () => (workerPids(primary).length === 2 ? true : undefined));
    const killed: number[] = [];
    // Kill the oldest worker each round: the slots alternate, so the backoffs are 1, 1, 2, 2 s.
    for (let round = 0; round < 4; round++) {
      // Both listening (the stats say so), so the one left serves alone.
      const pids = await waitFor('two running workers', async () => {
        const p = await runningWorkers(muxd.httpPort);
        return p.length === 2 && p.every((pid) => !killed.includes(pid)) ? p : undefined;
      });
      const victim = pids[0]!;
      process.kill(victim, 'SIGKILL');
      killed.push(victim);
      // Reaped: the pid leaves /proc (a zombie would stay there in state Z).
      await waitFor(`pid ${victim} reaped`, () => (childrenOf(primary).some((p) => p.pid === victim) ? undefined : true), 5000);
      assert.deepEqual(zombies(primary), []);
      // Once the primary has taken the death in, the survivor alone serves.
      await waitFor('the death logged', () => (muxd.output().includes(`(pid ${victim}) exited`) ? true : undefined));
      assert.ok(await httpOnce(muxd.httpPort));
    }
    const pids = await waitFor('two replacement workers', () => {
      const p = workerPids(primary);
      return p.length === 2 && p.every((pid) => !killed.includes(pid)) ? p : undefined;
    });
    assert.deepEqual(zombies(primary), []);
    const out = muxd.output();
    for (const pid of killed) assert.match(out, new RegExp(`^muxd: worker \\d \\(pid ${pid}\\) exited \\(signal SIGKILL\\); restarting it in \\d+ s$`, 'm'));
    assert.match(out, /restarting it in 2 s/, 'the backoff doubled');
    const stats = await waitFor('the replacements in the stats', async () => {
      const s = await httpStats(muxd.httpPort);
      return s.workers?.length === 2 && s.workers.every((w: any) => pids.includes(w.pid)) ? s : undefined;
    });
    assert.deepEqual(stats.workers.map((w: any) => w.restarts), [2, 2]);
    assert.equal(stats.primary.deathsLastMinute, 4);
    assert.ok(await httpOnce(muxd.httpPort));
  } finally {
    await muxd.stop();
  }
});

test('more than five deaths in a minute is a crash loop: every worker stops and the primary exits 1', async () => {
  const muxd = await startCluster(2);
  const primary = muxd.proc.pid!;
  const seen = new Set<number>();
  const done = exited(muxd);
  let finished = false;
  void done.then(() => (finished = true));
  // Kill every worker as soon as it appears, as a worker that crashes at once would die.
  const giveUp = Date.now() + 30_000;
  while (!finished) {
    if (Date.now() > giveUp) throw new Error(`timed out waiting for muxd to stop on its crash loop (${seen.size} workers killed)`);
    for (const pid of workerPids(primary)) {
      if (seen.has(pid)) continue;
      seen.add(pid);
      process.kill(pid, 'SIGKILL');
    }
    await sleep(20);
  }
  const { code } = await done;
  assert.equal(code, 1);
  assert.match(muxd.output(), /^muxd: crash loop: 6 worker deaths within 60 s; stopping every worker and exiting$/m);
  assert.equal(seen.size, 6);
  for (const pid of seen) assert.equal(alive(pid), false, `worker ${pid} outlived the primary`);
});

test('SIGTERM to the primary stops every worker, then the primary exits 0', async () => {
  const muxd = await startCluster(2);
  const primary = muxd.proc.pid!;
  const pids = await waitFor('two running workers', async () => {
    const p = await runningWorkers(muxd.httpPort);
    return p.length === 2 ? p : undefined;
  });
  assert.deepEqual(workerPids(primary), pids);
  muxd.proc.kill('SIGTERM');
  const { code } = await exited(muxd);
  assert.equal(code, 0);
  assert.match(muxd.output(), /^muxd: all workers stopped$/m);
  for (const pid of pids) assert.equal(alive(pid), false, `worker ${pid} outlived the primary`);
});

test('SIGHUP reloads with zero downtime: a new set of workers, and no connection attempt fails', async () => {
  const muxd = await startCluster(2);
  const primary = muxd.proc.pid!;
  try {
    const old = await waitFor('two running workers', async () => {
      const p = await runningWorkers(muxd.httpPort);
      return p.length === 2 ? p : undefined;
    });
    let stop = false;
    let ok = 0;
    const failures: string[] = [];
    // Four clients in a loop, each attempt a new connection: two over HTTP, two over MX/1.
    const httpLoop = async (): Promise<void> => {
      while (!stop) {
        if (await httpOnce(muxd.httpPort)) ok++;
        else failures.push('http');
      }
    };
    const mxLoop = async (): Promise<void> => {
      while (!stop) {
        try {
          const c = await connect({ port: muxd.binaryPort, timeoutMs: 5000 });
          await c.ping();
          c.close();
          ok++;
        } catch (err) {
          failures.push(`mx: ${(err as Error).message}`);
        }
      }
    };
    const loops = [httpLoop(), httpLoop(), mxLoop(), mxLoop()];
    await sleep(500);
    muxd.proc.kill('SIGHUP');
    await waitFor('the old workers retired', () => ((muxd.output().match(/retired/g)?.length ?? 0) >= 2 ? true : undefined), 20000).catch((err: Error) => {
      throw new Error(`${err.message}\n${muxd.output()}`);
    });
    await sleep(500);
    stop = true;
    await Promise.all(loops);
    assert.deepEqual(failures, []);
    assert.ok(ok > 20, `only ${ok} attempts`);
    const now = workerPids(primary);
    assert.equal(now.length, 2);
    for (const pid of now) assert.ok(!old.includes(pid), 'a new set of workers');
    assert.match(muxd.output(), /^muxd: reload: generation 2 is listening; the previous workers drain$/m);
    // Still only one set of ready lines.
    assert.equal(muxd.output().match(/^muxd http listening on /gm)?.length, 1);
  } finally {
    await muxd.stop();
  }
});

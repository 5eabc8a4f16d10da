// `muxd serve --workers N` (N > 1): the primary. It serves no client itself: it forks N workers
// (each a whole muxd loop on the same ports), replaces the ones that die, relays between them and
// turns signals into what an operator expects:
//   SIGTERM, SIGINT  every worker drains as one process does, then the primary exits 0;
//   SIGHUP           zero-downtime reload: a new set of workers, and once all of them listen,
//                    the old set drains (the listening sockets stay open throughout);
//   a crash loop     (RestartPolicy) stops everything; the primary exits 1.
// Dead workers are reaped by node (libuv waits for every child on SIGCHLD), so none stays a
// zombie; the 'exit' event below is that reaping, and it is logged in one line.
import cluster, { type Worker } from 'node:cluster';
import type { ServeOptions } from '../server/options.js';
import { readyLine } from '../server/ready.js';
import { announceFromTerminal } from '../server/terminal.js';
import { aggregate, type WorkerView } from './aggregate.js';
import { parseWorkerMessage, WORKER_ENV, type PrimaryMessage, type WorkerInfo, type WorkerMessage } from './messages.js';
import { RestartPolicy, type RestartPolicyOptions } from './policy.js';
import { LocalArbiter, type ChatHub } from '../chat-relay/arbiter.js';
import type { ChatDown } from '../chat-relay/events.js';
import { RedisHub } from '../chat-relay/redis-hub.js';

/** How often the primary recomputes the whole-server stats and hands them to the workers. */
export const AGGREGATE_INTERVAL_MS = 1000;
/** After --shutdown-timeout, a worker that still has not exited is killed (its own abort should have ended it). */
const KILL_GRACE_MS = 5000;

interface Child {
  worker: Worker;
  slot: number;
  generation: number;
  view: WorkerView;
}

export interface PrimaryOptions {
  /** Test hook: a faster restart policy. */
  policy?: Partial<RestartPolicyOptions>;
}

export function runPrimary(opts: ServeOptions, log: (line: string) => void, popts: PrimaryOptions = {}): void {
  // Round-robin: the primary accepts and hands each connection to the next worker. See
  // docs/deploy.md for the measurement behind this choice; MUXD_CLUSTER_SCHED=none lets the
  // kernel spread connections over a listening socket shared by every worker instead.
  cluster.schedulingPolicy = process.env.MUXD_CLUSTER_SCHED === 'none' ? cluster.SCHED_NONE : cluster.SCHED_RR;
  // Workers run this same command line; WORKER_ENV tells them apart.
  cluster.setupPrimary({ exec: process.argv[1], args: process.argv.slice(2) });

  const policy = new RestartPolicy(popts.policy);
  const startedAt = Date.now();
  const children = new Set<Child>();
  const respawnTimers = new Set<NodeJS.Timeout>();
  let generation = 1;
  /** The generation being started by a SIGHUP, until all of its workers listen. */
  let pendingGeneration: number | null = null;
  let reloads = 0;
  let announcedReady = false;
  const readyFaces = new Set<string>();
  let stopping = false;
  let exitCode = 0;

  const send = (c: Child, m: PrimaryMessage): void => {
    if (c.worker.isConnected()) c.worker.send(m, (err: Error | null) => void err /* a worker gone mid-send is handled by 'exit' */);
  };
  /** Children by cluster worker id: the chat hub's owners. */
  const byId = new Map<number, Child>();
  // One chat room for every worker: the primary decides names and orders events.
  // With --chat-redis the room also spans the other servers sharing that Redis.
  const hubOut = {
    send: (owner: number, down: ChatDown): void => {
      const c = byId.get(owner);
      if (c !== undefined) send(c, { t: 'chat', down });
    },
  };
  const hub: ChatHub = opts.chat.redis === null ? new LocalArbiter(hubOut) : new RedisHub({ url: opts.chat.redis, out: hubOut, log });

  /**
   * Drain and exit. A worker still starting has no 'message' listener yet (a message sent now
   * would be lost), so it gets the order when it reports ready.
   */
  const retire = (c: Child): void => {
    const wasStarting = c.view.state === 'starting';
    c.view.state = 'retiring';
    if (!wasStarting) send(c, { t: 'shutdown' });
  };

  const fork = (slot: number, gen: number): void => {
    const info: WorkerInfo = { slot, generation: gen };
    const worker = cluster.fork({ [WORKER_ENV]: JSON.stringify(info) });
    const child: Child = {
      worker,
      slot,
      generation: gen,
      view: { slot, pid: worker.process.pid ?? 0, generation: gen, state: 'starting', restarts: policy.restarts(slot), snapshot: null, previous: null, receivedAt: 0 },
    };
    children.add(child);
    byId.set(worker.id, child);
    policy.started(slot, Date.now());
    worker.on('message', (raw: unknown) => {
      const m = parseWorkerMessage(raw);
      if (m === null) log(`muxd: worker ${slot} (pid ${child.view.pid}) sent a malformed message; ignored`);
      else onMessage(child, m);
    });
    // 'error' on a worker is an IPC failure; its exit follows and is handled there.
    worker.on('error', () => undefined);
    worker.on('exit', (code, signal) => onExit(child, code, signal));
  };

  const onMessage = (c: Child, m: WorkerMessage): void => {
    switch (m.t) {
      case 'ready': {
        if (c.view.state === 'retiring') {
          // Told to go while it was starting: now it can hear the order.
          send(c, { t: 'shutdown' });
          return;
        }
        c.view.state = 'running';
        // From now on it hears every chat event, after the room as it stands.
        hub.attach(c.worker.id);
        if (!announcedReady) {
          announcedReady = true;
          log(`muxd primary pid ${process.pid}: ${opts.cluster.workers} workers`);
        }
        // One ready line per face for the whole server (the workers share the ports); the UDP
        // face's comes with slot 1, whenever that one is ready.
        for (const l of m.listeners) {
          if (readyFaces.has(l.name)) continue;
          readyFaces.add(l.name);
          log(readyLine(l));
        }
        if (pendingGeneration !== null && c.generation === pendingGeneration) {
          handOverUdp();
          finishReloadIfReady();
        }
        return;
      }
      case 'stats': {
        const now = Date.now();
        if (c.view.snapshot) c.view.previous = { snapshot: c.view.snapshot, at: c.view.receivedAt };
        c.view.snapshot = m.snapshot;
        c.view.receivedAt = now;
        return;
      }
      case 'chat':
        hub.handle(c.worker.id, m.up);
        return;
    }
  };

  const onExit = (c: Child, code: number | null, signal: string | null): void => {
    children.delete(c);
    byId.delete(c.worker.id);
    // Its members are gone with it: the others hear them leave (a crash included).
    hub.detach(c.worker.id);
    const how = signal !== null ? `signal ${signal}` : `code ${code}`;
    if (stopping) {
      log(`muxd: worker ${c.slot} (pid ${c.view.pid}) exited (${how})`);
      if (children.size === 0) finishShutdown();
      return;
    }
    if (c.view.state === 'retiring') {
      log(`muxd: worker ${c.slot} (pid ${c.view.pid}, generation ${c.generation}) retired (${how})`);
      // The old UDP holder is gone: the new slot 1 can bind.
      if (pendingGeneration !== null && c.slot === 1 && c.generation !== pendingGeneration && opts.listen.udpPort !== null) fork(1, pendingGeneration);
      return;
    }
    if (pendingGeneration !== null && c.generation === pendingGeneration) {
      // A new worker that dies before listening means the new set cannot serve: keep the old one.
      log(`muxd: worker ${c.slot} (pid ${c.view.pid}) exited (${how}) before listening; reload abandoned, the running workers stay`);
      const abandoned = pendingGeneration;
      pendingGeneration = null;
      generation = abandoned - 1;
      for (const other of children) {
        if (other.generation !== abandoned) continue;
        retire(other);
      }
      // Slots whose old worker died while the reload was pending have no worker now.
      for (let slot = 1; slot <= opts.cluster.workers; slot++) {
        if (![...children].some((o) => o.slot === slot && o.generation === generation)) fork(slot, generation);
      }
      return;
    }
    if (c.generation !== generation) {
      // An old worker that died during a reload: the new set replaces it.
      log(`muxd: worker ${c.slot} (pid ${c.view.pid}, generation ${c.generation}) exited (${how})`);
      return;
    }
    const verdict = policy.died(c.slot, Date.now());
    if (verdict.action === 'crash-loop') {
      log(`muxd: worker ${c.slot} (pid ${c.view.pid}) exited (${how})`);
      log(`muxd: crash loop: ${verdict.deaths} worker deaths within 60 s; stopping every worker and exiting`);
      shutdown(1);
      return;
    }
    log(`muxd: worker ${c.slot} (pid ${c.view.pid}) exited (${how}); restarting it in ${verdict.delayMs / 1000} s`);
    const timer = setTimeout(() => {
      respawnTimers.delete(timer);
      if (!stopping) fork(c.slot, generation);
    }, verdict.delayMs);
    respawnTimers.add(timer);
  };

  const finishReloadIfReady = (): void => {
    const gen = pendingGeneration;
    if (gen === null) return;
    const fresh = [...children].filter((c) => c.generation === gen);
    if (fresh.length < opts.cluster.workers || fresh.some((c) => c.view.state !== 'running')) return;
    pendingGeneration = null;
    generation = gen;
    reloads++;
    log(`muxd: reload: generation ${gen} is listening; the previous workers drain`);
    for (const c of children) {
      if (c.generation === gen) continue;
      retire(c);
    }
  };

  const reload = (): void => {
    if (stopping) return;
    if (pendingGeneration !== null) {
      log('muxd: SIGHUP: a reload is already in progress; ignored');
      return;
    }
    pendingGeneration = generation + 1;
    // The new set fills every slot, including any waiting for a respawn.
    for (const t of respawnTimers) clearTimeout(t);
    respawnTimers.clear();
    log(`muxd: SIGHUP: starting generation ${pendingGeneration} (${opts.cluster.workers} workers)`);
    // Slot 1 serves UDP, whose socket only one process can hold (see worker.ts): the new slot 1
    // starts once the old one has drained; the other slots carry TCP meanwhile.
    const first = opts.listen.udpPort === null ? 1 : 2;
    for (let slot = first; slot <= opts.cluster.workers; slot++) fork(slot, pendingGeneration);
  };

  /** UDP hand-over during a reload: once the new slots 2..N listen, the old slot 1 drains. */
  const handOverUdp = (): void => {
    const gen = pendingGeneration;
    if (gen === null || opts.listen.udpPort === null) return;
    const fresh = [...children].filter((c) => c.generation === gen);
    if (fresh.some((c) => c.slot === 1) || fresh.length < opts.cluster.workers - 1 || fresh.some((c) => c.view.state !== 'running')) return;
    const old = [...children].find((c) => c.slot === 1 && c.generation !== gen && c.view.state !== 'retiring');
    if (old !== undefined) retire(old);
    else fork(1, gen);
  };

  let killTimer: NodeJS.Timeout | null = null;
  const shutdown = (code: number): void => {
    exitCode = Math.max(exitCode, code);
    if (stopping) return;
    stopping = true;
    clearInterval(aggregator);
    for (const t of respawnTimers) clearTimeout(t);
    respawnTimers.clear();
    if (children.size === 0) return finishShutdown();
    for (const c of children) {
      retire(c);
    }
    // Each worker cuts its own in-flight work at --shutdown-timeout; past that and a grace, kill.
    killTimer = setTimeout(() => {
      for (const c of children) {
        log(`muxd: worker ${c.slot} (pid ${c.view.pid}) did not exit after the shutdown timeout; killing it`);
        c.worker.process.kill('SIGKILL');
      }
    }, opts.limits.shutdownTimeoutMs + KILL_GRACE_MS);
    killTimer.unref();
  };

  const finishShutdown = (): void => {
    if (killTimer) clearTimeout(killTimer);
    log(exitCode === 0 ? 'muxd: all workers stopped' : 'muxd: all workers stopped; exiting with status 1');
    // The Redis relay gives its names back (bounded: an unreachable Redis must not hold us up).
    void Promise.race([hub.close(), new Promise((r) => setTimeout(r, 2000).unref())]).finally(() => process.exit(exitCode));
  };

  const aggregator = setInterval(() => {
    const now = Date.now();
    const views = [...children].map((c) => c.view);
    const stats = aggregate(
      { pid: process.pid, rssBytes: process.memoryUsage.rss(), startedAt, workersWanted: opts.cluster.workers, deathsLastMinute: policy.recentDeaths(now), reloads },
      views,
      now,
      { members: hub.size, relay: hub.state() },
    );
    for (const c of children) {
      c.view.restarts = policy.restarts(c.slot);
      if (c.view.state !== 'starting') send(c, { t: 'aggregate', stats });
    }
  }, AGGREGATE_INTERVAL_MS);

  process.on('SIGTERM', () => shutdown(0));
  process.on('SIGINT', () => shutdown(0));
  process.on('SIGHUP', reload);

  // The operator's terminal belongs to the primary: announcements go to every worker's members.
  announceFromTerminal((text) => {
    const recipients = hub.size;
    hub.announce(text);
    return recipients;
  }, log);

  for (let slot = 1; slot <= opts.cluster.workers; slot++) fork(slot, generation);
}

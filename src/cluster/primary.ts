// `muxd serve --workers N` (N > 1): the primary. It serves no client itself: it forks N workers
// (each a whole muxd loop on the same ports), replaces the ones that die, relays between them and
// turns signals into what an operator expects. What to do is decided by the Supervisor
// (supervisor.ts, no I/O); this file is its driver: node:cluster, timers, signals, the chat hub
// and the whole-server stats.
// Dead workers are reaped by node (libuv waits for every child on SIGCHLD), so none stays a
// zombie; the 'exit' event below is that reaping, and it is logged in one line.
import cluster, { type Worker } from 'node:cluster';
import type { ServeOptions } from '../server/options.js';
import { announceFromTerminal } from '../server/terminal.js';
import { aggregate, type WorkerView } from './aggregate.js';
import { parseWorkerMessage, WORKER_ENV, type PrimaryMessage, type WorkerInfo } from './messages.js';
import type { RestartPolicyOptions } from './policy.js';
import { Supervisor, type SupervisorAction, type SupervisorEvent } from './supervisor.js';
import { LocalArbiter, type ChatHub } from '../chat/arbiter.js';
import type { ChatDown } from '../chat/events.js';
import type { RedisHub } from '../chat/redis-hub.js';
import { loadTlsMaterial, newTicketKeys, validityWarning, type TlsMaterial } from '../server/tls.js';
import { TICKET_ROTATION_MS } from './supervisor.js';

/** How often the primary recomputes the whole-server stats and hands them to the workers. */
export const AGGREGATE_INTERVAL_MS = 1000;

interface Child {
  worker: Worker;
  view: WorkerView;
}

export interface PrimaryOptions {
  /** Test hook: a faster restart policy. */
  policy?: Partial<RestartPolicyOptions>;
  /** The Redis hub class, loaded by the caller only for --chat-redis: @redis/client is optional. */
  redisHub?: typeof RedisHub;
}

export function runPrimary(opts: ServeOptions, log: (line: string) => void, popts: PrimaryOptions = {}): void {
  // Round-robin: the primary accepts and hands each connection to the next worker. See
  // docs/deploy.md for the measurement behind this choice; MUXD_CLUSTER_SCHED=none lets the
  // kernel spread connections over a listening socket shared by every worker instead.
  cluster.schedulingPolicy = process.env.MUXD_CLUSTER_SCHED === 'none' ? cluster.SCHED_NONE : cluster.SCHED_RR;
  // Workers run this same command line; WORKER_ENV tells them apart.
  cluster.setupPrimary({ exec: process.argv[1], args: process.argv.slice(2) });

  const workers = opts.cluster.workers;
  // TLS: the primary reads the pair (preflight checked it) and makes the ticket keys; every worker
  // gets both over IPC, so a session ticket from one worker resumes on any other.
  const { cert: certFile, key: keyFile } = opts.tls;
  let tls: { material: TlsMaterial; ticketKeys: Buffer } | null = null;
  if (certFile !== null && keyFile !== null) {
    const loaded = loadTlsMaterial(certFile, keyFile);
    if ('problems' in loaded) throw new Error(loaded.problems.join('; '));
    const warning = validityWarning(certFile, loaded.cert, Date.now());
    if (warning !== null) process.stderr.write(warning + '\n');
    tls = { material: loaded.material, ticketKeys: newTicketKeys() };
  }
  const supervisor = new Supervisor({
    workers,
    udp: opts.listen.udpPort !== null,
    shutdownTimeoutMs: opts.limits.shutdownTimeoutMs,
    pid: process.pid,
    policy: popts.policy,
    tls: tls === null ? undefined : { rotationMs: TICKET_ROTATION_MS },
  });
  const startedAt = Date.now();
  /** By the supervisor's child number. */
  const children = new Map<number, Child>();
  /** The chat hub's owners are node:cluster worker ids. */
  const byWorkerId = new Map<number, Child>();
  const timers = new Map<number, NodeJS.Timeout>();

  const send = (c: Child, m: PrimaryMessage): void => {
    if (c.worker.isConnected()) c.worker.send(m, (err: Error | null) => void err /* a worker gone mid-send is handled by 'exit' */);
  };
  // One chat room for every worker: the primary decides names and orders events.
  // With --chat-redis the room also spans the other servers sharing that Redis.
  const hubOut = {
    send: (owner: number, down: ChatDown): void => {
      const c = byWorkerId.get(owner);
      if (c !== undefined) send(c, { t: 'chat', down });
    },
  };
  let hub: ChatHub;
  if (opts.chat.redis === null) hub = new LocalArbiter(hubOut);
  else if (popts.redisHub !== undefined) hub = new popts.redisHub({ url: opts.chat.redis, out: hubOut, log });
  else throw new Error('--chat-redis: runPrimary needs the RedisHub class (PrimaryOptions.redisHub)');

  const dispatch = (event: SupervisorEvent): void => {
    for (const action of supervisor.handle(event)) execute(action);
  };

  const fork = (child: number, slot: number, generation: number): void => {
    const info: WorkerInfo = { slot, generation };
    const worker = cluster.fork({ [WORKER_ENV]: JSON.stringify(info) });
    const pid = worker.process.pid ?? 0;
    const c: Child = {
      worker,
      view: { slot, pid, generation, state: 'starting', restarts: supervisor.restarts(slot), snapshot: null, previous: null, receivedAt: 0 },
    };
    children.set(child, c);
    byWorkerId.set(worker.id, c);
    worker.on('message', (raw: unknown) => {
      const m = parseWorkerMessage(raw);
      if (m === null) {
        log(`muxd: worker ${slot} (pid ${pid}) sent a malformed message; ignored`);
        return;
      }
      switch (m.t) {
        case 'ready':
          return dispatch({ type: 'ready', child, listeners: m.listeners, now: Date.now() });
        case 'stats': {
          if (c.view.snapshot) c.view.previous = { snapshot: c.view.snapshot, at: c.view.receivedAt };
          c.view.snapshot = m.snapshot;
          c.view.receivedAt = Date.now();
          return;
        }
        case 'chat':
          return hub.handle(worker.id, m.up);
        case 'tls-wanted':
          return dispatch({ type: 'tls-wanted', child, now: Date.now() });
      }
    });
    // 'error' on a worker is an IPC failure; its exit follows and is handled there.
    worker.on('error', () => undefined);
    worker.on('exit', (code, signal) => {
      // The hub can no longer reach it; the supervisor's detach still names it.
      byWorkerId.delete(worker.id);
      dispatch({ type: 'exited', child, code, signal, now: Date.now() });
      children.delete(child);
    });
    dispatch({ type: 'forked', child, pid, now: Date.now() });
  };

  const execute = (a: SupervisorAction): void => {
    switch (a.type) {
      case 'fork':
        return fork(a.child, a.slot, a.generation);
      case 'send': {
        const c = children.get(a.child);
        if (c !== undefined) send(c, a.message);
        return;
      }
      case 'kill':
        children.get(a.child)?.worker.process.kill('SIGKILL');
        return;
      case 'log':
        return log(a.line);
      case 'arm': {
        const t = setTimeout(() => {
          timers.delete(a.timer);
          dispatch({ type: 'timer', timer: a.timer, now: Date.now() });
        }, a.ms);
        timers.set(a.timer, t);
        return;
      }
      case 'disarm':
        clearTimeout(timers.get(a.timer));
        timers.delete(a.timer);
        return;
      case 'attach': {
        const c = children.get(a.child);
        if (c !== undefined) hub.attach(c.worker.id);
        return;
      }
      case 'detach': {
        const c = children.get(a.child);
        if (c !== undefined) hub.detach(c.worker.id);
        return;
      }
      case 'send-tls': {
        const c = children.get(a.child);
        if (c !== undefined && tls !== null) send(c, { t: 'tls', cert: tls.material.cert, key: tls.material.key, ticketKeys: tls.ticketKeys.toString('base64') });
        return;
      }
      case 'rotate-tickets':
        if (tls !== null) tls.ticketKeys = newTicketKeys();
        return;
      case 'reload-tls': {
        if (tls === null || certFile === null || keyFile === null) return;
        const loaded = loadTlsMaterial(certFile, keyFile);
        if ('problems' in loaded) return log(`muxd: TLS reload failed, the certificate in force stays: ${loaded.problems.join('; ')}`);
        tls.material = loaded.material;
        return log(`muxd: TLS certificate reloaded from ${certFile} (valid from ${loaded.cert.validFrom} to ${loaded.cert.validTo}); the new workers use it`);
      }
      case 'exit':
        clearInterval(aggregator);
        // The Redis relay gives its names back (bounded: an unreachable Redis must not hold us up).
        void Promise.race([hub.close(), new Promise((r) => setTimeout(r, 2000).unref())]).finally(() => process.exit(a.code));
        return;
    }
  };

  const aggregator = setInterval(() => {
    if (supervisor.stopping) {
      clearInterval(aggregator);
      return;
    }
    const now = Date.now();
    const states = new Map(supervisor.list().map((s) => [s.child, s.state]));
    for (const [child, c] of children) {
      c.view.state = states.get(child) ?? c.view.state;
      c.view.restarts = supervisor.restarts(c.view.slot);
    }
    const views = [...children.values()].map((c) => c.view);
    const stats = aggregate(
      { pid: process.pid, rssBytes: process.memoryUsage.rss(), startedAt, workersWanted: workers, deathsLastMinute: supervisor.recentDeaths(now), reloads: supervisor.reloads },
      views,
      now,
      { members: hub.size, relay: hub.state() },
    );
    for (const c of children.values()) if (c.view.state !== 'starting') send(c, { t: 'aggregate', stats });
  }, AGGREGATE_INTERVAL_MS);

  process.on('SIGTERM', () => dispatch({ type: 'signal', signal: 'SIGTERM', now: Date.now() }));
  process.on('SIGINT', () => dispatch({ type: 'signal', signal: 'SIGINT', now: Date.now() }));
  process.on('SIGHUP', () => dispatch({ type: 'signal', signal: 'SIGHUP', now: Date.now() }));

  // The operator's terminal belongs to the primary: announcements go to every worker's members.
  announceFromTerminal((text) => {
    const recipients = hub.size;
    hub.announce(text);
    return recipients;
  }, log);

  dispatch({ type: 'start', now: Date.now() });
}

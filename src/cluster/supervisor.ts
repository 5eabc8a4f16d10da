// The primary's supervision as a state machine with no I/O and no clock of its own: events go in
// (a worker forked, ready or exited; a signal; a timer fired; each with the time), actions come
// out (fork, send, kill, log, arm or disarm a timer, attach or detach a worker's chat, exit).
// primary.ts executes the actions with node:cluster; test/cluster/supervisor.test.ts drives it
// with tables of events and the actions they must produce.
//
//   SIGTERM, SIGINT  every worker drains as one process does, then the primary exits 0;
//   SIGHUP           zero-downtime reload: a new set of workers, and once all of them listen,
//                    the old set drains (the listening sockets stay open throughout); with TLS
//                    the primary first re-reads the certificate and key (reload-tls), and the
//                    new set gets that pair (or, when it failed, the one in force);
//   every 12 h       with TLS: new session ticket keys for every worker (rotate-tickets);
//   a death          the slot's worker is replaced after its backoff (RestartPolicy);
//   a crash loop     stops everything; the primary exits 1.
import type { PrimaryMessage } from './messages.js';
import { RestartPolicy, type RestartPolicyOptions } from './policy.js';
import { readyLine, type ReadyListener } from '../server/ready.js';

/** After --shutdown-timeout, a worker that still has not exited is killed (its own abort should have ended it). */
export const KILL_GRACE_MS = 5000;

export type ChildState = 'starting' | 'running' | 'retiring';

export interface SupervisedChild {
  /** The supervisor's own name for this worker process (not node:cluster's id). */
  child: number;
  slot: number;
  generation: number;
  /** 0 until the 'forked' event. */
  pid: number;
  state: ChildState;
}

export type SupervisorEvent =
  | { type: 'start'; now: number }
  | { type: 'forked'; child: number; pid: number; now: number }
  | { type: 'ready'; child: number; listeners: ReadyListener[]; now: number }
  | { type: 'exited'; child: number; code: number | null; signal: string | null; now: number }
  | { type: 'signal'; signal: 'SIGTERM' | 'SIGINT' | 'SIGHUP'; now: number }
  /** A worker asks for the TLS material before it listens. */
  | { type: 'tls-wanted'; child: number; now: number }
  | { type: 'timer'; timer: number; now: number };

export type SupervisorAction =
  /** Fork a worker for this slot and generation; report its pid with a 'forked' event. */
  | { type: 'fork'; child: number; slot: number; generation: number }
  | { type: 'send'; child: number; message: PrimaryMessage }
  /** SIGKILL. */
  | { type: 'kill'; child: number }
  | { type: 'log'; line: string }
  /** Deliver a 'timer' event with this id after ms, unless disarmed first. */
  | { type: 'arm'; timer: number; ms: number }
  | { type: 'disarm'; timer: number }
  /** The worker listens: from now on it hears every chat event (detach: its members are gone). */
  | { type: 'attach'; child: number }
  | { type: 'detach'; child: number }
  /** Every worker is gone: end the primary with this status. */
  | { type: 'exit'; code: number }
  /** Send this worker the TLS pair and ticket keys in force. */
  | { type: 'send-tls'; child: number }
  /** Make new session ticket keys (the sends to each worker follow as send-tls actions). */
  | { type: 'rotate-tickets' }
  /** Re-read --tls-cert/--tls-key; a pair that fails keeps the one in force (one log line). */
  | { type: 'reload-tls' };

/** How often session ticket keys change (then a ticket from before needs a full handshake). */
export const TICKET_ROTATION_MS = 12 * 60 * 60 * 1000;

export interface SupervisorOptions {
  workers: number;
  /** Slot 1 serves UDP, whose socket only one process can hold: a reload hands it over. */
  udp: boolean;
  shutdownTimeoutMs: number;
  /** The primary's pid, for its ready line. */
  pid: number;
  policy?: Partial<RestartPolicyOptions>;
  /** --tls-cert and --tls-key: workers get the primary's material; keys rotate every rotationMs. */
  tls?: { rotationMs: number };
}

type Timer = { kind: 'respawn'; slot: number } | { kind: 'kill' } | { kind: 'tickets' };

export class Supervisor {
  private readonly policy: RestartPolicy;
  private readonly children = new Map<number, SupervisedChild>();
  private readonly timers = new Map<number, Timer>();
  private nextChild = 1;
  private nextTimer = 1;
  private generation = 1;
  /** The generation being started by a SIGHUP, until all of its workers listen. */
  private pending: number | null = null;
  private reloadCount = 0;
  private announced = false;
  private readonly printed = new Set<string>();
  private stoppingFlag = false;
  private exitCode = 0;
  private out: SupervisorAction[] = [];
  /** Workers that asked for the TLS material: they get every rotation. */
  private readonly tlsChildren = new Set<number>();

  constructor(private readonly opts: SupervisorOptions) {
    this.policy = new RestartPolicy(opts.policy);
  }

  get stopping(): boolean {
    return this.stoppingFlag;
  }
  get reloads(): number {
    return this.reloadCount;
  }
  /** Every worker process there is, in fork order. */
  list(): readonly Readonly<SupervisedChild>[] {
    return [...this.children.values()];
  }
  restarts(slot: number): number {
    return this.policy.restarts(slot);
  }
  recentDeaths(now: number): number {
    return this.policy.recentDeaths(now);
  }

  handle(event: SupervisorEvent): SupervisorAction[] {
    this.out = [];
    switch (event.type) {
      case 'start':
        if (this.opts.tls !== undefined) this.arm({ kind: 'tickets' }, this.opts.tls.rotationMs);
        for (let slot = 1; slot <= this.opts.workers; slot++) this.fork(slot, this.generation, event.now);
        break;
      case 'tls-wanted':
        if (this.opts.tls !== undefined && this.children.has(event.child)) {
          this.tlsChildren.add(event.child);
          this.emit({ type: 'send-tls', child: event.child });
        }
        break;
      case 'forked': {
        const c = this.children.get(event.child);
        if (c !== undefined) c.pid = event.pid;
        break;
      }
      case 'ready':
        this.onReady(event.child, event.listeners, event.now);
        break;
      case 'exited':
        this.onExit(event.child, event.signal !== null ? `signal ${event.signal}` : `code ${event.code}`, event.now);
        break;
      case 'signal':
        if (event.signal === 'SIGHUP') this.reload(event.now);
        else this.shutdown(0);
        break;
      case 'timer':
        this.onTimer(event.timer, event.now);
        break;
    }
    return this.out;
  }

  private emit(a: SupervisorAction): void {
    this.out.push(a);
  }
  private log(line: string): void {
    this.emit({ type: 'log', line });
  }
  private arm(timer: Timer, ms: number): void {
    const id = this.nextTimer++;
    this.timers.set(id, timer);
    this.emit({ type: 'arm', timer: id, ms });
  }
  private disarm(which: (t: Timer) => boolean): void {
    for (const [id, t] of this.timers) {
      if (!which(t)) continue;
      this.timers.delete(id);
      this.emit({ type: 'disarm', timer: id });
    }
  }
  private name(c: SupervisedChild): string {
    return `worker ${c.slot} (pid ${c.pid})`;
  }

  private fork(slot: number, generation: number, now: number): void {
    const child = this.nextChild++;
    this.children.set(child, { child, slot, generation, pid: 0, state: 'starting' });
    this.policy.started(slot, now);
    this.emit({ type: 'fork', child, slot, generation });
  }

  /**
   * Drain and exit. A worker still starting has no 'message' listener yet (a message sent now
   * would be lost), so it gets the order when it reports ready.
   */
  private retire(c: SupervisedChild): void {
    const wasStarting = c.state === 'starting';
    c.state = 'retiring';
    if (!wasStarting) this.emit({ type: 'send', child: c.child, message: { t: 'shutdown' } });
  }

  private onReady(child: number, listeners: ReadyListener[], now: number): void {
    const c = this.children.get(child);
    if (c === undefined) return;
    if (c.state === 'retiring') {
      // Told to go while it was starting: now it can hear the order.
      this.emit({ type: 'send', child, message: { t: 'shutdown' } });
      return;
    }
    c.state = 'running';
    this.emit({ type: 'attach', child });
    if (!this.announced) {
      this.announced = true;
      this.log(`muxd primary pid ${this.opts.pid}: ${this.opts.workers} workers`);
    }
    // One ready line per listener name for the whole server (the workers share the ports); the
    // UDP face's comes with slot 1, whenever that one is ready.
    for (const l of listeners) {
      if (this.printed.has(l.name)) continue;
      this.printed.add(l.name);
      this.log(readyLine(l));
    }
    if (this.pending !== null && c.generation === this.pending) {
      this.handOverUdp(now);
      this.finishReloadIfReady();
    }
  }

  private onExit(child: number, how: string, now: number): void {
    const c = this.children.get(child);
    if (c === undefined) return;
    this.children.delete(child);
    this.tlsChildren.delete(child);
    // Its members are gone with it: the others hear them leave (a crash included).
    this.emit({ type: 'detach', child });
    if (this.stoppingFlag) {
      this.log(`muxd: ${this.name(c)} exited (${how})`);
      if (this.children.size === 0) this.finishShutdown();
      return;
    }
    if (c.state === 'retiring') {
      this.log(`muxd: worker ${c.slot} (pid ${c.pid}, generation ${c.generation}) retired (${how})`);
      // The old UDP holder is gone: the new slot 1 can bind.
      if (this.pending !== null && c.slot === 1 && c.generation !== this.pending && this.opts.udp) this.fork(1, this.pending, now);
      return;
    }
    if (this.pending !== null && c.generation === this.pending) {
      // A new worker that dies before listening means the new set cannot serve: keep the old one.
      this.log(`muxd: ${this.name(c)} exited (${how}) before listening; reload abandoned, the running workers stay`);
      const abandoned = this.pending;
      this.pending = null;
      this.generation = abandoned - 1;
      for (const other of this.children.values()) if (other.generation === abandoned) this.retire(other);
      // Slots whose old worker died while the reload was pending have no worker now.
      for (let slot = 1; slot <= this.opts.workers; slot++) {
        if (![...this.children.values()].some((o) => o.slot === slot && o.generation === this.generation)) this.fork(slot, this.generation, now);
      }
      return;
    }
    if (c.generation !== this.generation) {
      // An old worker that died during a reload: the new set replaces it.
      this.log(`muxd: worker ${c.slot} (pid ${c.pid}, generation ${c.generation}) exited (${how})`);
      return;
    }
    const verdict = this.policy.died(c.slot, now);
    if (verdict.action === 'crash-loop') {
      this.log(`muxd: ${this.name(c)} exited (${how})`);
      this.log(`muxd: crash loop: ${verdict.deaths} worker deaths within 60 s; stopping every worker and exiting`);
      this.shutdown(1);
      return;
    }
    this.log(`muxd: ${this.name(c)} exited (${how}); restarting it in ${verdict.delayMs / 1000} s`);
    this.arm({ kind: 'respawn', slot: c.slot }, verdict.delayMs);
  }

  private onTimer(id: number, now: number): void {
    const t = this.timers.get(id);
    if (t === undefined) return;
    this.timers.delete(id);
    if (t.kind === 'respawn') {
      if (!this.stoppingFlag) this.fork(t.slot, this.generation, now);
      return;
    }
    if (t.kind === 'tickets') {
      // Node holds one ticket key per context: tickets issued before a rotation no longer
      // decrypt after it (those clients make one full handshake).
      this.emit({ type: 'rotate-tickets' });
      for (const child of this.tlsChildren) this.emit({ type: 'send-tls', child });
      if (this.opts.tls !== undefined) this.arm({ kind: 'tickets' }, this.opts.tls.rotationMs);
      return;
    }
    for (const c of this.children.values()) {
      this.log(`muxd: ${this.name(c)} did not exit after the shutdown timeout; killing it`);
      this.emit({ type: 'kill', child: c.child });
    }
  }

  private finishReloadIfReady(): void {
    const gen = this.pending;
    if (gen === null) return;
    const fresh = [...this.children.values()].filter((c) => c.generation === gen);
    if (fresh.length < this.opts.workers || fresh.some((c) => c.state !== 'running')) return;
    this.pending = null;
    this.generation = gen;
    this.reloadCount++;
    this.log(`muxd: reload: generation ${gen} is listening; the previous workers drain`);
    for (const c of this.children.values()) if (c.generation !== gen) this.retire(c);
  }

  private reload(now: number): void {
    if (this.stoppingFlag) return;
    if (this.pending !== null) {
      this.log('muxd: SIGHUP: a reload is already in progress; ignored');
      return;
    }
    const gen = this.generation + 1;
    this.pending = gen;
    // Before the new set asks for it: the pair it gets is the one just read (or the old one).
    if (this.opts.tls !== undefined) this.emit({ type: 'reload-tls' });
    // The new set fills every slot, including any waiting for a respawn.
    this.disarm((t) => t.kind === 'respawn');
    this.log(`muxd: SIGHUP: starting generation ${gen} (${this.opts.workers} workers)`);
    // Slot 1 serves UDP, whose socket only one process can hold (see worker.ts): the new slot 1
    // starts once the old one has drained; the other slots carry TCP meanwhile.
    const first = this.opts.udp ? 2 : 1;
    for (let slot = first; slot <= this.opts.workers; slot++) this.fork(slot, gen, now);
  }

  /** UDP hand-over during a reload: once the new slots 2..N listen, the old slot 1 drains. */
  private handOverUdp(now: number): void {
    const gen = this.pending;
    if (gen === null || !this.opts.udp) return;
    const all = [...this.children.values()];
    const fresh = all.filter((c) => c.generation === gen);
    if (fresh.some((c) => c.slot === 1) || fresh.length < this.opts.workers - 1 || fresh.some((c) => c.state !== 'running')) return;
    const old = all.find((c) => c.slot === 1 && c.generation !== gen && c.state !== 'retiring');
    if (old !== undefined) this.retire(old);
    else this.fork(1, gen, now);
  }

  private shutdown(code: number): void {
    this.exitCode = Math.max(this.exitCode, code);
    if (this.stoppingFlag) return;
    this.stoppingFlag = true;
    this.disarm((t) => t.kind === 'respawn' || t.kind === 'tickets');
    if (this.children.size === 0) return this.finishShutdown();
    for (const c of this.children.values()) this.retire(c);
    // Each worker cuts its own in-flight work at --shutdown-timeout; past that and a grace, kill.
    this.arm({ kind: 'kill' }, this.opts.shutdownTimeoutMs + KILL_GRACE_MS);
  }

  private finishShutdown(): void {
    this.disarm((t) => t.kind === 'kill');
    this.log(this.exitCode === 0 ? 'muxd: all workers stopped' : 'muxd: all workers stopped; exiting with status 1');
    this.emit({ type: 'exit', code: this.exitCode });
  }
}

// One worker of `muxd serve --workers N`: a whole single-process muxd (src/server/serve.ts) plus
// the IPC with the primary: its listeners once (as data: the primary prints the ready lines), a
// metrics snapshot every second, and the primary's orders (drain, announce) and whole-server stats.
import cluster from 'node:cluster';
import type { ServeOptions } from '../server/options.js';
import type { MetricsSnapshot } from '../loop/metrics.js';
import { serve, type Running } from '../server/serve.js';
import { RelayedRoom } from '../chat/relayed-room.js';
import { parsePrimaryMessage, type WorkerInfo, type WorkerMessage } from './messages.js';
import type { TlsMaterial } from '../server/tls.js';

/** How often a worker sends its snapshot to the primary. */
export const SNAPSHOT_INTERVAL_MS = 1000;
/** Between a retiring worker's last accept and its drain (see stop()). */
const RETIRE_GRACE_MS = 300;
/** Longest wait for the primary to acknowledge a worker's goodbye. */
const DISCONNECT_TIMEOUT_MS = 5000;
/** Longest wait for the primary's TLS material before giving up on starting. */
const TLS_WAIT_MS = 10_000;

export async function runWorker(opts: ServeOptions, info: WorkerInfo, log: (line: string) => void): Promise<void> {
  if (!cluster.isWorker || !process.send) throw new Error('runWorker: not a cluster worker');
  const send = (m: WorkerMessage): void => {
    if (process.connected) process.send!(m, undefined, undefined, (err: Error | null) => void err /* the primary is gone: 'disconnect' handles it */);
  };
  let aggregate: MetricsSnapshot | null = null;
  let running: Running | null = null;
  let stopping = false;
  let reporter: NodeJS.Timeout | undefined;
  // With round-robin the primary may have handed this worker a connection just before it saw the
  // listener close; the worker answers such a hand-off "not accepted" and the primary gives it to
  // another worker, but only while the channel is open. disconnect() waits for the primary's
  // acknowledgement, so every hand-off sent before it has been answered when the channel closes.
  const leave = (code: number): void => {
    process.once('disconnect', () => process.exit(code));
    setTimeout(() => process.exit(code), DISCONNECT_TIMEOUT_MS).unref();
    cluster.worker!.disconnect();
  };
  /** Drain and exit; an order that arrives while the worker is still starting is carried out once it listens. */
  const stop = (): void => {
    stopping = true;
    if (running === null) return;
    const r = running;
    running = null;
    clearInterval(reporter);
    // Stop taking connections first; the primary hands new ones to the other workers. Those this
    // worker accepted a moment ago have not sent their first request yet, and a drain closes an
    // idle connection at once: give them a moment to be in flight (a reload's clients must not
    // see a connection closed unanswered), then drain as one process does on SIGTERM.
    for (const l of r.listeners) l.stopAccepting();
    void new Promise((resolve) => setTimeout(resolve, RETIRE_GRACE_MS))
      .then(() => r.shutdown(opts.limits.shutdownTimeoutMs))
      .then(
        () => leave(0),
        () => leave(1),
      );
  };
  // One chat room across the workers: this worker's members, every change relayed by the primary.
  let room: RelayedRoom | null = null;
  // TLS: the primary's pair and ticket keys; the first arrival lets serve() start.
  let tls: { material: TlsMaterial; ticketKeys: Buffer } | null = null;
  // Read through a function: the message handler assigns `tls`, which flow analysis cannot see.
  const tlsNow = (): { material: TlsMaterial; ticketKeys: Buffer } | null => tls;
  let tlsArrived: (() => void) | null = null;
  // Listen for orders before starting, so a shutdown sent during startup is not lost.
  process.on('message', (raw: unknown) => {
    const m = parsePrimaryMessage(raw);
    if (m === null) return;
    switch (m.t) {
      case 'shutdown':
        return stop();
      case 'aggregate':
        aggregate = m.stats as MetricsSnapshot;
        return;
      case 'chat':
        room?.apply(m.down);
        return;
      case 'tls':
        tls = { material: { cert: m.cert, key: m.key }, ticketKeys: Buffer.from(m.ticketKeys, 'base64') };
        running?.setTls(tls.material, tls.ticketKeys);
        tlsArrived?.();
        return;
    }
  });
  if (opts.tls.cert !== null && opts.tls.key !== null) {
    const arrived = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), TLS_WAIT_MS);
      tlsArrived = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
    send({ t: 'tls-wanted' });
    if (!(await arrived)) {
      log(`muxd: worker ${info.slot} (pid ${process.pid}) failed to start: no TLS material from the primary within ${TLS_WAIT_MS / 1000} s`);
      process.exit(1);
    }
  }
  // Ctrl-C and a terminal hangup reach the whole process group: the primary decides for all.
  process.on('SIGINT', () => undefined);
  process.on('SIGHUP', () => undefined);
  // SIGTERM to one worker (kill PID) drains that worker; the primary then replaces it.
  process.on('SIGTERM', stop);
  // Without a primary nobody supervises: node's cluster code exits a worker whose channel closes
  // unasked (the primary was killed), so no worker outlives its primary.

  let started: Running;
  const startedWith = tlsNow();
  try {
    // Port 0 works too: node:cluster keys the listening socket by the address asked for, so every
    // worker asking for port 0 gets the one socket the first request opened, while any worker holds it.
    // UDP: node:cluster shares one datagram socket among workers and the kernel hands each
    // datagram to any of them, but a UDP member's session lives in one process. So one worker
    // (slot 1) serves UDP; its members are in the shared room like everyone else.
    const own: ServeOptions = { ...opts, cluster: { ...opts.cluster, workers: 1 }, listen: { ...opts.listen, udpPort: info.slot === 1 ? opts.listen.udpPort : null } };
    started = await serve(own, log, {
      // The primary prints one set of ready lines for the whole server, from the ready message.
      printReady: false,
      // Until the primary's first whole-server view arrives, the worker's own is the best there is.
      statsProvider: (local) => aggregate ?? local,
      sharedListeners: true,
      tls: startedWith ?? undefined,
      room: (metrics) => {
        const relayed = new RelayedRoom((up) => send({ t: 'chat', up }), opts.limits.maxOutput, (member, reason, slow) => {
          if (slow) metrics.count('binary.slowConsumersDropped');
          log(`binary: dropped ${member.name}: ${reason}`);
        });
        metrics.gauge('chatLocalMembers', () => relayed.localSize);
        room = relayed;
        return relayed;
      },
    });
  } catch (err) {
    log(`muxd: worker ${info.slot} (pid ${process.pid}) failed to start: ${(err as Error).message}`);
    process.exit(1);
  }
  running = started;
  // Keys rotated while serve() was starting: apply the latest.
  const latest = tlsNow();
  if (latest !== null && latest !== startedWith) started.setTls(latest.material, latest.ticketKeys);
  const { metrics } = started;
  send({ t: 'ready', listeners: started.ready });
  send({ t: 'stats', snapshot: metrics.snapshot() });
  reporter = setInterval(() => send({ t: 'stats', snapshot: metrics.snapshot() }), SNAPSHOT_INTERVAL_MS);
  if (stopping) stop();
}

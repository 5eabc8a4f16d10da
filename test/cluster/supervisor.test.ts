// The primary's supervision as tables: each case is a sequence of events with the actions each
// must produce, exactly, in order. No processes, no clock: time is a number in the events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KILL_GRACE_MS, Supervisor, TICKET_ROTATION_MS, type SupervisorAction, type SupervisorEvent, type SupervisorOptions } from '../../src/cluster/supervisor.js';

const S = 1000;
const PID = 4242;
const LISTENERS = [
  { name: 'http', display: 'http://127.0.0.1:8080' },
  { name: 'binary', display: '127.0.0.1:9000' },
];
const UDP = { name: 'udp', display: '127.0.0.1:9000' };

type Step = { event: SupervisorEvent; expect: SupervisorAction[] };

const log = (line: string): SupervisorAction => ({ type: 'log', line });
const fork = (child: number, slot: number, generation = 1): SupervisorAction => ({ type: 'fork', child, slot, generation });
const shutdownOrder = (child: number): SupervisorAction => ({ type: 'send', child, message: { t: 'shutdown' } });

const start = (now = 0): SupervisorEvent => ({ type: 'start', now });
const forked = (child: number, pid: number, now = 0): SupervisorEvent => ({ type: 'forked', child, pid, now });
const ready = (child: number, now = 0, listeners = LISTENERS): SupervisorEvent => ({ type: 'ready', child, listeners, now });
const killed = (child: number, now: number): SupervisorEvent => ({ type: 'exited', child, code: null, signal: 'SIGKILL', now });
const exitedOk = (child: number, now: number): SupervisorEvent => ({ type: 'exited', child, code: 0, signal: null, now });
const signal = (s: 'SIGTERM' | 'SIGINT' | 'SIGHUP', now = 0): SupervisorEvent => ({ type: 'signal', signal: s, now });
const timer = (id: number, now: number): SupervisorEvent => ({ type: 'timer', timer: id, now });
const tlsWanted = (child: number, now = 0): SupervisorEvent => ({ type: 'tls-wanted', child, now });

/** Two workers forked (pids 101, 102) and both ready: the steps every case starts from. */
const twoRunning: Step[] = [
  { event: start(), expect: [fork(1, 1), fork(2, 2)] },
  { event: forked(1, 101), expect: [] },
  { event: forked(2, 102), expect: [] },
  {
    event: ready(1, 0, [...LISTENERS, UDP]),
    expect: [{ type: 'attach', child: 1 }, log(`muxd primary pid ${PID}: 2 workers`), log('muxd http listening on http://127.0.0.1:8080'), log('muxd binary listening on 127.0.0.1:9000'), log('muxd udp listening on 127.0.0.1:9000')],
  },
  // The same listeners again: one set of ready lines for the whole server.
  { event: ready(2), expect: [{ type: 'attach', child: 2 }] },
];

const cases: { name: string; opts?: Partial<SupervisorOptions>; steps: Step[] }[] = [
  {
    name: 'start: one ready line per listener, the UDP one whenever slot 1 reports it',
    steps: [
      { event: start(), expect: [fork(1, 1), fork(2, 2)] },
      { event: forked(1, 101), expect: [] },
      { event: forked(2, 102), expect: [] },
      { event: ready(2), expect: [{ type: 'attach', child: 2 }, log(`muxd primary pid ${PID}: 2 workers`), log('muxd http listening on http://127.0.0.1:8080'), log('muxd binary listening on 127.0.0.1:9000')] },
      { event: ready(1, 0, [...LISTENERS, UDP]), expect: [{ type: 'attach', child: 1 }, log('muxd udp listening on 127.0.0.1:9000')] },
    ],
  },
  {
    name: 'a dead worker is replaced after its backoff, which doubles',
    steps: [
      ...twoRunning,
      { event: killed(1, 1 * S), expect: [{ type: 'detach', child: 1 }, log('muxd: worker 1 (pid 101) exited (signal SIGKILL); restarting it in 1 s'), { type: 'arm', timer: 1, ms: 1000 }] },
      { event: timer(1, 2 * S), expect: [fork(3, 1)] },
      { event: forked(3, 103, 2 * S), expect: [] },
      { event: ready(3, 2 * S), expect: [{ type: 'attach', child: 3 }] },
      { event: killed(3, 3 * S), expect: [{ type: 'detach', child: 3 }, log('muxd: worker 1 (pid 103) exited (signal SIGKILL); restarting it in 2 s'), { type: 'arm', timer: 2, ms: 2000 }] },
      // A timer that was never armed (or already fired) does nothing.
      { event: timer(1, 4 * S), expect: [] },
      { event: timer(2, 5 * S), expect: [fork(4, 1)] },
    ],
  },
  {
    name: 'the sixth death within 60 s is a crash loop: every worker stops, then exit 1',
    steps: [
      ...twoRunning,
      { event: killed(1, 1 * S), expect: [{ type: 'detach', child: 1 }, log('muxd: worker 1 (pid 101) exited (signal SIGKILL); restarting it in 1 s'), { type: 'arm', timer: 1, ms: 1000 }] },
      { event: timer(1, 2 * S), expect: [fork(3, 1)] },
      { event: forked(3, 103), expect: [] },
      { event: killed(3, 3 * S), expect: [{ type: 'detach', child: 3 }, log('muxd: worker 1 (pid 103) exited (signal SIGKILL); restarting it in 2 s'), { type: 'arm', timer: 2, ms: 2000 }] },
      { event: timer(2, 5 * S), expect: [fork(4, 1)] },
      { event: forked(4, 104), expect: [] },
      { event: killed(4, 6 * S), expect: [{ type: 'detach', child: 4 }, log('muxd: worker 1 (pid 104) exited (signal SIGKILL); restarting it in 4 s'), { type: 'arm', timer: 3, ms: 4000 }] },
      { event: timer(3, 10 * S), expect: [fork(5, 1)] },
      { event: forked(5, 105), expect: [] },
      { event: killed(5, 11 * S), expect: [{ type: 'detach', child: 5 }, log('muxd: worker 1 (pid 105) exited (signal SIGKILL); restarting it in 8 s'), { type: 'arm', timer: 4, ms: 8000 }] },
      // Slot 2 dies while slot 1 waits for its respawn: the fifth death, still tolerated.
      { event: killed(2, 12 * S), expect: [{ type: 'detach', child: 2 }, log('muxd: worker 2 (pid 102) exited (signal SIGKILL); restarting it in 1 s'), { type: 'arm', timer: 5, ms: 1000 }] },
      { event: timer(5, 13 * S), expect: [fork(6, 2)] },
      { event: forked(6, 106), expect: [] },
      {
        event: killed(6, 14 * S),
        expect: [
          { type: 'detach', child: 6 },
          log('muxd: worker 2 (pid 106) exited (signal SIGKILL)'),
          log('muxd: crash loop: 6 worker deaths within 60 s; stopping every worker and exiting'),
          // The pending respawn of slot 1 is called off; nobody is left, so the primary ends.
          { type: 'disarm', timer: 4 },
          log('muxd: all workers stopped; exiting with status 1'),
          { type: 'exit', code: 1 },
        ],
      },
    ],
  },
  {
    name: 'SIGTERM: every worker drains, a kill timer is armed, the last exit ends the primary with 0',
    steps: [
      ...twoRunning,
      { event: signal('SIGTERM'), expect: [shutdownOrder(1), shutdownOrder(2), { type: 'arm', timer: 1, ms: 30 * S + KILL_GRACE_MS }] },
      // A second signal changes nothing.
      { event: signal('SIGINT'), expect: [] },
      { event: signal('SIGHUP'), expect: [] },
      { event: exitedOk(1, 1 * S), expect: [{ type: 'detach', child: 1 }, log('muxd: worker 1 (pid 101) exited (code 0)')] },
      { event: exitedOk(2, 2 * S), expect: [{ type: 'detach', child: 2 }, log('muxd: worker 2 (pid 102) exited (code 0)'), { type: 'disarm', timer: 1 }, log('muxd: all workers stopped'), { type: 'exit', code: 0 }] },
    ],
  },
  {
    name: 'SIGTERM: a worker that outlives the timeout and grace is killed',
    opts: { shutdownTimeoutMs: 2 * S },
    steps: [
      ...twoRunning,
      { event: signal('SIGINT'), expect: [shutdownOrder(1), shutdownOrder(2), { type: 'arm', timer: 1, ms: 2 * S + KILL_GRACE_MS }] },
      { event: exitedOk(1, 1 * S), expect: [{ type: 'detach', child: 1 }, log('muxd: worker 1 (pid 101) exited (code 0)')] },
      { event: timer(1, 7 * S), expect: [log('muxd: worker 2 (pid 102) did not exit after the shutdown timeout; killing it'), { type: 'kill', child: 2 }] },
      { event: killed(2, 7 * S), expect: [{ type: 'detach', child: 2 }, log('muxd: worker 2 (pid 102) exited (signal SIGKILL)'), log('muxd: all workers stopped'), { type: 'exit', code: 0 }] },
    ],
  },
  {
    name: 'SIGTERM while a worker starts: it hears the order once it reports ready',
    steps: [
      { event: start(), expect: [fork(1, 1), fork(2, 2)] },
      { event: forked(1, 101), expect: [] },
      { event: forked(2, 102), expect: [] },
      { event: ready(1), expect: [{ type: 'attach', child: 1 }, log(`muxd primary pid ${PID}: 2 workers`), log('muxd http listening on http://127.0.0.1:8080'), log('muxd binary listening on 127.0.0.1:9000')] },
      { event: signal('SIGTERM'), expect: [shutdownOrder(1), { type: 'arm', timer: 1, ms: 30 * S + KILL_GRACE_MS }] },
      { event: ready(2), expect: [shutdownOrder(2)] },
    ],
  },
  {
    name: 'SIGTERM calls off a pending respawn',
    steps: [
      ...twoRunning,
      { event: killed(1, 1 * S), expect: [{ type: 'detach', child: 1 }, log('muxd: worker 1 (pid 101) exited (signal SIGKILL); restarting it in 1 s'), { type: 'arm', timer: 1, ms: 1000 }] },
      { event: signal('SIGTERM'), expect: [{ type: 'disarm', timer: 1 }, shutdownOrder(2), { type: 'arm', timer: 2, ms: 30 * S + KILL_GRACE_MS }] },
      { event: timer(1, 2 * S), expect: [] },
    ],
  },
  {
    name: 'SIGHUP with UDP: slots 2..N first, then the old slot 1 drains, the new slot 1 binds, then the rest drain',
    steps: [
      ...twoRunning,
      { event: signal('SIGHUP', 10 * S), expect: [log('muxd: SIGHUP: starting generation 2 (2 workers)'), fork(3, 2, 2)] },
      { event: signal('SIGHUP', 10 * S), expect: [log('muxd: SIGHUP: a reload is already in progress; ignored')] },
      { event: forked(3, 103), expect: [] },
      // The new slot 2 listens: the old slot 1 lets go of the UDP socket.
      { event: ready(3, 11 * S), expect: [{ type: 'attach', child: 3 }, shutdownOrder(1)] },
      { event: exitedOk(1, 12 * S), expect: [{ type: 'detach', child: 1 }, log('muxd: worker 1 (pid 101, generation 1) retired (code 0)'), fork(4, 1, 2)] },
      { event: forked(4, 104), expect: [] },
      { event: ready(4, 13 * S, [...LISTENERS, UDP]), expect: [{ type: 'attach', child: 4 }, log('muxd: reload: generation 2 is listening; the previous workers drain'), shutdownOrder(2)] },
      { event: exitedOk(2, 14 * S), expect: [{ type: 'detach', child: 2 }, log('muxd: worker 2 (pid 102, generation 1) retired (code 0)')] },
      // The new generation's deaths are ordinary deaths now.
      { event: killed(3, 15 * S), expect: [{ type: 'detach', child: 3 }, log('muxd: worker 2 (pid 103) exited (signal SIGKILL); restarting it in 1 s'), { type: 'arm', timer: 1, ms: 1000 }] },
      { event: timer(1, 16 * S), expect: [fork(5, 2, 2)] },
    ],
  },
  {
    name: 'SIGHUP without UDP: every slot at once, and the old set drains when all listen',
    opts: { udp: false },
    steps: [
      ...twoRunning,
      { event: signal('SIGHUP'), expect: [log('muxd: SIGHUP: starting generation 2 (2 workers)'), fork(3, 1, 2), fork(4, 2, 2)] },
      { event: forked(3, 103), expect: [] },
      { event: forked(4, 104), expect: [] },
      { event: ready(3), expect: [{ type: 'attach', child: 3 }] },
      { event: ready(4), expect: [{ type: 'attach', child: 4 }, log('muxd: reload: generation 2 is listening; the previous workers drain'), shutdownOrder(1), shutdownOrder(2)] },
    ],
  },
  {
    name: 'SIGHUP: a new worker that dies before listening abandons the reload; the old set stays',
    opts: { udp: false },
    steps: [
      ...twoRunning,
      { event: signal('SIGHUP'), expect: [log('muxd: SIGHUP: starting generation 2 (2 workers)'), fork(3, 1, 2), fork(4, 2, 2)] },
      { event: forked(3, 103), expect: [] },
      { event: forked(4, 104), expect: [] },
      { event: ready(3), expect: [{ type: 'attach', child: 3 }] },
      { event: exitedOk(4, 1 * S), expect: [{ type: 'detach', child: 4 }, log('muxd: worker 2 (pid 104) exited (code 0) before listening; reload abandoned, the running workers stay'), shutdownOrder(3)] },
      { event: exitedOk(3, 2 * S), expect: [{ type: 'detach', child: 3 }, log('muxd: worker 1 (pid 103, generation 2) retired (code 0)')] },
      // The next SIGHUP tries generation 2 again.
      { event: signal('SIGHUP'), expect: [log('muxd: SIGHUP: starting generation 2 (2 workers)'), fork(5, 1, 2), fork(6, 2, 2)] },
    ],
  },
  {
    name: 'SIGHUP: an old worker that dies while the reload is pending is not respawned once the reload is done',
    opts: { udp: false },
    steps: [
      ...twoRunning,
      { event: killed(1, 1 * S), expect: [{ type: 'detach', child: 1 }, log('muxd: worker 1 (pid 101) exited (signal SIGKILL); restarting it in 1 s'), { type: 'arm', timer: 1, ms: 1000 }] },
      // The reload fills every slot, so the respawn is called off.
      { event: signal('SIGHUP', 1.5 * S), expect: [{ type: 'disarm', timer: 1 }, log('muxd: SIGHUP: starting generation 2 (2 workers)'), fork(3, 1, 2), fork(4, 2, 2)] },
    ],
  },
  {
    name: 'TLS: a worker that asks gets the material; every 12 h new ticket keys reach every worker that asked; SIGHUP re-reads the pair before the new set forks',
    opts: { udp: false, tls: { rotationMs: TICKET_ROTATION_MS } },
    steps: [
      { event: start(), expect: [{ type: 'arm', timer: 1, ms: 12 * 3600 * S }, fork(1, 1), fork(2, 2)] },
      { event: forked(1, 101), expect: [] },
      { event: forked(2, 102), expect: [] },
      { event: tlsWanted(1), expect: [{ type: 'send-tls', child: 1 }] },
      { event: tlsWanted(2), expect: [{ type: 'send-tls', child: 2 }] },
      { event: ready(1), expect: [{ type: 'attach', child: 1 }, log(`muxd primary pid ${PID}: 2 workers`), log('muxd http listening on http://127.0.0.1:8080'), log('muxd binary listening on 127.0.0.1:9000')] },
      { event: ready(2), expect: [{ type: 'attach', child: 2 }] },
      { event: timer(1, 12 * 3600 * S), expect: [{ type: 'rotate-tickets' }, { type: 'send-tls', child: 1 }, { type: 'send-tls', child: 2 }, { type: 'arm', timer: 2, ms: 12 * 3600 * S }] },
      // A dead worker hears no rotation; its replacement asks for itself.
      { event: killed(2, 13 * 3600 * S), expect: [{ type: 'detach', child: 2 }, log('muxd: worker 2 (pid 102) exited (signal SIGKILL); restarting it in 1 s'), { type: 'arm', timer: 3, ms: 1000 }] },
      { event: timer(3, 13 * 3600 * S + 1000), expect: [fork(3, 2)] },
      { event: forked(3, 103), expect: [] },
      { event: timer(2, 24 * 3600 * S), expect: [{ type: 'rotate-tickets' }, { type: 'send-tls', child: 1 }, { type: 'arm', timer: 4, ms: 12 * 3600 * S }] },
      { event: tlsWanted(3), expect: [{ type: 'send-tls', child: 3 }] },
      { event: signal('SIGHUP'), expect: [{ type: 'reload-tls' }, log('muxd: SIGHUP: starting generation 2 (2 workers)'), fork(4, 1, 2), fork(5, 2, 2)] },
      // Stopping: no more rotations.
      { event: signal('SIGTERM'), expect: [{ type: 'disarm', timer: 4 }, shutdownOrder(1), { type: 'arm', timer: 5, ms: 30 * S + KILL_GRACE_MS }] },
    ],
  },
  {
    name: 'without TLS a tls-wanted is ignored and no rotation is armed',
    steps: [
      { event: start(), expect: [fork(1, 1), fork(2, 2)] },
      { event: tlsWanted(1), expect: [] },
    ],
  },
];

for (const c of cases) {
  test(`supervisor: ${c.name}`, () => {
    const sup = new Supervisor({ workers: 2, udp: true, shutdownTimeoutMs: 30 * S, pid: PID, ...c.opts });
    c.steps.forEach((step, i) => {
      assert.deepEqual(sup.handle(step.event), step.expect, `step ${i}: ${JSON.stringify(step.event)}`);
    });
  });
}

test('supervisor: what the stats read (states, restarts, deaths, reloads)', () => {
  const sup = new Supervisor({ workers: 2, udp: false, shutdownTimeoutMs: 30 * S, pid: PID });
  for (const step of twoRunning) sup.handle(step.event);
  assert.deepEqual(
    sup.list().map((c) => [c.child, c.slot, c.generation, c.pid, c.state]),
    [
      [1, 1, 1, 101, 'running'],
      [2, 2, 1, 102, 'running'],
    ],
  );
  sup.handle(killed(2, 5 * S));
  assert.equal(sup.restarts(2), 1);
  assert.equal(sup.recentDeaths(5 * S), 1);
  assert.equal(sup.recentDeaths(70 * S), 0);
  sup.handle(signal('SIGHUP', 6 * S));
  assert.deepEqual(
    sup.list().map((c) => [c.child, c.generation, c.state]),
    [
      [1, 1, 'running'],
      [3, 2, 'starting'],
      [4, 2, 'starting'],
    ],
  );
  sup.handle(forked(3, 103));
  sup.handle(forked(4, 104));
  sup.handle(ready(3));
  sup.handle(ready(4));
  assert.equal(sup.reloads, 1);
  assert.deepEqual(sup.list()[0], { child: 1, slot: 1, generation: 1, pid: 101, state: 'retiring' });
  assert.equal(sup.stopping, false);
  sup.handle(signal('SIGTERM'));
  assert.equal(sup.stopping, true);
});

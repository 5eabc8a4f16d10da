// The protocol-free loop layer: deadlines, the cached clock, metrics and the listener's cap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Sweeper, type Timed } from '../../src/loop/sweeper.js';
import { httpDate } from '../../src/loop/clock.js';
import { Metrics, LOOP_WINDOW_MS } from '../../src/loop/metrics.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { listen } from '../../src/loop/listener.js';
import { waitFor } from '../helpers/wait.js';

test('sweeper fires due deadlines once, skips disarmed and future ones', () => {
  const sweeper = new Sweeper(1000);
  const fired: string[] = [];
  const make = (name: string, deadline: number): Timed => ({ deadline, onDeadline: () => fired.push(name) });
  const due = make('due', 100);
  const later = make('later', 500);
  const off = make('off', 0);
  [due, later, off].forEach((t) => sweeper.add(t));
  sweeper.sweep(200);
  assert.deepEqual(fired, ['due']);
  assert.equal(due.deadline, 0, 'disarmed after firing');
  sweeper.sweep(300);
  assert.deepEqual(fired, ['due']);
  sweeper.delete(later);
  sweeper.sweep(1000);
  assert.deepEqual(fired, ['due']);
  sweeper.stop();
});

test('httpDate is an IMF-fixdate (RFC 9110 §5.6.7) and stable within a second', () => {
  const a = httpDate();
  assert.match(a, /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$/);
  assert.ok(Math.abs(Date.parse(a) - Date.now()) < 2000);
  assert.equal(httpDate(), httpDate());
});

test('metrics snapshot carries counters, gauges, connections and event-loop figures', () => {
  const m = new Metrics();
  m.count('x');
  m.count('x', 2);
  m.gauge('users', () => 7);
  m.open.http = 3;
  const s = m.snapshot();
  assert.equal(s.counters.x, 3);
  assert.equal(s.gauges.users, 7);
  assert.equal(s.connections.http, 3);
  assert.ok(s.eventLoop.utilization >= 0 && s.eventLoop.utilization <= 1);
  assert.ok(s.uptimeSeconds >= 0);
  m.close();
});

test('event-loop figures describe the last full window, the same for every reader', async () => {
  const m = new Metrics();
  await sleep(100);
  const spinUntil = Date.now() + 300;
  while (Date.now() < spinUntil) {
    // Keep the loop busy for a known share of the first window.
  }
  await sleep(LOOP_WINDOW_MS);
  const first = m.snapshot();
  const second = m.snapshot();
  assert.deepEqual(second.eventLoop, first.eventLoop, 'reading does not reset the window');
  assert.ok(first.eventLoop.utilization > 0.1, `busy share seen: ${first.eventLoop.utilization}`);
  assert.ok(first.eventLoop.lagMs.max >= 100, `the 300 ms block shows as lag: ${first.eventLoop.lagMs.max}`);
  await sleep(LOOP_WINDOW_MS + 100);
  // An idle window: lag near zero, not the histogram's 10 ms sampling period.
  const idle = m.snapshot().eventLoop;
  assert.ok(idle.lagMs.p50 < 8, `idle lag p50: ${idle.lagMs.p50} ms`);
  m.close();
});

test('listener caps open connections and counts them', async () => {
  const metrics = new Metrics();
  const lines: string[] = [];
  const refusedSockets: net.Socket[] = [];
  const listener = await listen({
    name: 'demo',
    endpoint: { host: '127.0.0.1', port: 0 },
    maxConnections: 1,
    metrics,
    log: (l) => lines.push(l),
    onConnection: () => {},
    onRefuse: (s) => {
      refusedSockets.push(s);
      s.end('busy');
    },
  });
  assert.deepEqual(lines, [`muxd demo listening on 127.0.0.1:${listener.port}`]);
  const a = net.connect(listener.port, '127.0.0.1');
  await new Promise((r) => a.once('connect', r));
  await waitFor(() => metrics.open.demo === 1, { what: 'the first connection accepted' });
  const b = net.connect(listener.port, '127.0.0.1');
  const got = await new Promise<string>((resolve) => {
    let s = '';
    b.on('data', (c: Buffer) => (s += c.toString()));
    b.on('close', () => resolve(s));
  });
  assert.equal(got, 'busy');
  assert.equal(metrics.refused.demo, 1);
  assert.equal(metrics.accepted.demo, 1);
  a.destroy();
  await waitFor(() => metrics.open.demo === 0, { what: 'the listener to see the connection close' });
  await listener.close();
  metrics.close();
});

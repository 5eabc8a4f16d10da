// The respawn policy as a table: each case is a sequence of starts and deaths at given times and
// the verdicts expected for the deaths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RestartPolicy, type DeathVerdict } from '../../src/cluster/policy.js';

type Step = { start: number; slot?: number } | { die: number; slot?: number; expect: DeathVerdict };

const S = 1000;
const cases: { name: string; steps: Step[] }[] = [
  {
    name: 'backoff doubles from 1 s',
    steps: [
      { start: 0 },
      { die: 1 * S, expect: { action: 'respawn', delayMs: 1000 } },
      { start: 2 * S },
      { die: 3 * S, expect: { action: 'respawn', delayMs: 2000 } },
      { start: 5 * S },
      { die: 6 * S, expect: { action: 'respawn', delayMs: 4000 } },
    ],
  },
  {
    name: 'backoff is capped at 30 s (deaths spread out so no crash loop)',
    steps: [
      { start: 0 },
      { die: 20 * S, expect: { action: 'respawn', delayMs: 1000 } },
      { start: 21 * S },
      { die: 40 * S, expect: { action: 'respawn', delayMs: 2000 } },
      { start: 42 * S },
      { die: 50 * S, expect: { action: 'respawn', delayMs: 4000 } },
      { start: 54 * S },
      { die: 70 * S, expect: { action: 'respawn', delayMs: 8000 } },
      { start: 78 * S },
      { die: 90 * S, expect: { action: 'respawn', delayMs: 16000 } },
      { start: 106 * S },
      { die: 110 * S, expect: { action: 'respawn', delayMs: 30000 } },
      { start: 140 * S },
      { die: 150 * S, expect: { action: 'respawn', delayMs: 30000 } },
    ],
  },
  {
    name: '60 s of health resets the backoff',
    steps: [
      { start: 0 },
      { die: 1 * S, expect: { action: 'respawn', delayMs: 1000 } },
      { start: 2 * S },
      { die: 3 * S, expect: { action: 'respawn', delayMs: 2000 } },
      { start: 5 * S },
      { die: 65 * S, expect: { action: 'respawn', delayMs: 1000 } },
    ],
  },
  {
    name: 'each slot has its own backoff',
    steps: [
      { start: 0, slot: 1 },
      { start: 0, slot: 2 },
      { die: 1 * S, slot: 1, expect: { action: 'respawn', delayMs: 1000 } },
      { die: 1 * S, slot: 2, expect: { action: 'respawn', delayMs: 1000 } },
      { start: 2 * S, slot: 1 },
      { die: 3 * S, slot: 1, expect: { action: 'respawn', delayMs: 2000 } },
    ],
  },
  {
    name: 'five deaths in 60 s are tolerated, the sixth is a crash loop',
    steps: [
      { start: 0, slot: 1 },
      { start: 0, slot: 2 },
      { die: 1 * S, slot: 1, expect: { action: 'respawn', delayMs: 1000 } },
      { die: 1 * S, slot: 2, expect: { action: 'respawn', delayMs: 1000 } },
      { die: 3 * S, slot: 1, expect: { action: 'respawn', delayMs: 2000 } },
      { die: 3 * S, slot: 2, expect: { action: 'respawn', delayMs: 2000 } },
      { die: 7 * S, slot: 1, expect: { action: 'respawn', delayMs: 4000 } },
      { die: 7 * S, slot: 2, expect: { action: 'crash-loop', deaths: 6 } },
    ],
  },
  {
    name: 'deaths older than the window no longer count',
    steps: [
      { start: 0 },
      { die: 1 * S, expect: { action: 'respawn', delayMs: 1000 } },
      { die: 2 * S, expect: { action: 'respawn', delayMs: 2000 } },
      { die: 3 * S, expect: { action: 'respawn', delayMs: 4000 } },
      { die: 4 * S, expect: { action: 'respawn', delayMs: 8000 } },
      { die: 5 * S, expect: { action: 'respawn', delayMs: 16000 } },
      // 61 s: the death at 1 s has left the window, so this is the fifth, not the sixth.
      { die: 61 * S, expect: { action: 'respawn', delayMs: 1000 } },
    ],
  },
];

for (const c of cases) {
  test(`restart policy: ${c.name}`, () => {
    const policy = new RestartPolicy();
    for (const step of c.steps) {
      if ('start' in step) policy.started(step.slot ?? 1, step.start);
      else assert.deepEqual(policy.died(step.slot ?? 1, step.die), step.expect, `death at ${step.die} ms`);
    }
  });
}

test('restarts are counted per slot', () => {
  const policy = new RestartPolicy();
  policy.started(1, 0);
  policy.started(2, 0);
  policy.died(1, 10);
  policy.started(1, 1100);
  policy.died(1, 1200);
  assert.equal(policy.restarts(1), 2);
  assert.equal(policy.restarts(2), 0);
  assert.equal(policy.recentDeaths(1200), 2);
  assert.equal(policy.recentDeaths(70_000), 0);
});

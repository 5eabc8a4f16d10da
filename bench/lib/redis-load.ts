// redis-benchmark as the generator for redis-server: PING (payload 0) or ECHO of the payload,
// pinned to the generator core, bounded in time. Its C client is cheaper than our Node one, so
// muxd/redis ratios lean in redis's favour when the generator is the bottleneck.
import { spawnPinned, stopChild } from './proc.js';
import { LoadMeter, type LoadSample } from './sample.js';

const lastRate = new Map<string, number>();

export interface RedisLoadResult extends LoadSample {
  opsPerSecond: number;
  p50Micros: number;
  p99Micros: number;
}

/** Parses `redis-benchmark -q --csv` (7.x: header line, then one quoted row per test); exported for tests. */
export function parseRedisCsv(stdout: string): { opsPerSecond: number; p50Micros: number; p99Micros: number } | null {
  const lines = stdout.trim().split('\n').map((l) => l.split('","').map((c) => c.replace(/^"|"$/g, '')));
  const header = lines.find((l) => l[0] === 'test');
  const row = lines.find((l) => l[0] !== 'test' && l.length >= 2);
  if (!row) return null;
  const col = (name: string, fallback: number): number => {
    const i = header ? header.indexOf(name) : fallback;
    return i >= 0 && row[i] !== undefined ? Number(row[i]) : NaN;
  };
  return { opsPerSecond: col('rps', 1), p50Micros: col('p50_latency_ms', 4) * 1000, p99Micros: col('p99_latency_ms', 6) * 1000 };
}

export async function runRedisBenchmark(
  o: { port: number; connections: number; depth: number; payload: number; durationSeconds: number },
  core: number,
  serverPid: number,
): Promise<RedisLoadResult> {
  // redis-benchmark counts requests, not seconds: aim for the duration at the rate this load
  // reached last time (a typical rate the first time).
  const key = `${o.connections}/${o.depth}/${o.payload}`;
  const rate = lastRate.get(key) ?? (o.depth > 1 ? 1_000_000 : 120_000);
  const requests = Math.max(10_000, Math.round(o.durationSeconds * rate));
  const args = ['-h', '127.0.0.1', '-p', String(o.port), '-c', String(o.connections), '-P', String(o.depth), '-n', String(requests), '-q', '--csv'];
  if (o.payload === 0) args.push('-t', 'ping_mbulk');
  else args.push('ECHO', 'e'.repeat(o.payload));
  const meter = new LoadMeter(serverPid);
  const gen = spawnPinned('redis-benchmark', args, { core, keepAllStdout: true });
  meter.addGenerator(gen.pid);
  const killer = setTimeout(() => void stopChild(gen), (o.durationSeconds * 4 + 10) * 1000);
  await gen.exited;
  clearTimeout(killer);
  const sample = meter.stop();
  const parsed = parseRedisCsv(gen.stdout());
  if (parsed === null) throw new Error(`could not parse redis-benchmark output: ${gen.stdout().slice(0, 300)} ${gen.stderr().slice(0, 300)}`);
  if (parsed.opsPerSecond > 0) lastRate.set(key, parsed.opsPerSecond);
  return { ...sample, ...parsed };
}

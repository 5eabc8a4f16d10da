// HTTP load generators run as child processes pinned to the generator core: autocannon (always
// there, a devDependency) and wrk (when installed). Both report the same shape.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawnPinned, stopChild } from './proc.js';
import { LoadMeter, type LoadSample } from './sample.js';

export type HttpTool = 'autocannon' | 'wrk';

export interface HttpLoad {
  url: string;
  connections: number;
  /** Requests in flight per connection (1 = plain keep-alive). */
  pipelining: number;
  durationSeconds: number;
  headers?: Record<string, string>;
}

export interface HttpLoadResult extends LoadSample {
  tool: HttpTool;
  requestsPerSecond: number;
  bytesPerSecond: number;
  p50Micros: number;
  p99Micros: number;
  /** Socket errors + timeouts + responses that were not 2xx/3xx: a non-zero count flags the cell. */
  errors: number;
}

export interface HttpLoadOptions {
  tool: HttpTool;
  /** A core, or a CPU list for taskset -c ("0-1"). */
  core: number | string;
  serverPid: number;
  tmpDir: string;
}

export async function runHttpLoad(load: HttpLoad, opts: HttpLoadOptions): Promise<HttpLoadResult> {
  return opts.tool === 'wrk' ? runWrk(load, opts) : runAutocannon(load, opts);
}

async function runAutocannon(load: HttpLoad, opts: HttpLoadOptions): Promise<HttpLoadResult> {
  const bin = path.resolve('node_modules/autocannon/autocannon.js');
  const args = [bin, '--json', '-c', String(load.connections), '-p', String(load.pipelining), '-d', String(load.durationSeconds), '--timeout', '10'];
  for (const [k, v] of Object.entries(load.headers ?? {})) args.push('-H', `${k}: ${v}`);
  args.push(load.url);
  const meter = new LoadMeter(opts.serverPid);
  const gen = spawnPinned(process.execPath, args, { core: opts.core, keepAllStdout: true });
  meter.addGenerator(gen.pid);
  const killer = setTimeout(() => void stopChild(gen), (load.durationSeconds + 30) * 1000);
  await gen.exited;
  clearTimeout(killer);
  const sample = meter.stop();
  const json = parseAutocannonJson(gen.stdout());
  if (json === null) throw new Error(`autocannon printed no JSON: ${gen.stderr().slice(0, 500)}`);
  return { tool: 'autocannon', ...sample, ...json };
}

interface AutocannonJson {
  requests: { average: number };
  throughput: { average: number };
  latency: { p50: number; p99: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  '3xx'?: number;
}

/** The result numbers from autocannon --json (latencies there are in ms); exported for tests. */
export function parseAutocannonJson(stdout: string): Omit<HttpLoadResult, 'tool' | keyof LoadSample> | null {
  const start = stdout.indexOf('{');
  if (start < 0) return null;
  let j: AutocannonJson;
  try {
    j = JSON.parse(stdout.slice(start)) as AutocannonJson;
  } catch {
    return null;
  }
  // autocannon counts 304 as non2xx; a revalidation load expects exactly those.
  const bad = j.non2xx - (j['3xx'] ?? 0);
  return {
    requestsPerSecond: j.requests.average,
    bytesPerSecond: j.throughput.average,
    p50Micros: j.latency.p50 * 1000,
    p99Micros: j.latency.p99 * 1000,
    errors: j.errors + j.timeouts + Math.max(0, bad),
  };
}

/** wrk pipelines through a Lua script: `request` returns ten requests glued together. */
function pipelineScript(depth: number): string {
  return [
    '-- written by bench/http.ts: every write carries `depth` pipelined GETs',
    'local depth = ' + String(depth),
    'init = function(args)',
    '  local parts = {}',
    '  for i = 1, depth do parts[i] = wrk.format(nil) end',
    '  batch = table.concat(parts)',
    'end',
    'request = function() return batch end',
    '',
  ].join('\n');
}

async function runWrk(load: HttpLoad, opts: HttpLoadOptions): Promise<HttpLoadResult> {
  const args = ['-t1', `-c${load.connections}`, `-d${load.durationSeconds}s`, '--timeout', '10s', '--latency'];
  for (const [k, v] of Object.entries(load.headers ?? {})) args.push('-H', `${k}: ${v}`);
  if (load.pipelining > 1) {
    const script = path.join(opts.tmpDir, `pipeline-${load.pipelining}.lua`);
    writeFileSync(script, pipelineScript(load.pipelining));
    args.push('-s', script);
  }
  args.push(load.url);
  const meter = new LoadMeter(opts.serverPid);
  const gen = spawnPinned('wrk', args, { core: opts.core, keepAllStdout: true });
  meter.addGenerator(gen.pid);
  const killer = setTimeout(() => void stopChild(gen), (load.durationSeconds + 30) * 1000);
  await gen.exited;
  clearTimeout(killer);
  const sample = meter.stop();
  const parsed = parseWrkOutput(gen.stdout());
  if (parsed === null) throw new Error(`could not parse wrk output: ${gen.stdout().slice(0, 500)} ${gen.stderr().slice(0, 300)}`);
  return { tool: 'wrk', ...sample, ...parsed };
}

const TIME_UNIT_MICROS: Record<string, number> = { us: 1, ms: 1000, s: 1_000_000, m: 60_000_000 };
const SIZE_UNIT_BYTES: Record<string, number> = { B: 1, KB: 1024, MB: 1 << 20, GB: 1 << 30, TB: 2 ** 40 };

/** Requests/sec, Transfer/sec, the 50% and 99% lines of --latency, and error counts; exported for tests. */
export function parseWrkOutput(stdout: string): Omit<HttpLoadResult, 'tool' | keyof LoadSample> | null {
  const rps = /Requests\/sec:\s*([\d.]+)/.exec(stdout);
  const transfer = /Transfer\/sec:\s*([\d.]+)([KMGT]?B)/.exec(stdout);
  const p50 = /^\s*50%\s+([\d.]+)(us|ms|s|m)\b/m.exec(stdout);
  const p99 = /^\s*99%\s+([\d.]+)(us|ms|s|m)\b/m.exec(stdout);
  if (!rps || !transfer) return null;
  let errors = 0;
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  if (sock) errors += Number(sock[1]) + Number(sock[2]) + Number(sock[3]) + Number(sock[4]);
  const non = /Non-2xx or 3xx responses: (\d+)/.exec(stdout);
  if (non) errors += Number(non[1]);
  return {
    requestsPerSecond: Number(rps[1]),
    bytesPerSecond: Number(transfer[1]) * SIZE_UNIT_BYTES[transfer[2]!]!,
    p50Micros: p50 ? Number(p50[1]) * TIME_UNIT_MICROS[p50[2]!]! : NaN,
    p99Micros: p99 ? Number(p99[1]) * TIME_UNIT_MICROS[p99[2]!]! : NaN,
    errors,
  };
}

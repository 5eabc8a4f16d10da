// Child processes for benchmarks: pinned to a core with taskset, started one at a time, stopped
// by pid. Nothing here installs anything: a missing tool is reported and skipped.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

let tasksetChecked: boolean | null = null;

/** True when `name` resolves on PATH (wrk, nginx, redis-server, redis-benchmark, taskset). */
export function hasTool(name: string): boolean {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
  return r.status === 0;
}

function canPin(): boolean {
  if (tasksetChecked === null) {
    tasksetChecked = hasTool('taskset');
    if (!tasksetChecked) process.stderr.write('bench: taskset not found; processes run unpinned (numbers are noisier)\n');
  }
  return tasksetChecked;
}

export interface PinnedChild {
  child: ChildProcess;
  pid: number;
  /** stdout so far (kept small: only the first 64 KiB). */
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
}

export interface SpawnPinnedOptions {
  /** A core, or a CPU list for taskset -c ("0-1"). */
  core: number | string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Keep all of stdout (for JSON results); default keeps the first 64 KiB. */
  keepAllStdout?: boolean;
}

const KEEP_BYTES = 64 * 1024;

/** Spawns `command args` under `taskset -c core`; taskset execs, so the pid is the command's own. */
export function spawnPinned(command: string, args: readonly string[], opts: SpawnPinnedOptions): PinnedChild {
  const [file, argv] = canPin() ? ['taskset', ['-c', String(opts.core), command, ...args]] : [command, [...args]];
  const child = spawn(file, argv, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    if (opts.keepAllStdout === true || out.length < KEEP_BYTES) out += s;
  });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    if (err.length < KEEP_BYTES) err += s;
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (e) => {
      err += String(e);
      resolve(-1);
    });
    child.on('exit', (code) => resolve(code));
  });
  if (child.pid === undefined) throw new Error(`bench: could not spawn ${command}`);
  return { child, pid: child.pid, stdout: () => out, stderr: () => err, exited };
}

/** Waits until the child's stdout contains a line matching `pattern`; returns the match. */
export function waitForLine(pc: PinnedChild, pattern: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let done = false;
    const check = (): void => {
      if (done) return;
      const m = pc.stdout().match(pattern);
      if (m) finish(null, m);
    };
    const finish = (e: Error | null, m?: RegExpMatchArray): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      pc.child.stdout!.off('data', onData);
      if (e) reject(e);
      else resolve(m!);
    };
    const onData = (): void => {
      setImmediate(check);
    };
    const timer = setTimeout(() => finish(new Error(`timed out waiting for ${pattern} (stderr: ${pc.stderr().slice(0, 500)})`)), timeoutMs);
    pc.child.stdout!.on('data', onData);
    void pc.exited.then((code) => finish(new Error(`exited with ${code} before printing ${pattern}: ${pc.stderr().slice(0, 800)}`)));
    check();
  });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopChild(pc: PinnedChild, graceMs = 3000): Promise<void> {
  if (pc.child.exitCode !== null || pc.child.signalCode !== null) return;
  pc.child.kill('SIGTERM');
  const timer = setTimeout(() => pc.child.kill('SIGKILL'), graceMs);
  await pc.exited;
  clearTimeout(timer);
}

/** A port that was free a moment ago (for servers such as nginx that cannot print theirs). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Polls a TCP connect until it succeeds (servers that print no ready line). */
export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

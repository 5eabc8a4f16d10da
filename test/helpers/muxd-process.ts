// Starts the real `muxd serve` command as a child process, as a user would, and reads the
// ports it picked from its ready lines.
import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { within } from './wait.js';

/** The repository root (tests run from dist/test/...). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const MUXD_BIN = path.join(REPO_ROOT, 'dist/src/cli/main.js');

export interface MuxdProcess {
  proc: ChildProcess;
  httpPort: number;
  binaryPort: number;
  output: () => string;
  stop(): Promise<void>;
}

/**
 * With --binary-port 0, UDP takes the same number as the TCP port the kernel picked, and that
 * UDP port may belong to someone else (another test file running at the same time): muxd then
 * exits with this line before serving anything. Only that start is retried.
 */
const UDP_SAME_NUMBER_TAKEN = /^muxd serve: --udp-port 0: \S+ is already in use/m;

export async function startMuxd(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<MuxdProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(args, opts);
    } catch (err) {
      if (attempt >= 3 || !UDP_SAME_NUMBER_TAKEN.test((err as Error).message)) throw err;
    }
  }
}

function startOnce(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string }): Promise<MuxdProcess> {
  const proc = spawn(process.execPath, [MUXD_BIN, 'serve', '--http-port', '0', '--binary-port', '0', ...args], {
    cwd: opts.cwd ?? REPO_ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`muxd did not get ready:\n${out}`)), 15000);
    const check = (): void => {
      const http = /muxd http listening on http:\/\/[^\s]+:(\d+)/.exec(out);
      const binary = /muxd binary listening on [^\s]+:(\d+)/.exec(out);
      if (http && binary) {
        clearTimeout(timer);
        proc.stdout!.off('data', check);
        resolve({
          proc,
          httpPort: Number(http[1]),
          binaryPort: Number(binary[1]),
          output: () => out,
          stop: () =>
            new Promise<void>((done) => {
              // Already gone (exited, or killed by a signal: then exitCode stays null).
              if (proc.exitCode !== null || proc.signalCode !== null) return done();
              proc.once('exit', () => done());
              proc.kill('SIGTERM');
            }),
        });
      }
    };
    proc.stdout!.on('data', check);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`muxd exited with ${code}:\n${out}`));
    });
  });
}

/** process.env without the caller's MUXD_* settings, plus `extra`: only the flags under test apply. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MUXD_')) env[k] = v;
  return { ...env, ...extra };
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Leave out the caller's MUXD_* settings (cleanEnv). Default false: process.env as it is. */
  clean?: boolean;
}

/** A muxd command as a child process, its three streams piped. */
export function spawnMuxd(args: string[], opts: RunOptions = {}): ChildProcessWithoutNullStreams {
  const env = opts.clean === true ? cleanEnv(opts.env) : { ...process.env, ...opts.env };
  return spawn(process.execPath, [MUXD_BIN, ...args], { cwd: opts.cwd ?? REPO_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Runs a muxd command to completion; with timeoutMs, rejects if it has not ended by then. */
export function runMuxd(args: string[], opts: RunOptions & { input?: string; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const proc = spawnMuxd(args, opts);
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    proc.on('close', (code) => resolve({ code, stdout, stderr }));
    proc.stdin.end(opts.input ?? '');
  });
  return opts.timeoutMs === undefined ? done : within(done, opts.timeoutMs, `muxd ${args.join(' ')}`);
}

// A `muxd serve` for the soak: its own temp root and files dir, free loopback ports, an optional
// fd limit (ulimit -n in a bash wrapper that execs node, so the pid is the server's own), and
// readings from /proc: RSS, open fds, temp files. stop() always ends it by pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const MUXD_ENTRY = path.resolve('dist/src/cli/main.js');

export interface SoakServerOptions {
  /** Extra serve flags (printed with the results). */
  flags?: string[];
  /** ulimit -n for the server (undefined: inherit). */
  fdLimit?: number;
  /** Use this directory as --files-dir instead of one under the temp dir. */
  filesDir?: string;
  /** Pin the server (and its thread pool) to this core with taskset; null or absent: unpinned. */
  core?: number | null;
  /** Files to put in the site root: name -> content. */
  site?: Record<string, Buffer>;
  /** Adds the TLS listeners (--tls-cert/--tls-key, --https-port 0, --binary-tls-port 0). */
  tls?: { cert: string; key: string };
}

export interface SoakServer {
  pid: number;
  httpPort: number;
  binaryPort: number;
  /** With `tls`: the HTTPS port (else 0). */
  httpsPort: number;
  dir: string;
  root: string;
  filesDir: string;
  /** The command line, for the report. */
  command: string;
  alive(): boolean;
  stderr(): string;
  stop(): Promise<void>;
}

export async function startSoakServer(opts: SoakServerOptions = {}): Promise<SoakServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'muxd-soak-'));
  const root = path.join(dir, 'public');
  mkdirSync(root);
  for (const [name, content] of Object.entries(opts.site ?? {})) writeFileSync(path.join(root, name), content);
  const filesDir = opts.filesDir ?? path.join(dir, 'files');
  mkdirSync(filesDir, { recursive: true });
  const args = ['serve', '--root', root, '--files-dir', filesDir, '--host', '127.0.0.1', '--http-port', '0', '--binary-port', '0', '--udp-port', 'off', ...(opts.flags ?? [])];
  if (opts.tls) args.push('--tls-cert', opts.tls.cert, '--tls-key', opts.tls.key, '--https-port', '0', '--binary-tls-port', '0');
  const pin = opts.core === undefined || opts.core === null ? [] : ['taskset', '-c', String(opts.core)];
  const quoted = [...pin, process.execPath, MUXD_ENTRY, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const script = opts.fdLimit !== undefined ? `ulimit -n ${opts.fdLimit} && exec ${quoted}` : `exec ${quoted}`;
  const child: ChildProcess = spawn('bash', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    if (out.length < 65536) out += s;
  });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    if (err.length < 65536) err += s;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
    if (opts.filesDir === undefined) rmSync(dir, { recursive: true, force: true });
    else rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    const http = /muxd http listening on (?:http:\/\/)?127\.0\.0\.1:(\d+)/.exec(out);
    const bin = /muxd binary listening on (?:[a-z0-9]+:\/\/)?127\.0\.0\.1:(\d+)/.exec(out);
    const https = /muxd https listening on (?:https:\/\/)?127\.0\.0\.1:(\d+)/.exec(out);
    if (http && bin && (https || !opts.tls)) {
      return {
        pid: child.pid!,
        httpPort: Number(http[1]),
        binaryPort: Number(bin[1]),
        httpsPort: https ? Number(https[1]) : 0,
        dir,
        root,
        filesDir,
        command: `muxd serve ${(opts.flags ?? []).join(' ')}`.trim() + (opts.fdLimit !== undefined ? ` (ulimit -n ${opts.fdLimit})` : ''),
        alive: () => child.exitCode === null && child.signalCode === null,
        stderr: () => err,
        stop,
      };
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`muxd did not start: ${err.slice(0, 800) || out.slice(0, 800)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** VmRSS of a pid in bytes (0 if gone). */
export function rssOf(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Open fds of a pid (-1 if unreadable). */
export function fdsOf(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

/** Upload temp files (".upload-*") in a files dir. */
export function tempFilesIn(dir: string): number {
  try {
    return readdirSync(dir).filter((n) => n.startsWith('.upload-')).length;
  } catch {
    return -1;
  }
}

/** Samples a server every `everyMs`: peak RSS, peak fds, peak temp files. */
export class Sampler {
  peakRss = 0;
  peakFds = 0;
  peakTemp = 0;
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly server: SoakServer, everyMs = 250) {
    this.poll();
    this.timer = setInterval(() => this.poll(), everyMs);
    this.timer.unref();
  }
  poll(): void {
    this.peakRss = Math.max(this.peakRss, rssOf(this.server.pid));
    this.peakFds = Math.max(this.peakFds, fdsOf(this.server.pid));
    this.peakTemp = Math.max(this.peakTemp, tempFilesIn(this.server.filesDir));
  }
  stop(): void {
    this.poll();
    clearInterval(this.timer);
  }
}

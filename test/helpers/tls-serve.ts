// A real `muxd serve` with TLS on any free ports (every listener's port read from its ready
// line), and the small TLS clients the TLS tests share: a GET that reports the certificate it was
// served, and a raw connection.
import { spawn, type ChildProcess } from 'node:child_process';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import type { ServerCert } from './certs.js';
import { MUXD_BIN, REPO_ROOT } from './muxd-process.js';
import { waitFor } from './wait.js';

export interface TlsPorts {
  http: number;
  https: number;
  binary: number;
  binaryTls: number;
}

export interface TlsProc {
  proc: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  ports: TlsPorts;
  /** SIGTERM (unless gone already); resolves with the exit code. */
  stop(): Promise<number | null>;
}

export function spawnServe(args: string[], filesDir: string): { proc: ChildProcess; output(): string; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, [MUXD_BIN, 'serve', '--root', path.join(REPO_ROOT, 'public'), '--files-dir', filesDir, '--udp-port', 'off', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  return { proc, output: () => out, exited };
}

const PORT_ARGS = ['--http-port', '0', '--binary-port', '0', '--https-port', '0', '--binary-tls-port', '0'];
const READY: Record<keyof TlsPorts, RegExp> = {
  http: /^muxd http listening on http:\/\/127\.0\.0\.1:(\d+)$/m,
  https: /^muxd https listening on https:\/\/127\.0\.0\.1:(\d+)$/m,
  binary: /^muxd binary listening on 127\.0\.0\.1:(\d+)$/m,
  binaryTls: /^muxd binary-tls listening on 127\.0\.0\.1:(\d+)$/m,
};

/** Starts muxd with --tls-cert/--tls-key (later args win) and waits for the ready lines asked for. */
export async function startTlsServe(args: string[], cert: Pick<ServerCert, 'certFile' | 'keyFile'>, filesDir: string, expect: (keyof TlsPorts)[] = ['http', 'https', 'binary', 'binaryTls']): Promise<TlsProc> {
  const p = spawnServe([...PORT_ARGS, '--tls-cert', cert.certFile, '--tls-key', cert.keyFile, ...args], filesDir);
  const ports = await waitFor(
    () => {
      if (p.proc.exitCode !== null) throw new Error(`muxd exited:\n${p.output()}`);
      const found: TlsPorts = { http: 0, https: 0, binary: 0, binaryTls: 0 };
      for (const k of expect) {
        const m = READY[k].exec(p.output());
        if (m === null) return undefined;
        found[k] = Number(m[1]);
      }
      return found;
    },
    { what: 'the ready lines', timeoutMs: 20_000, detail: () => p.output() },
  );
  return {
    ...p,
    ports,
    stop: async () => {
      if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGTERM');
      return p.exited;
    },
  };
}

/** A raw TLS connection to 127.0.0.1 as "localhost", trusting `ca`; resolves once secure. */
export function tlsConnect(port: number, ca: Buffer, opts: tls.ConnectionOptions = {}): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca, ...opts }, () => resolve(s));
    s.once('error', reject);
  });
}

export interface HttpsAnswer {
  status: number;
  headers: Record<string, unknown>;
  body: string;
  /** Serial number of the certificate served. */
  serial: string;
  /** The TLS session was resumed (a ticket). */
  reused: boolean;
  /** The session to resume with next time (from this connection's ticket). */
  session: Buffer | undefined;
}

/** GET over a fresh HTTPS connection (optionally resuming `session`). */
export function httpsGet(port: number, p: string, ca: Buffer, opts: { headers?: Record<string, string>; session?: Buffer } = {}): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    let session: Buffer | undefined;
    const req = https.get({ host: '127.0.0.1', port, path: p, servername: 'localhost', ca, agent: false, headers: opts.headers, session: opts.session } as https.RequestOptions, (res) => {
      const sock = res.socket as tls.TLSSocket;
      const serial = sock.getPeerCertificate().serialNumber;
      const reused = sock.isSessionReused();
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        // A TLS 1.3 ticket may arrive after the answer: the connection's close comes after it.
        const done = (): void => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, serial, reused, session });
        if (sock.destroyed) done();
        else sock.once('close', done);
      });
    });
    // A TLS 1.3 ticket comes after the handshake, possibly before the answer: listen from the start.
    req.on('socket', (sock) => sock.on('session', (s: Buffer) => (session = s)));
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('no answer in 10 s')));
  });
}

/**
 * GET over HTTPS that calls `onFirstBytes` once the answer has started (e.g. SIGTERM the server),
 * then reads slowly for a moment; resolves with the status and how many body bytes arrived.
 */
export function httpsDownload(port: number, p: string, ca: Buffer, onFirstBytes: () => void): Promise<{ status: number; length: number }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: p, servername: 'localhost', ca, agent: false }, (res) => {
      let length = 0;
      let first = true;
      res.on('data', (c: Buffer) => {
        length += c.length;
        if (first) {
          first = false;
          onFirstBytes();
          res.pause();
          setTimeout(() => res.resume(), 300);
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, length }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

export interface RequestLoop {
  /** Requests answered 200 so far. */
  readonly ok: number;
  /** Every other outcome: "status N" or the error's message. */
  readonly failures: string[];
  /** Serial numbers of the certificates served. */
  readonly serials: Set<string>;
  /** Lets the request in flight finish, then stops. */
  stop(): Promise<void>;
}

/** GET `p` over fresh HTTPS connections, one after another, until stop(): a reload under load. */
export function httpsLoop(port: number, p: string, ca: Buffer): RequestLoop {
  let stopped = false;
  const state = { ok: 0, failures: [] as string[], serials: new Set<string>() };
  const running = (async () => {
    while (!stopped) {
      try {
        const r = await httpsGet(port, p, ca);
        if (r.status === 200) state.ok++;
        else state.failures.push(`status ${r.status}`);
        state.serials.add(r.serial);
      } catch (err) {
        state.failures.push((err as Error).message);
      }
    }
  })();
  return {
    get ok() {
      return state.ok;
    },
    failures: state.failures,
    serials: state.serials,
    stop: () => {
      stopped = true;
      return running;
    },
  };
}

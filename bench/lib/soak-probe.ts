// The soak's normal client in a process of its own. Inside the attacker's process its timings
// would include the attacker's own event-loop stalls (opening 10,000 sockets, a thousand data
// handlers), which say nothing about the server. It also asks the server for STATS every
// 500 ms over one kept connection and reports the worst event-loop lag the server saw.
//
// Run as a child: node dist/bench/lib/soak-probe.js HTTP_PORT BINARY_PORT PATH [HTTPS_PORT] (with
// an IPC channel); it answers a 'stop' message with its result and exits. With HTTPS_PORT every
// request is an HTTPS GET over a fresh TLS connection (the TLS rows) instead of HTTP and MX/1.
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { FrameScanner, encodeFrame } from './mx.js';
import { Probe, type ProbeResult } from './soak-client.js';

const STATS = 0x02;
const STATS_OK = 0x82;

export interface RemoteProbeResult extends ProbeResult {
  /** Worst one-second window of the server's event-loop lag (ms), from STATS: p99 and max. */
  serverLagP99: number;
  serverLagMax: number;
}

interface WireResult {
  result: Omit<RemoteProbeResult, 'errorKinds'> & { errorKinds: [string, number][] };
}

/** Polls STATS over one connection; keeps the worst window's lag. */
class LagWatch {
  p99 = 0;
  max = 0;
  private readonly sock: Socket;
  private readonly timer: NodeJS.Timeout;

  constructor(port: number) {
    this.sock = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.1' });
    this.sock.on('error', () => undefined);
    const scanner = new FrameScanner({
      frame: (type, _id, _len, payload) => {
        if (type !== STATS_OK || payload === null) return;
        try {
          const lag = (JSON.parse(payload.toString('utf8')) as { eventLoop?: { lagMs?: { p99?: number; max?: number } } }).eventLoop?.lagMs;
          this.p99 = Math.max(this.p99, lag?.p99 ?? 0);
          this.max = Math.max(this.max, lag?.max ?? 0);
        } catch {
          // a torn or odd reply is not the probe's business
        }
      },
    });
    this.sock.on('data', (c: Buffer) => scanner.push(c));
    let id = 0;
    this.timer = setInterval(() => {
      if (this.sock.writable) this.sock.write(encodeFrame(STATS, ++id));
    }, 500);
  }

  stop(): void {
    clearInterval(this.timer);
    this.sock.destroy();
  }
}

/** The parent's handle on a probe child. */
export interface RemoteProbe {
  stop(): Promise<RemoteProbeResult>;
}

/** Starts the probe in its own node process, pinned to `core` when taskset is there. */
export async function startRemoteProbe(httpPort: number, binaryPort: number, path: string, core: number | null, httpsPort?: number): Promise<RemoteProbe> {
  const script = fileURLToPath(import.meta.url);
  const node = [process.execPath, script, String(httpPort), String(binaryPort), path, ...(httpsPort !== undefined ? [String(httpsPort)] : [])];
  const [file, argv] = core === null ? [node[0]!, node.slice(1)] : ['taskset', ['-c', String(core), ...node]];
  const child: ChildProcess = spawn(file, argv, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`soak probe exited (${String(code)}) before it started`)));
  });
  return {
    stop: () =>
      new Promise((resolve, reject) => {
        child.once('message', (m) => {
          const r = (m as WireResult).result;
          resolve({ ...r, errorKinds: new Map(r.errorKinds) });
        });
        child.once('exit', (code) => reject(new Error(`soak probe exited (${String(code)}) without a result`)));
        child.send('stop');
      }),
  };
}

// --- the child ------------------------------------------------------------------------------

if (process.argv[1] === fileURLToPath(import.meta.url) && process.send !== undefined) {
  const [httpPort, binaryPort] = [Number(process.argv[2]), Number(process.argv[3])];
  const httpsPort = process.argv[5] !== undefined ? Number(process.argv[5]) : undefined;
  const probe = new Probe(httpPort, binaryPort, process.argv[4] ?? '/', 20, { localAddress: '127.0.0.1' }, httpsPort);
  const lag = new LagWatch(binaryPort);
  process.on('message', (m) => {
    if (m !== 'stop') return;
    lag.stop();
    void probe.stop().then((r) => {
      const wire: WireResult = { result: { ...r, errorKinds: [...r.errorKinds], serverLagP99: lag.p99, serverLagMax: lag.max } };
      process.send!(wire, () => process.exit(0));
    });
  });
  // The soak died or stopped without asking: go too.
  process.on('disconnect', () => process.exit(0));
  process.send('ready');
}

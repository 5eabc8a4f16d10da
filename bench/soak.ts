// `npm run soak`: reproduces each attack of issue 8 against a real `muxd serve` on loopback and
// prints one table row per attack: what a normal client on 127.0.0.1 saw (p99 latency, errors),
// the server's RSS and open fds (from /proc), and a verdict against the issue's targets:
//   normal clients p99 < 50 ms and no errors; 1,000 slow readers cost <= 100 MB over idle and
//   come back within 30 MB; zero torn reads; no temp file outlives its transfer by more than
//   the transfer timeout; a full disk answers ERROR 26, leaves no temp file, keeps serving.
// The server runs on core 0; this script (the attacker) on core 1, and the normal client in a
// process of its own on core 1 too, so its timings are the server's and not the attacker's
// event loop. The table also shows the server's own event-loop lag (from STATS, worst window).
// A script, never a timed test. Every attack has a deadline; the server is always stopped by
// pid and its temp dirs removed, whatever happens.
//
// Issue 16 adds two TLS rows: a handshake flood with 5,000 connections that never send a
// ClientHello while the normal client asks over HTTPS, and the slow readers over TLS.
//
//   node dist/bench/soak.js [--quick] [--markdown] [--only fd|silent|slow|race|disk|tls|tls-slow] [--silent-rate N|max]
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { makeBenchCert, type BenchCert } from './lib/certs.js';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { FrameScanner, MX, encodeFrame, writeU64 } from './lib/mx.js';
import { hasTool } from './lib/proc.js';
import { headerLines, renderTable } from './lib/report.js';
import { httpGet, mxPing, openMany, openPaced, parseHead, type ProbeResult } from './lib/soak-client.js';
import { startRemoteProbe, type RemoteProbeResult } from './lib/soak-probe.js';
import { Sampler, fdsOf, rssOf, startSoakServer, tempFilesIn, type SoakServer } from './lib/soak-server.js';

const args = process.argv.slice(2);
const USAGE = `Usage: node dist/bench/soak.js [--quick] [--markdown] [--only fd|silent|slow|race|disk|tls|tls-slow] [--silent-rate N|max]
Runs issue 8's attacks against a real muxd serve on loopback (about 5 minutes; --quick uses
smaller counts) and prints one row per attack: the normal client's p99 and errors, the server's
loop lag, RSS and open fds, and a verdict. --only runs one attack; --silent-rate sets how many
silent connections open per second (default 1000); --markdown prints the table as Markdown.
The full-disk attack needs root (it mounts a tmpfs) and is skipped otherwise. The TLS rows
(tls: handshake flood + 5,000 connections with no ClientHello, the client asking over HTTPS;
tls-slow: the slow readers over TLS) serve a certificate openssl makes in .bench-out/tls/.
`;
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const QUICK = args.includes('--quick');
const MARKDOWN = args.includes('--markdown');
const ONLY = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
// Silent connections per second from the attacker. The issue's attack holds the cap with 333/s;
// "max" opens them as fast as this script can, which measures accept capacity instead (see README).
const SILENT_RATE_ARG = args.includes('--silent-rate') ? args[args.indexOf('--silent-rate') + 1] : '1000';
const SILENT_RATE = SILENT_RATE_ARG === 'max' ? Infinity : Number(SILENT_RATE_ARG);
if (!(SILENT_RATE > 0)) {
  process.stderr.write('soak: --silent-rate takes connections per second (> 0) or max\n');
  process.exit(2);
}
const ATTACKS = ['fd', 'silent', 'slow', 'race', 'disk', 'tls', 'tls-slow'] as const;
type AttackName = (typeof ATTACKS)[number];
if (ONLY !== undefined && !(ATTACKS as readonly string[]).includes(ONLY)) {
  process.stderr.write(`soak: --only takes one of ${ATTACKS.join(', ')}\n`);
  process.exit(2);
}

// --- the soak's own fd limit: 10,000 sockets need more than the usual 1024 --------------------

const NEED_FDS = 12_000;
function softFdLimit(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'latin1'));
    return m === null ? 1024 : m[1] === 'unlimited' ? Infinity : Number(m[1]);
  } catch {
    return 1024;
  }
}
// --- cores: the server on one, this script (the attacker) and the probe on the other ------------

const PIN = cpus().length >= 2 && hasTool('taskset');
const SERVER_CORE = PIN ? 0 : null;
const CLIENT_CORE = PIN ? 1 : null;

// --- results ----------------------------------------------------------------------------------

interface Row {
  attack: string;
  flags: string;
  client: (ProbeResult & Partial<RemoteProbeResult>) | null;
  idleRss: number;
  peakRss: number;
  afterRss: number;
  fds: [number, number, number];
  /** Attack-specific facts (temp files, shed connections, torn answers...). */
  notes: string[];
  verdict: 'PASS' | 'FAIL' | 'SKIP';
  /** Why it failed (each target missed). */
  why: string[];
}

const MB = 1024 * 1024;
const mb = (b: number): string => (b > 0 ? (b / MB).toFixed(0) : '-');
const signedMb = (b: number): string => `${b < 0 ? '-' : '+'}${(Math.abs(b) / MB).toFixed(0)}`;
const P99_TARGET_MS = 50;

function clientVerdict(r: ProbeResult | null, why: string[], notes: string[]): void {
  if (r === null) return;
  const phases = (o: ProbeResult['slowest'][number]): string =>
    o.connectMs === undefined ? '' : ` [connected ${o.connectMs.toFixed(0)}, first byte ${o.firstByteMs === undefined ? '-' : o.firstByteMs.toFixed(0)}]`;
  const slow = r.slowest.map((o) => `${o.kind} ${o.ms.toFixed(0)} ms at +${o.at} s${phases(o)}${o.error !== undefined ? ` (${o.error})` : ''}`).join(', ');
  notes.push(`normal client: ${r.requests} answers, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms; slowest: ${slow}`);
  if (r.requests === 0) why.push('normal client got no answer at all');
  if (!(r.p99 < P99_TARGET_MS)) why.push(`normal client p99 ${r.p99.toFixed(1)} ms >= ${P99_TARGET_MS}`);
  if (r.errors > 0) why.push(`normal client errors ${r.errors} (${[...r.errorKinds].map(([k, n]) => `${k} x${n}`).join(', ')})`);
}

// --- cleanup that always runs -------------------------------------------------------------------

const servers = new Set<SoakServer>();
const sockets = new Set<Socket>();
const cleanups: (() => void)[] = [];

async function startServer(opts: Parameters<typeof startSoakServer>[0]): Promise<SoakServer> {
  const s = await startSoakServer({ ...opts, core: SERVER_CORE });
  servers.add(s);
  return s;
}

async function stopServer(s: SoakServer): Promise<void> {
  servers.delete(s);
  await s.stop();
}

function track(s: Socket): Socket {
  sockets.add(s);
  s.once('close', () => sockets.delete(s));
  return s;
}

function destroyAll(): void {
  for (const s of sockets) s.destroy();
  sockets.clear();
}

async function cleanupAll(): Promise<void> {
  destroyAll();
  await Promise.all([...servers].map((s) => stopServer(s)));
  for (const c of cleanups.splice(0)) c();
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => (t = setTimeout(() => reject(new Error(`${what}: harness deadline of ${ms / 1000} s passed`)), ms)))]).finally(() => clearTimeout(t));
}

// --- attack 1: fd exhaustion from one address ---------------------------------------------------

async function attackFd(): Promise<Row> {
  const conns = QUICK ? 80 : 120;
  const transferTimeoutS = 5;
  const fdLimit = 1024;
  const flags = ['--transfer-timeout', `${transferTimeoutS}s`];
  const server = await startServer({ flags, fdLimit, site: { 'small.txt': Buffer.from('hello\n') } });
  const row = emptyRow(`fd exhaustion: ${conns} MX/1 conns x 16 PUT, no DATA (127.0.0.2)`, `${server.command}`);
  try {
    await sleep(500);
    row.idleRss = rssOf(server.pid);
    const idleFds = fdsOf(server.pid);
    const sampler = new Sampler(server);
    const probe = await startRemoteProbe(server.httpPort, server.binaryPort, '/small.txt', CLIENT_CORE);
    const errorCodes = new Map<number, number>();
    let closedByServer = 0;
    const started = performance.now();
    const { sockets: attackers, failed } = await openMany(conns, 50, (i) => {
      const s = track(connect({ port: server.binaryPort, host: '127.0.0.1', localAddress: '127.0.0.2' }));
      const scanner = new FrameScanner({
        frame(type, _id, _len, payload) {
          if (type === MX.ERROR && payload !== null && payload.length >= 2) errorCodes.set(payload.readUInt16BE(0), (errorCodes.get(payload.readUInt16BE(0)) ?? 0) + 1);
        },
      });
      s.on('data', (c: Buffer) => {
        try {
          scanner.push(c);
        } catch {
          s.destroy();
        }
      });
      s.once('close', () => closedByServer++);
      s.once('connect', () => {
        const frames: Buffer[] = [];
        for (let k = 1; k <= 16; k++) frames.push(encodeFrame(MX.PUT, k, putPayload(1024 * 1024, randomBytes(32), `soak-${i}-${k}.bin`)));
        s.write(Buffer.concat(frames));
      });
      return s;
    });
    // Hold past the transfer timeout: every upload without DATA must be gone by then.
    const holdUntil = started + (transferTimeoutS + 3) * 1000;
    while (performance.now() < holdUntil) await sleep(100);
    const tempLeft = tempFilesIn(server.filesDir);
    const closedBeforeUs = closedByServer;
    row.client = await probe.stop();
    for (const s of attackers) s.destroy();
    await sleep(1500);
    sampler.stop();
    row.peakRss = sampler.peakRss;
    row.afterRss = rssOf(server.pid);
    row.fds = [idleFds, sampler.peakFds, fdsOf(server.pid)];
    row.notes.push(`temp files: peak ${sampler.peakTemp}, ${tempLeft} left ${transferTimeoutS + 3} s in (transfer timeout ${transferTimeoutS} s)`);
    row.notes.push(`attacker: ${attackers.length} connected, ${failed} refused, ${closedBeforeUs} closed by the server; ERROR frames ${fmtCodes(errorCodes)}`);
    clientVerdict(row.client, row.why, row.notes);
    if (tempLeft !== 0) row.why.push(`${tempLeft} temp files outlived the transfer timeout`);
    if (!server.alive()) row.why.push('server died');
  } finally {
    destroyAll();
    await stopServer(server);
  }
  return done(row);
}

function putPayload(size: number, sha: Buffer, name: string): Buffer {
  const n = Buffer.from(name, 'utf8');
  const out = Buffer.alloc(8 + 32 + n.length);
  writeU64(out, 0, size);
  sha.copy(out, 8);
  n.copy(out, 40);
  return out;
}

function fmtCodes(m: Map<number, number>): string {
  return m.size === 0 ? 'none' : [...m].map(([c, n]) => `${c} x${n}`).join(', ');
}

// --- attack 2: 10,000 silent connections from 127.0.0.2 ----------------------------------------

async function attackSilent(): Promise<Row> {
  const limit = softFdLimit();
  let total = QUICK ? 2000 : 10_000;
  const scaled = total > limit - 500;
  if (scaled) total = Math.max(0, limit - 500);
  const timeoutS = 3;
  const flags = ['--head-timeout', `${timeoutS}s`, '--binary-hello-timeout', `${timeoutS}s`];
  const server = await startServer({ flags, site: { 'small.txt': Buffer.from('hello\n') } });
  const rate = Number.isFinite(SILENT_RATE) ? `${SILENT_RATE}/s` : 'max rate';
  const row = emptyRow(`silent conns: ${total / 2} HTTP + ${total / 2} MX/1 at ${rate} (127.0.0.2)`, `${server.command} (--max-connections-per-ip default 1024)`);
  try {
    await sleep(500);
    row.idleRss = rssOf(server.pid);
    const idleFds = fdsOf(server.pid);
    const sampler = new Sampler(server);
    const probe = await startRemoteProbe(server.httpPort, server.binaryPort, '/small.txt', CLIENT_CORE);
    let closedByServer = 0;
    const t0 = performance.now();
    const { sockets: silent, failed } = await openPaced(total, SILENT_RATE, (i) => {
      const s = track(connect({ port: i % 2 === 0 ? server.httpPort : server.binaryPort, host: '127.0.0.1', localAddress: '127.0.0.2' }));
      s.on('data', () => undefined); // a 503 / ERROR 51 / 408 may come before the close
      s.once('close', () => closedByServer++);
      return s;
    });
    const openedIn = (performance.now() - t0) / 1000;
    // Hold past the head/hello timeout: every silent connection should be closed by then.
    const holdUntil = performance.now() + (timeoutS + 3) * 1000;
    while (performance.now() < holdUntil && closedByServer < silent.length) await sleep(100);
    const stillOpen = silent.length - closedByServer;
    row.client = await probe.stop();
    sampler.stop();
    destroyAll();
    // V8 gives the heap back once the loop has been idle a while: wait up to 60 s for RSS to
    // come within 30 MB of idle (the slow-reader target), and say how long it took.
    const back = await rssBackWithin(server.pid, row.idleRss + 30 * MB, 60_000);
    row.peakRss = sampler.peakRss;
    row.afterRss = back.rss;
    row.fds = [idleFds, sampler.peakFds, fdsOf(server.pid)];
    row.notes.push(back.ms === null ? 'RSS still over idle + 30 MB 60 s after the attackers left' : `RSS within 30 MB of idle ${(back.ms / 1000).toFixed(0)} s after the attackers left`);
    row.notes.push(`opened ${silent.length} (${failed} failed to connect within 5 s) in ${openedIn.toFixed(1)} s; ${stillOpen} still open ${timeoutS + 3} s after the last${scaled ? `; count cut to the fd limit ${limit}` : ''}`);
    clientVerdict(row.client, row.why, row.notes);
    if (stillOpen > 0) row.why.push(`${stillOpen} silent connections outlived the ${timeoutS} s head/hello timeout`);
    if (back.ms === null) row.why.push(`RSS ${mb(back.rss - row.idleRss)} MB over idle 60 s after the attackers left > 30`);
    if (!server.alive()) row.why.push('server died');
  } finally {
    destroyAll();
    await stopServer(server);
  }
  return done(row);
}

/** Polls RSS each second until it is at most `limit` bytes or `maxMs` passed. */
async function rssBackWithin(pid: number, limit: number, maxMs: number): Promise<{ rss: number; ms: number | null }> {
  const t0 = performance.now();
  for (;;) {
    await sleep(1000);
    const rss = rssOf(pid);
    const ms = performance.now() - t0;
    if (rss <= limit) return { rss, ms };
    if (ms >= maxMs) return { rss, ms: null };
  }
}

// --- attack 6 (issue 16): a TLS handshake flood and connections that never send a ClientHello --

async function attackTls(): Promise<Row> {
  const limit = softFdLimit();
  let silentCount = QUICK ? 1000 : 5000;
  const scaled = silentCount > limit - 1500;
  if (scaled) silentCount = Math.max(0, limit - 1500);
  const holdS = QUICK ? 5 : 15;
  const loops = 32;
  const timeoutS = 3;
  const flags = ['--head-timeout', `${timeoutS}s`, '--tls-handshake-timeout', `${timeoutS}s`];
  const server = await startServer({ flags, site: { 'small.txt': Buffer.from('hello\n') }, tls: soakCert() });
  let flooding = true;
  const row = emptyRow(`TLS: handshake flood (${loops} loops, 127.0.0.2) + ${silentCount} conns with no ClientHello (127.0.0.3), client over HTTPS`, server.command);
  try {
    await sleep(500);
    row.idleRss = rssOf(server.pid);
    const idleFds = fdsOf(server.pid);
    const sampler = new Sampler(server);
    const probe = await startRemoteProbe(server.httpPort, server.binaryPort, '/small.txt', CLIENT_CORE, server.httpsPort);
    // The flood: full handshakes back to back from one address, each closed once it is done.
    let handshakes = 0;
    let refused = 0;
    /**
     * Failed flood connections by error code, for the notes. Each loop closes as soon as its side
     * of a TLS 1.3 handshake ends, before the server reads its Finished; until the server let such
     * a half-closed handshake go at once, each one stayed open to its 3 s deadline, so at 340/s the
     * attacker's address held its 1,024 per-address connections and the rest were refused (a TLS
     * refusal is a close: ECONNRESET here, refused.maxConnectionsPerIp on the server).
     */
    const failures = new Map<string, number>();
    const floodEnd = performance.now() + holdS * 1000;
    const flood = Promise.all(
      Array.from({ length: loops }, async () => {
        while (flooding && performance.now() < floodEnd) {
          await new Promise<void>((resolve) => {
            const s = track(tlsFrom(server.httpsPort, '127.0.0.2'));
            const t = setTimeout(() => s.destroy(), 5000);
            s.once('secureConnect', () => {
              handshakes++;
              s.destroy();
            });
            s.once('error', (err: NodeJS.ErrnoException) => {
              refused++;
              const code = err.code ?? err.message;
              failures.set(code, (failures.get(code) ?? 0) + 1);
            });
            // A second error (a reset after the first) must not be an uncaught one.
            s.on('error', () => undefined);
            s.once('close', () => {
              clearTimeout(t);
              resolve();
            });
          });
        }
      }),
    );
    // Beside it, TCP connections to the HTTPS port that never say anything.
    let closedByServer = 0;
    const t0 = performance.now();
    const { sockets: silent, failed } = await openPaced(silentCount, 1000, () => {
      const s = track(connect({ port: server.httpsPort, host: '127.0.0.1', localAddress: '127.0.0.3' }));
      s.on('data', () => undefined);
      s.once('close', () => closedByServer++);
      return s;
    });
    const openedIn = (performance.now() - t0) / 1000;
    const holdUntil = performance.now() + (timeoutS + 3) * 1000;
    while (performance.now() < holdUntil && closedByServer < silent.length) await sleep(100);
    const stillOpen = silent.length - closedByServer;
    await flood;
    flooding = false;
    const floodS = (performance.now() - (floodEnd - holdS * 1000)) / 1000;
    row.client = await probe.stop();
    sampler.stop();
    destroyAll();
    await sleep(1500);
    row.peakRss = sampler.peakRss;
    row.afterRss = rssOf(server.pid);
    row.fds = [idleFds, sampler.peakFds, fdsOf(server.pid)];
    row.notes.push(`flood: ${handshakes} full handshakes in ${floodS.toFixed(0)} s (${(handshakes / floodS).toFixed(0)}/s), ${refused} failed${failures.size > 0 ? ` (${[...failures].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} x${n}`).join(', ')})` : ''}`);
    // The server's side of it: handshakes it saw through, cut, refused at a cap, queued per address.
    try {
      const st = JSON.parse((await httpGet(server.httpPort, '/.well-known/muxd/stats')).body.toString('utf8')) as { counters?: Record<string, number> };
      const c = st.counters ?? {};
      const keys = ['tls.handshakes', 'tls.handshakeTimeouts', 'tls.handshakeErrors', 'tls.handshakesQueued', 'refused.maxConnectionsPerIp', 'refused.maxConnections'];
      row.notes.push(`server (https): ${keys.map((k) => `${k} ${c[`https.${k}`] ?? '-'}`).join(', ')}`);
    } catch (err) {
      row.notes.push(`server counters unread: ${(err as Error).message}`);
    }
    row.notes.push(`no ClientHello: opened ${silent.length} (${failed} failed to connect) in ${openedIn.toFixed(1)} s; ${stillOpen} still open ${timeoutS + 3} s after the last${scaled ? `; count cut to the fd limit ${limit}` : ''}`);
    clientVerdict(row.client, row.why, row.notes);
    if (stillOpen > 0) row.why.push(`${stillOpen} connections without a ClientHello outlived the ${timeoutS} s handshake timeout`);
    if (!server.alive()) row.why.push('server died');
  } finally {
    flooding = false;
    destroyAll();
    await stopServer(server);
  }
  return done(row);
}

// --- attack 3: 1,000 slow readers of a 10 MB file ----------------------------------------------

/** The TLS rows' certificate, made once per soak. */
let benchCert: BenchCert | null = null;
const soakCert = (): BenchCert => (benchCert ??= makeBenchCert('ec'));

/** tls.connect from a given source address (a socket.connect() option tls.connect passes on; its types omit it). */
function tlsFrom(port: number, localAddress: string): TLSSocket {
  const o: ConnectionOptions & { localAddress?: string } = { port, host: '127.0.0.1', localAddress, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] };
  return tlsConnect(o);
}

async function attackSlow(tls = false): Promise<Row> {
  const readers = QUICK ? 300 : 1000;
  const holdS = QUICK ? 6 : 12;
  const big = randomBytes(10 * MB);
  const server = await startServer({ site: { 'small.txt': Buffer.from('hello\n'), 'big.bin': big }, ...(tls ? { tls: soakCert() } : {}) });
  const row = emptyRow(`slow ${tls ? 'TLS ' : ''}readers: ${readers} x GET 10 MB${tls ? ' over HTTPS' : ''}, read 16 KB then stop (127.0.0.2)`, server.command);
  try {
    // Warm up (one whole read of the big file, a few small ones), then take the idle RSS.
    const port = tls ? server.httpsPort : server.httpPort;
    await httpGet(port, '/big.bin', { timeoutMs: 10_000, tls });
    for (let i = 0; i < 20; i++) await httpGet(port, '/small.txt', { tls });
    await sleep(2000);
    row.idleRss = rssOf(server.pid);
    const idleFds = fdsOf(server.pid);
    const sampler = new Sampler(server);
    const probe = await startRemoteProbe(server.httpPort, server.binaryPort, '/small.txt', CLIENT_CORE, tls ? server.httpsPort : undefined);
    let stalled = 0;
    const { sockets: slow, failed } = await openMany(readers, 100, () => {
      const s = track(tls ? tlsFrom(port, '127.0.0.2') : connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' }));
      let got = 0;
      // Over TLS the request waits for the handshake; pause() then stops reading the TCP socket under it.
      s.once(tls ? 'secureConnect' : 'connect', () => s.write('GET /big.bin HTTP/1.1\r\nHost: soak\r\n\r\n'));
      s.on('data', (c: Buffer) => {
        got += c.length;
        if (got >= 16 * 1024 && !s.isPaused()) {
          s.pause(); // stop reading: the server's writes back up
          stalled++;
        }
      });
      return s;
    });
    await sleep(holdS * 1000);
    sampler.poll();
    row.peakRss = sampler.peakRss;
    row.client = await probe.stop();
    for (const s of slow) s.destroy();
    await sleep(10_000);
    sampler.stop();
    row.afterRss = rssOf(server.pid);
    row.fds = [idleFds, sampler.peakFds, fdsOf(server.pid)];
    const over = row.peakRss - row.idleRss;
    const back = row.afterRss - row.idleRss;
    row.notes.push(`${slow.length} readers (${failed} refused, ${stalled} stalled); ${signedMb(over)} MB at peak, ${signedMb(back)} MB 10 s after they left`);
    clientVerdict(row.client, row.why, row.notes);
    // The issue's targets are for 1,000 readers; --quick uses fewer, so its verdict is lenient.
    if (over > 100 * MB) row.why.push(`peak RSS ${mb(over)} MB over idle > 100`);
    if (back > 30 * MB) row.why.push(`RSS ${mb(back)} MB over idle after they left > 30`);
    if (!server.alive()) row.why.push('server died');
  } finally {
    destroyAll();
    await stopServer(server);
  }
  return done(row);
}

// --- attack 4: replace race ---------------------------------------------------------------------

function version(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * seed + (i >> 8)) & 0xff;
  return b;
}

async function attackRace(): Promise<Row> {
  const seconds = QUICK ? 6 : 15;
  const v1 = version(200_000, 7);
  const v2 = version(300_000, 13);
  const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  const known = new Map([
    [digest(v1), 1],
    [digest(v2), 2],
  ]);
  const server = await startServer({ site: { 'small.txt': Buffer.from('hello\n') } });
  const row = emptyRow(`replace race: rename 200,000 <-> 300,000 B over /files/race.bin, 3 readers`, server.command);
  let replacing = true;
  try {
    await writeFile(path.join(server.filesDir, 'race.bin'), v1);
    row.idleRss = rssOf(server.pid);
    const idleFds = fdsOf(server.pid);
    const sampler = new Sampler(server);
    let replacements = 0;
    const replacer = (async () => {
      const tmp = path.join(server.filesDir, '.soak-replace');
      while (replacing) {
        await writeFile(tmp, replacements % 2 === 0 ? v2 : v1);
        await rename(tmp, path.join(server.filesDir, 'race.bin'));
        replacements++;
      }
    })();
    const stats = { answers: 0, torn: 0, short: 0, other: 0, errors: 0, etagClash: 0 };
    const etags = new Map<string, number>();
    const latencies: number[] = [];
    const errorKinds = new Map<string, number>();
    const deadline = performance.now() + seconds * 1000;
    const reader = async (): Promise<void> => {
      while (performance.now() < deadline) {
        try {
          await readLoop(server.httpPort, deadline, (status, headers, body, ms) => {
            latencies.push(ms);
            stats.answers++;
            if (status !== 200) return void stats.other++;
            const v = known.get(digest(body));
            const cl = Number(headers['content-length']);
            if (v === undefined || body.length !== cl) {
              stats.torn++;
              return;
            }
            const etag = headers['etag'] ?? '';
            const seen = etags.get(etag);
            if (seen !== undefined && seen !== v) stats.etagClash++;
            etags.set(etag, v);
          });
        } catch (e) {
          const msg = (e as Error).message;
          if (msg.startsWith('short')) stats.short++;
          else {
            stats.errors++;
            errorKinds.set(msg, (errorKinds.get(msg) ?? 0) + 1);
          }
        }
      }
    };
    await Promise.all([reader(), reader(), reader()]);
    replacing = false;
    await replacer;
    sampler.stop();
    row.peakRss = sampler.peakRss;
    row.afterRss = rssOf(server.pid);
    row.fds = [idleFds, sampler.peakFds, fdsOf(server.pid)];
    const sorted = latencies.sort((a, b) => a - b);
    row.client = {
      requests: stats.answers,
      errors: stats.errors,
      errorKinds,
      p50: sorted[Math.floor(sorted.length / 2)] ?? NaN,
      p99: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? NaN,
      max: sorted.at(-1) ?? NaN,
      slowest: [],
    };
    row.notes.push(`${stats.answers} answers, ${replacements} replacements: ${stats.torn} torn, ${stats.short} short, ${stats.etagClash} ETag clashes, ${stats.other} other status`);
    // Readers fetch 200-300 KB each time, so their latency is not the normal client's: no p99 target here.
    if (stats.errors > 0) row.why.push(`reader errors ${stats.errors} (${fmtKinds(errorKinds)})`);
    if (stats.torn > 0) row.why.push(`${stats.torn} torn answers`);
    if (stats.short > 0) row.why.push(`${stats.short} short answers`);
    if (stats.etagClash > 0) row.why.push(`${stats.etagClash} ETags naming two versions`);
    if (stats.answers === 0) row.why.push('no answers');
    if (!server.alive()) row.why.push('server died');
  } finally {
    replacing = false;
    destroyAll();
    await stopServer(server);
  }
  return done(row);
}

function fmtKinds(m: Map<string, number>): string {
  return [...m].map(([k, n]) => `${k} x${n}`).join(', ');
}

/** GETs /files/race.bin on one keep-alive connection until `deadline`; rejects "short ..." if a body is cut. */
function readLoop(port: number, deadline: number, answer: (status: number, headers: Record<string, string>, body: Buffer, ms: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = track(connect({ port, host: '127.0.0.1', localAddress: '127.0.0.1' }));
    let buf: Buffer = Buffer.alloc(0);
    let sentAt = 0;
    let finished = false;
    const end = (e: Error | null): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      s.destroy();
      if (e) reject(e);
      else resolve();
    };
    let timer = setTimeout(() => end(new Error('timeout')), 5000);
    const ask = (): void => {
      if (performance.now() >= deadline) return end(null);
      sentAt = performance.now();
      clearTimeout(timer);
      timer = setTimeout(() => end(new Error('timeout')), 5000);
      s.write('GET /files/race.bin HTTP/1.1\r\nHost: soak\r\n\r\n');
    };
    s.once('connect', ask);
    s.on('data', (c: Buffer) => {
      buf = buf.length === 0 ? c : Buffer.concat([buf, c]);
      for (;;) {
        const head = parseHead(buf);
        if (head === null) return;
        const cl = Number(head.headers['content-length'] ?? 0);
        if (buf.length < head.length + cl) return;
        answer(head.status, head.headers, buf.subarray(head.length, head.length + cl), performance.now() - sentAt);
        buf = buf.subarray(head.length + cl);
        ask();
        if (finished) return;
      }
    });
    s.on('error', (e) => end(e));
    s.on('close', () => {
      const head = parseHead(buf);
      if (head !== null) end(new Error(`short body ${buf.length - head.length}/${head.headers['content-length']}`));
      else end(buf.length > 0 ? new Error('short head') : performance.now() >= deadline ? null : new Error('closed'));
    });
  });
}

// --- attack 5: full disk ------------------------------------------------------------------------

/** One PUT with its DATA over a fresh MX/1 connection: "ok" or the ERROR code. */
function mxPut(port: number, name: string, content: Buffer, timeoutMs = 15_000): Promise<{ ok: boolean; code: number; message: string }> {
  return new Promise((resolve) => {
    const s = track(connect({ port, host: '127.0.0.1', localAddress: '127.0.0.1' }));
    let finished = false;
    const end = (r: { ok: boolean; code: number; message: string }): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => end({ ok: false, code: -1, message: 'timeout' }), timeoutMs);
    const scanner = new FrameScanner({
      frame(type, _id, _len, payload) {
        if (type === MX.PUT_OK) end({ ok: true, code: 0, message: '' });
        else if (type === MX.ERROR) end({ ok: false, code: payload !== null && payload.length >= 2 ? payload.readUInt16BE(0) : -1, message: payload?.toString('utf8', 2) ?? '' });
      },
    });
    s.on('data', (c: Buffer) => {
      try {
        scanner.push(c);
      } catch {
        end({ ok: false, code: -1, message: 'bad frame' });
      }
    });
    s.on('error', (e) => end({ ok: false, code: -1, message: e.message }));
    s.on('close', () => end({ ok: false, code: -1, message: 'closed' }));
    s.once('connect', () => {
      const sha = createHash('sha256').update(content).digest();
      s.write(encodeFrame(MX.PUT, 1, putPayload(content.length, sha, name)));
      for (let at = 0; at < content.length; at += 64 * 1024) s.write(encodeFrame(MX.DATA, 1, content.subarray(at, at + 64 * 1024)));
    });
  });
}

async function attackDisk(): Promise<Row> {
  const mountDir = mkdtempSync(path.join(tmpdir(), 'muxd-soak-tmpfs-'));
  const row = emptyRow('full disk: 2 MB tmpfs as --files-dir, PUT 3 MB', 'muxd serve --files-dir TMPFS');
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mountDir], { encoding: 'utf8', timeout: 10_000 });
  if (mount.status !== 0) {
    rmSync(mountDir, { recursive: true, force: true });
    row.verdict = 'SKIP';
    row.notes.push(`cannot mount a tmpfs (needs root): ${(mount.stderr || mount.error?.message || '').trim().split('\n')[0]}`);
    return row;
  }
  const unmount = (): void => {
    spawnSync('umount', ['-l', mountDir], { timeout: 10_000 });
    rmSync(mountDir, { recursive: true, force: true });
  };
  cleanups.push(unmount);
  let server: SoakServer | null = null;
  try {
    server = await startServer({ filesDir: mountDir, site: { 'small.txt': Buffer.from('hello\n') } });
    row.idleRss = rssOf(server.pid);
    const idleFds = fdsOf(server.pid);
    const sampler = new Sampler(server);
    const probe = await startRemoteProbe(server.httpPort, server.binaryPort, '/small.txt', CLIENT_CORE);
    const big = await mxPut(server.binaryPort, 'too-big.bin', randomBytes(3 * MB));
    await sleep(1000);
    const tempLeft = tempFilesIn(mountDir);
    const small = await mxPut(server.binaryPort, 'fits.bin', randomBytes(64 * 1024));
    row.client = await probe.stop();
    sampler.stop();
    row.peakRss = sampler.peakRss;
    row.afterRss = rssOf(server.pid);
    row.fds = [idleFds, sampler.peakFds, fdsOf(server.pid)];
    row.notes.push(`3 MB PUT: ${big.ok ? 'PUT_OK (?)' : `ERROR ${big.code} "${big.message}"`}; temp files left ${tempLeft}; 64 KB PUT after: ${small.ok ? 'PUT_OK' : `ERROR ${small.code}`}`);
    clientVerdict(row.client, row.why, row.notes);
    if (big.code !== 26) row.why.push(`full disk answered ${big.ok ? 'PUT_OK' : `ERROR ${big.code}`}, not ERROR 26`);
    if (tempLeft !== 0) row.why.push(`${tempLeft} temp files left`);
    if (!small.ok) row.why.push(`a PUT that fits failed afterwards (ERROR ${small.code})`);
    if (!server.alive()) row.why.push('server died');
    await httpGet(server.httpPort, '/small.txt').catch((e: Error) => row.why.push(`HTTP after: ${e.message}`));
    await mxPing(server.binaryPort).catch((e: Error) => row.why.push(`PING after: ${e.message}`));
  } finally {
    destroyAll();
    if (server !== null) await stopServer(server);
    cleanups.splice(cleanups.indexOf(unmount), 1);
    unmount();
  }
  return done(row);
}

// --- the run ------------------------------------------------------------------------------------

function emptyRow(attack: string, flags: string): Row {
  return { attack, flags, client: null, idleRss: 0, peakRss: 0, afterRss: 0, fds: [0, 0, 0], notes: [], verdict: 'PASS', why: [] };
}

function done(row: Row): Row {
  row.verdict = row.why.length === 0 ? 'PASS' : 'FAIL';
  return row;
}

const RUNNERS: Record<AttackName, () => Promise<Row>> = { fd: attackFd, silent: attackSilent, slow: () => attackSlow(false), race: attackRace, disk: attackDisk, tls: attackTls, 'tls-slow': () => attackSlow(true) };
const DEADLINE_S: Record<AttackName, number> = { fd: 90, silent: 120, slow: 120, race: 90, disk: 60, tls: 120, 'tls-slow': 150 };

async function main(): Promise<void> {
  const stopAll = (): void => {
    void cleanupAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', stopAll);
  process.once('SIGTERM', stopAll);
  // A last resort: the whole soak never runs past 12 minutes (the TLS rows added about 2).
  const watchdog = setTimeout(() => {
    process.stderr.write('soak: overall deadline passed; stopping\n');
    stopAll();
  }, 12 * 60_000);
  watchdog.unref();

  if (PIN) spawnSync('taskset', ['-a', '-p', '-c', String(CLIENT_CORE), String(process.pid)], { stdio: 'ignore' });
  else process.stderr.write('soak: taskset or a second core missing; server and clients run unpinned\n');
  const rows: Row[] = [];
  for (const name of ATTACKS) {
    if (ONLY !== undefined && ONLY !== name) continue;
    process.stderr.write(`soak: ${name}...\n`);
    try {
      rows.push(await withDeadline(RUNNERS[name](), DEADLINE_S[name] * 1000, name));
    } catch (e) {
      rows.push({ ...emptyRow(name, ''), verdict: 'FAIL', why: [`harness: ${(e as Error).message}`] });
    } finally {
      await cleanupAll();
    }
    const last = rows.at(-1)!;
    process.stderr.write(`soak: ${name}: ${last.verdict}${last.why.length > 0 ? ` (${last.why.join('; ')})` : ''}\n`);
  }
  clearTimeout(watchdog);
  print(rows);
  process.exit(rows.some((r) => r.verdict === 'FAIL') ? 1 : 0);
}

function print(rows: Row[]): void {
  const table: string[][] = [['attack', 'client p99 ms', 'client errors', 'server loop lag p99/max ms', 'RSS MB idle/peak/after', 'fds idle/peak/after', 'verdict']];
  for (const r of rows) {
    const c = r.client;
    table.push([
      r.attack,
      c === null ? '-' : Number.isFinite(c.p99) ? c.p99.toFixed(1) : '-',
      c === null ? '-' : `${c.errors}/${c.requests}`,
      c?.serverLagP99 === undefined || c.serverLagMax === undefined ? '-' : `${c.serverLagP99.toFixed(0)}/${c.serverLagMax.toFixed(0)}`,
      `${mb(r.idleRss)}/${mb(r.peakRss)}/${mb(r.afterRss)}`,
      r.fds[0] === 0 ? '-' : r.fds.join('/'),
      r.verdict,
    ]);
  }
  const out: string[] = [];
  out.push(...headerLines(MARKDOWN), '');
  out.push(renderTable(table, MARKDOWN), '');
  for (const r of rows) {
    const lines = [...(r.flags !== '' ? [`server: ${r.flags}`] : []), ...r.notes, ...r.why.map((w) => `FAIL: ${w}`)];
    out.push(MARKDOWN ? `- **${r.attack}**: ${lines.join('; ')}` : `${r.attack}\n${lines.map((l) => `  ${l}`).join('\n')}`);
  }
  process.stdout.write(out.join('\n') + '\n');
}

// Last, so every declaration above is initialised before main() runs.
if (softFdLimit() < NEED_FDS && process.env['MUXD_SOAK_REEXEC'] === undefined) {
  // Re-run under bash with the limit raised as far as the hard limit allows.
  const quoted = [process.execPath, ...process.argv.slice(1)].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const child = spawn('bash', ['-c', `ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec ${quoted}`], {
    stdio: 'inherit',
    env: { ...process.env, MUXD_SOAK_REEXEC: '1' },
  });
  child.on('exit', (code, signal) => process.exit(code ?? (signal !== null ? 1 : 0)));
} else {
  await main();
}
